// Package webhook signs and verifies longrun's webhooks, and defines their
// payload. It follows Standard Webhooks (standardwebhooks.com): the headers
// webhook-id, webhook-timestamp and webhook-signature, HMAC-SHA256 over
// "id.timestamp.body", secrets written "whsec_" + base64.
//
// The package is public so receivers can import it; any Standard Webhooks
// library (Go, Node, Python, …) verifies the same signatures. longrun itself
// signs with it in internal/delivery.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/longrun/longrun"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a symmetric Standard Webhooks secret.
const SecretPrefix = "whsec_"

// MinSecretBytes is the spec's lower bound on a secret's key material.
const MinSecretBytes = 24

// secretBytes is what NewSecret draws: more than the minimum costs nothing.
const secretBytes = 32

// Tolerance is how far webhook-timestamp may be from the receiver's clock, in
// either direction, before a webhook is refused as a possible replay.
const Tolerance = 5 * time.Minute

// Errors Verify returns (wrapped with detail); test them with errors.Is.
var (
	ErrMissingHeader = errors.New("webhook: missing header")
	ErrBadTimestamp  = errors.New("webhook: webhook-timestamp is not unix seconds")
	ErrTooOld        = errors.New("webhook: timestamp too old")
	ErrTooNew        = errors.New("webhook: timestamp too far in the future")
	ErrNoMatch       = errors.New("webhook: no signature matches")
	ErrInvalidSecret = errors.New("webhook: invalid secret")
	ErrNoSecret      = errors.New("webhook: no secret to sign or verify with")
	ErrInvalidID     = errors.New("webhook: invalid webhook-id")
)

// NewSecret returns a fresh random secret, "whsec_" + base64 of 32 bytes.
func NewSecret() string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(longrun.RandomToken(secretBytes))
}

// decodeSecret returns the key material of a "whsec_" secret. The prefix is
// optional, as in the official libraries, so a secret pasted without it works.
func decodeSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64 after %q", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes of key, want at least %d", ErrInvalidSecret, len(key), MinSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for one message: one
// "v1,<base64>" per secret, space-separated, so during a rotation receivers
// holding either the old or the new secret can verify.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", ErrNoSecret
	}
	if err := checkID(id); err != nil {
		return "", err
	}
	sigs := make([]string, 0, len(secrets))
	for i, s := range secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return "", fmt.Errorf("secret %d: %w", i, err)
		}
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)))
	}
	return strings.Join(sigs, " "), nil
}

// SetHeaders signs body and sets the three Standard Webhooks headers on h.
func SetHeaders(h http.Header, secrets []string, id string, ts time.Time, body []byte) error {
	sig, err := Sign(secrets, id, ts, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// checkID refuses ids that would make "id.timestamp.body" ambiguous: the spec
// asks that ids never contain a full stop.
func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, ". \t\r\n") {
		return fmt.Errorf("%w: %q (must be non-empty, without '.' or spaces)", ErrInvalidID, id)
	}
	return nil
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received webhook: the three headers are present, the
// timestamp is within Tolerance of now, and at least one v1 signature in the
// header matches one of secrets (a receiver mid-rotation passes both). body
// must be the raw bytes received, before any JSON decoding. The comparison is
// constant-time.
func Verify(secrets []string, h http.Header, body []byte, now time.Time) error {
	id, tsText, sigHeader := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	for _, hv := range [][2]string{{HeaderID, id}, {HeaderTimestamp, tsText}, {HeaderSignature, sigHeader}} {
		if hv[1] == "" {
			return fmt.Errorf("%w: %s", ErrMissingHeader, hv[0])
		}
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTimestamp, tsText)
	}
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > Tolerance {
		return fmt.Errorf("%w: sent %s, now %s, tolerance %s", ErrTooOld, ts.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), Tolerance)
	}
	if ts.Sub(now) > Tolerance {
		return fmt.Errorf("%w: sent %s, now %s, tolerance %s", ErrTooNew, ts.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), Tolerance)
	}
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	var given [][]byte
	for _, part := range strings.Fields(sigHeader) {
		version, sig, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue // other schemes (v1a) are for other verifiers
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		given = append(given, raw)
	}
	for i, s := range secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return fmt.Errorf("secret %d: %w", i, err)
		}
		want := mac(key, id, unix, body)
		for _, g := range given {
			if hmac.Equal(g, want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %d v1 signature(s) checked against %d secret(s)", ErrNoMatch, len(given), len(secrets))
}
