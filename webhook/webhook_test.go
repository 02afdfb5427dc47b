package webhook_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun/webhook"
)

// The test vector every Standard Webhooks library checks.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specUnix      = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func specHeader(sig string, unix int64) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, specID)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(unix, 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestSignSpecVector(t *testing.T) {
	t.Parallel()
	got, err := webhook.Sign([]string{specSecret}, specID, time.Unix(specUnix, 0), []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != specSignature {
		t.Fatalf("Sign = %q, want %q", got, specSignature)
	}
}

func TestSignSeveralSecrets(t *testing.T) {
	t.Parallel()
	other := webhook.NewSecret()
	got, err := webhook.Sign([]string{other, specSecret}, specID, time.Unix(specUnix, 0), []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(got, " ")
	if len(parts) != 2 || parts[1] != specSignature || !strings.HasPrefix(parts[0], "v1,") {
		t.Fatalf("Sign = %q, want two space-separated v1 signatures ending with %q", got, specSignature)
	}
}

func TestSignRefuses(t *testing.T) {
	t.Parallel()
	short := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	cases := []struct {
		name    string
		secrets []string
		id      string
		want    error
	}{
		{"no secret", nil, specID, webhook.ErrNoSecret},
		{"short secret", []string{short}, specID, webhook.ErrInvalidSecret},
		{"not base64", []string{"whsec_!!!"}, specID, webhook.ErrInvalidSecret},
		{"empty id", []string{specSecret}, "", webhook.ErrInvalidID},
		{"id with a dot", []string{specSecret}, "msg.1", webhook.ErrInvalidID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := webhook.Sign(tc.secrets, tc.id, time.Unix(specUnix, 0), []byte(specBody))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Sign error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(a, webhook.SecretPrefix) {
		t.Fatalf("secret %q lacks %q", a, webhook.SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, webhook.SecretPrefix))
	if err != nil || len(key) < webhook.MinSecretBytes {
		t.Fatalf("secret %q: %d bytes, err %v; want ≥ %d bytes", a, len(key), err, webhook.MinSecretBytes)
	}
	if _, err := webhook.Sign([]string{a}, specID, time.Unix(specUnix, 0), nil); err != nil {
		t.Fatalf("cannot sign with a new secret: %v", err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	sent := time.Unix(specUnix, 0)
	rotated := webhook.NewSecret()
	bothSigs, err := webhook.Sign([]string{rotated, specSecret}, specID, sent, []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		secrets []string
		header  http.Header
		body    string
		now     time.Time
		want    error // nil: verifies
	}{
		{"spec vector", []string{specSecret}, specHeader(specSignature, specUnix), specBody, sent, nil},
		{"4m59s late", []string{specSecret}, specHeader(specSignature, specUnix), specBody, sent.Add(4*time.Minute + 59*time.Second), nil},
		{"4m59s early", []string{specSecret}, specHeader(specSignature, specUnix), specBody, sent.Add(-4*time.Minute - 59*time.Second), nil},
		{"too old", []string{specSecret}, specHeader(specSignature, specUnix), specBody, sent.Add(5*time.Minute + time.Second), webhook.ErrTooOld},
		{"too new", []string{specSecret}, specHeader(specSignature, specUnix), specBody, sent.Add(-5*time.Minute - time.Second), webhook.ErrTooNew},
		{"receiver holds old and new", []string{webhook.NewSecret(), specSecret}, specHeader(specSignature, specUnix), specBody, sent, nil},
		{"sender signs with old and new", []string{rotated}, specHeader(bothSigs, specUnix), specBody, sent, nil},
		{"unknown scheme skipped", []string{specSecret}, specHeader("v1a,AAAA "+specSignature, specUnix), specBody, sent, nil},
		{"wrong secret", []string{webhook.NewSecret()}, specHeader(specSignature, specUnix), specBody, sent, webhook.ErrNoMatch},
		{"body changed", []string{specSecret}, specHeader(specSignature, specUnix), `{"test": 2432232315}`, sent, webhook.ErrNoMatch},
		{"timestamp changed", []string{specSecret}, specHeader(specSignature, specUnix+1), specBody, sent, webhook.ErrNoMatch},
		{"signature truncated", []string{specSecret}, specHeader(specSignature[:20], specUnix), specBody, sent, webhook.ErrNoMatch},
		{"version missing", []string{specSecret}, specHeader(strings.TrimPrefix(specSignature, "v1,"), specUnix), specBody, sent, webhook.ErrNoMatch},
		{"timestamp not a number", []string{specSecret}, func() http.Header {
			h := specHeader(specSignature, specUnix)
			h.Set(webhook.HeaderTimestamp, "2021-02-25T15:02:10Z")
			return h
		}(), specBody, sent, webhook.ErrBadTimestamp},
		{"no id", []string{specSecret}, func() http.Header { h := specHeader(specSignature, specUnix); h.Del(webhook.HeaderID); return h }(), specBody, sent, webhook.ErrMissingHeader},
		{"no signature", []string{specSecret}, func() http.Header { h := specHeader(specSignature, specUnix); h.Del(webhook.HeaderSignature); return h }(), specBody, sent, webhook.ErrMissingHeader},
		{"no secret", nil, specHeader(specSignature, specUnix), specBody, sent, webhook.ErrNoSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tc.secrets, tc.header, []byte(tc.body), tc.now)
			if tc.want == nil && err != nil {
				t.Fatalf("Verify = %v, want success", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSetHeadersRoundTrip(t *testing.T) {
	t.Parallel()
	secret := webhook.NewSecret()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	body := []byte(`{"type":"execution.succeeded"}`)
	h := http.Header{}
	if err := webhook.SetHeaders(h, []string{secret}, "msg_abc", now, body); err != nil {
		t.Fatal(err)
	}
	if got := h.Get(webhook.HeaderTimestamp); got != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("webhook-timestamp = %q", got)
	}
	if err := webhook.Verify([]string{secret}, h, body, now); err != nil {
		t.Fatalf("Verify of SetHeaders: %v", err)
	}
}
