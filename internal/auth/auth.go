// Package auth owns API keys: minting them, hashing them for storage, and
// resolving the Authorization header of a request to the tenant that owns the
// key. It also provides the API Gateway Lambda authorizer that does the same on
// AWS before a request reaches the API handlers.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	longrun "github.com/longrun/longrun"
)

// KeyPrefix marks longrun API keys so they are recognisable in configuration
// files and by secret scanners.
const KeyPrefix = "lr_"

// keyBytes is the entropy of a key: 256 bits, far beyond any guessing attack.
const keyBytes = 32

// NewAPIKey returns a new random API key: "lr_" and 32 random bytes in
// unpadded base64url. The key is shown once to its owner; only HashKey(key) is
// stored.
func NewAPIKey() string {
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(longrun.RandomToken(keyBytes))
}

// HashKey returns the hex SHA-256 of key, the form in which keys are stored
// and looked up.
//
// A fast hash is right here, unlike for passwords: a key is 256 random bits,
// so there is no dictionary to try and a slow KDF (bcrypt, argon2) would buy no
// security while costing every request CPU time. SHA-256 is also
// deterministic, which lets the store index keys by their hash.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Authenticate resolves an Authorization header value ("Bearer <api key>") to
// the tenant owning the key. A missing or malformed header or an unknown key
// gives EUNAUTHORIZED with a message saying what is wrong; the key itself is
// never logged or echoed. A store failure is returned with its own code.
func Authenticate(ctx context.Context, tenants longrun.TenantStore, authorization string) (string, error) {
	if authorization == "" {
		return "", longrun.Errorf(longrun.EUNAUTHORIZED, "missing API key: expected 'Authorization: Bearer <api key>'")
	}
	scheme, key, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return "", longrun.Errorf(longrun.EUNAUTHORIZED, "malformed Authorization header: expected 'Authorization: Bearer <api key>'")
	}
	tenant, err := tenants.TenantForKey(ctx, HashKey(key))
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		return "", longrun.Errorf(longrun.EUNAUTHORIZED, "unknown API key: check the key, or create one with 'longrun keys create'")
	}
	if err != nil {
		// Not EUNAUTHORIZED: the key may be fine and the store down. The
		// wrapped error is logged by the caller, never shown to the client.
		return "", fmt.Errorf("look up api key: %w", err)
	}
	return tenant, nil
}
