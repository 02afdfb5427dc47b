package devapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/auth"
	"github.com/longrun/longrun/internal/tenant"
)

// devKeyFile holds the API key `longrun dev` prints, in the data directory
// (0600): the same key at every start, rather than one more permanent key
// per start — and a start that writes nothing, so it works on a full disk.
const devKeyFile = "dev-key.json"

// DevKey returns the data directory's API key for tenant id, creating the
// key (and the tenant) only the first time, or when the stored key was
// revoked or belongs to another tenant.
func (a *App) DevKey(ctx context.Context, id string, now time.Time) (*tenant.Key, error) {
	path := filepath.Join(a.dataDir, devKeyFile)
	var stored tenant.Key
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if json.Unmarshal(data, &stored) == nil && stored.Tenant == id && stored.APIKey != "" {
			owner, err := a.Tenants.TenantForKey(ctx, auth.HashKey(stored.APIKey))
			switch {
			case err == nil && owner == id:
				t, err := a.Tenants.GetTenant(ctx, id)
				if err != nil {
					return nil, fmt.Errorf("get tenant %s: %w", id, err)
				}
				if secrets := t.ActiveSecrets(now); len(secrets) > 0 {
					stored.WebhookSecret = secrets[0]
				}
				return &stored, nil
			case err != nil && !longrun.IsCode(err, longrun.ENOTFOUND):
				return nil, fmt.Errorf("check the dev API key: %w", err)
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	key, err := tenant.CreateKey(ctx, a.Tenants, id, now)
	if err != nil {
		return nil, err
	}
	data, err = json.Marshal(tenant.Key{APIKey: key.APIKey, Tenant: key.Tenant})
	if err != nil {
		return nil, fmt.Errorf("encode dev key: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("keep the dev API key in %s: %w", path, err)
	}
	return key, nil
}
