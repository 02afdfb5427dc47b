// Package tenant provisions tenants: it creates API keys (stored only as
// hashes) and creates and rotates the webhook signing secrets that go with
// them. The `longrun keys` commands use it against SQLite (longrun dev) and
// DynamoDB (a deployed stack) alike, through longrun.TenantStore.
package tenant

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/auth"
	"github.com/longrun/longrun/webhook"
)

// Key is what creating a key returns: the only time the API key is shown.
type Key struct {
	APIKey        string `json:"apiKey"`
	Tenant        string `json:"tenant"`
	WebhookSecret string `json:"webhookSecret"`
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CreateKey makes a new API key for tenant id, creating the tenant with a fresh
// webhook secret if it does not exist yet. Existing keys stay valid.
func CreateKey(ctx context.Context, tenants longrun.TenantStore, id string, now time.Time) (*Key, error) {
	if !validID.MatchString(id) {
		return nil, longrun.Errorf(longrun.EINVALID, "tenant %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	t, err := tenants.GetTenant(ctx, id)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		t = &longrun.Tenant{ID: id, Secrets: []longrun.WebhookSecret{{Value: webhook.NewSecret(), CreatedAt: now}}}
		if err := tenants.PutTenant(ctx, t); err != nil {
			return nil, fmt.Errorf("create tenant %s: %w", id, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	key := auth.NewAPIKey()
	if err := tenants.PutAPIKey(ctx, auth.HashKey(key), id); err != nil {
		return nil, fmt.Errorf("store API key for %s: %w", id, err)
	}
	return &Key{APIKey: key, Tenant: id, WebhookSecret: current(t, now)}, nil
}

// RotateSecret gives tenant id a new webhook secret. The old ones keep
// signing, next to the new one, for longrun.SecretOverlap, so receivers can
// switch without losing a delivery; secrets already expired are dropped.
func RotateSecret(ctx context.Context, tenants longrun.TenantStore, id string, now time.Time) (*longrun.Tenant, error) {
	t, err := tenants.GetTenant(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	secrets := []longrun.WebhookSecret{{Value: webhook.NewSecret(), CreatedAt: now}}
	for _, s := range t.Secrets {
		switch {
		case s.ExpiresAt.IsZero():
			s.ExpiresAt = now.Add(longrun.SecretOverlap)
		case !now.Before(s.ExpiresAt):
			continue
		}
		secrets = append(secrets, s)
	}
	t.Secrets = secrets
	if err := tenants.PutTenant(ctx, t); err != nil {
		return nil, fmt.Errorf("store rotated secret for %s: %w", id, err)
	}
	return t, nil
}

// RevokeKey makes apiKey stop working. Behind API Gateway the authorizer's
// answers are cached for up to 5 minutes per key, so the key may still pass
// for that long there; `longrun dev` refuses it at once.
func RevokeKey(ctx context.Context, tenants longrun.TenantStore, apiKey string) error {
	if err := tenants.DeleteAPIKey(ctx, auth.HashKey(apiKey)); err != nil {
		return fmt.Errorf("revoke API key: %w", err)
	}
	return nil
}

// current returns the newest secret still signing at now.
func current(t *longrun.Tenant, now time.Time) string {
	if s := t.ActiveSecrets(now); len(s) > 0 {
		return s[0]
	}
	return ""
}
