package devapp_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
)

// The dev key survives restarts (one key, not one more per start), a
// revoked one is replaced, and the data directory is its owner's only.
func TestDevKeyKeptAndDataDirPrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil { // made by hand, too open
		t.Fatal(err)
	}
	open := func() *devapp.App {
		app, err := devapp.Open(ctx, devapp.Config{DataDir: dir, TemplatePath: filepath.Join("..", "..", "template.yaml")})
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	var keys []*tenant.Key
	for range 3 {
		app := open()
		k, err := app.DevKey(ctx, "dev", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		app.Close()
	}
	if keys[0].APIKey != keys[1].APIKey || keys[1].APIKey != keys[2].APIKey || keys[0].WebhookSecret != keys[2].WebhookSecret {
		t.Errorf("three starts gave keys %v, want the same key each time", keys)
	}
	app := open()
	defer app.Close()
	if n := count(t, app, `SELECT count(*) FROM api_keys`); n != 1 {
		t.Errorf("%d API keys after three starts, want 1", n)
	}
	if err := tenant.RevokeKey(ctx, app.Tenants, keys[0].APIKey); err != nil {
		t.Fatal(err)
	}
	k, err := app.DevKey(ctx, "dev", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if k.APIKey == keys[0].APIKey {
		t.Error("a revoked dev key was handed out again")
	}
	for path, want := range map[string]os.FileMode{
		dir:                                0o700,
		filepath.Join(dir, "longrun.db"):   0o600,
		filepath.Join(dir, "dev-key.json"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", path, got, want)
		}
	}
}
