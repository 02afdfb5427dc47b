package tenant_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/auth"
	"github.com/longrun/longrun/internal/sqlite"
	"github.com/longrun/longrun/internal/tenant"
)

func setup(t *testing.T) longrun.TenantStore {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return sqlite.NewTenantStore(db)
}

func TestCreateKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := setup(t)
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

	first, err := tenant.CreateKey(ctx, store, "acme", now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := tenant.CreateKey(ctx, store, "acme", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if first.APIKey == second.APIKey {
		t.Fatal("two keys are the same")
	}
	if first.WebhookSecret == "" || first.WebhookSecret != second.WebhookSecret {
		t.Fatalf("a tenant keeps its secret across keys: %q vs %q", first.WebhookSecret, second.WebhookSecret)
	}
	for _, k := range []*tenant.Key{first, second} {
		got, err := store.TenantForKey(ctx, auth.HashKey(k.APIKey))
		if err != nil || got != "acme" {
			t.Fatalf("key %s… resolves to %q, %v; want acme", k.APIKey[:6], got, err)
		}
	}
	if _, err := store.TenantForKey(ctx, first.APIKey); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Fatalf("the plain key must not be stored, only its hash: got %v", err)
	}
}

func TestCreateKeyRejectsBadTenant(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", " acme", "-acme", "a/b", string(make([]byte, 65))} {
		if _, err := tenant.CreateKey(context.Background(), setup(t), id, time.Now()); !longrun.IsCode(err, longrun.EINVALID) {
			t.Errorf("tenant %q: got %v, want EINVALID", id, err)
		}
	}
}

func TestRotateSecretOverlaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := setup(t)
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	k, err := tenant.CreateKey(ctx, store, "acme", t0)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := tenant.RotateSecret(ctx, store, "acme", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	during := rotated.ActiveSecrets(t0.Add(2 * time.Hour))
	if len(during) != 2 || during[1] != k.WebhookSecret || during[0] == k.WebhookSecret {
		t.Fatalf("during the overlap sign with new then old: %v", during)
	}
	after := rotated.ActiveSecrets(t0.Add(time.Hour + longrun.SecretOverlap))
	if len(after) != 1 || after[0] != during[0] {
		t.Fatalf("after the overlap only the new secret signs: %v", after)
	}
	// A second rotation after the overlap drops the expired secret.
	again, err := tenant.RotateSecret(ctx, store, "acme", t0.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Secrets) != 2 {
		t.Fatalf("expired secrets are dropped: %d kept", len(again.Secrets))
	}
	stored, err := store.GetTenant(ctx, "acme")
	if err != nil || len(stored.Secrets) != 2 || stored.Secrets[0].Value != again.Secrets[0].Value {
		t.Fatalf("rotation is stored: %+v, %v", stored, err)
	}
}

func TestRotateUnknownTenant(t *testing.T) {
	t.Parallel()
	if _, err := tenant.RotateSecret(context.Background(), setup(t), "nobody", time.Now()); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Fatalf("got %v, want ENOTFOUND", err)
	}
}

func TestRevokeKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := setup(t)
	k, err := tenant.CreateKey(ctx, store, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.RevokeKey(ctx, store, k.APIKey); err != nil {
		t.Fatal(err)
	}
	if _, err := store.TenantForKey(ctx, auth.HashKey(k.APIKey)); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Fatalf("a revoked key still resolves: %v", err)
	}
	if err := tenant.RevokeKey(ctx, store, k.APIKey); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Fatalf("revoking twice: %v, want ENOTFOUND", err)
	}
}
