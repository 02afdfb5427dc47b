package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/longrun/longrun"
)

// The statements of the tenant store, prepared once (see prepared).
const (
	putTenantSQL = `INSERT INTO tenants (id, secrets) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET secrets = excluded.secrets`
	getTenantSQL = `SELECT secrets FROM tenants WHERE id = ?`
	putAPIKeySQL = `INSERT INTO api_keys (key_hash, tenant) VALUES (?, ?)
			ON CONFLICT (key_hash) DO UPDATE SET tenant = excluded.tenant`
	tenantForKeySQL = `SELECT tenant FROM api_keys WHERE key_hash = ?`
	deleteAPIKeySQL = `DELETE FROM api_keys WHERE key_hash = ?`
)

// TenantStore is longrun.TenantStore on the tenants and api_keys tables.
type TenantStore struct {
	db *DB
}

var _ longrun.TenantStore = (*TenantStore)(nil)

// NewTenantStore returns the tenant store of db.
func NewTenantStore(db *DB) *TenantStore { return &TenantStore{db: db} }

// PutTenant creates or replaces t, secrets in the order given.
func (s *TenantStore) PutTenant(ctx context.Context, t *longrun.Tenant) error {
	secrets := make([]secret, 0, len(t.Secrets))
	for _, w := range t.Secrets {
		secrets = append(secrets, secret{Value: w.Value, CreatedAt: w.CreatedAt, ExpiresAt: w.ExpiresAt})
	}
	doc, err := json.Marshal(secrets)
	if err != nil {
		return fmt.Errorf("encode secrets of tenant %s: %w", t.ID, err)
	}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := s.db.w.exec(ctx, tx, putTenantSQL, t.ID, string(doc))
		return err
	})
	if err != nil {
		return fmt.Errorf("put tenant %s: %w", t.ID, err)
	}
	return nil
}

// GetTenant returns the tenant, or ENOTFOUND.
func (s *TenantStore) GetTenant(ctx context.Context, id string) (*longrun.Tenant, error) {
	var doc string
	err := s.db.r.row(ctx, s.db.reader, getTenantSQL, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "tenant %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	var secrets []secret
	if err := json.Unmarshal([]byte(doc), &secrets); err != nil {
		return nil, fmt.Errorf("decode secrets of tenant %s: %w", id, err)
	}
	t := &longrun.Tenant{ID: id}
	for _, w := range secrets {
		t.Secrets = append(t.Secrets, longrun.WebhookSecret{Value: w.Value, CreatedAt: w.CreatedAt, ExpiresAt: w.ExpiresAt})
	}
	return t, nil
}

// PutAPIKey maps keyHash to tenant, replacing any earlier mapping.
func (s *TenantStore) PutAPIKey(ctx context.Context, keyHash, tenant string) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := s.db.w.exec(ctx, tx, putAPIKeySQL, keyHash, tenant)
		return err
	})
	if err != nil {
		return fmt.Errorf("put api key of tenant %s: %w", tenant, err)
	}
	return nil
}

// DeleteAPIKey revokes keyHash; an unknown one gives ENOTFOUND.
func (s *TenantStore) DeleteAPIKey(ctx context.Context, keyHash string) error {
	var deleted int64
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := s.db.w.exec(ctx, tx, deleteAPIKeySQL, keyHash)
		if err != nil {
			return err
		}
		deleted, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	if deleted == 0 {
		return longrun.Errorf(longrun.ENOTFOUND, "unknown API key")
	}
	return nil
}

// TenantForKey returns the tenant owning keyHash, or ENOTFOUND.
func (s *TenantStore) TenantForKey(ctx context.Context, keyHash string) (string, error) {
	var tenant string
	err := s.db.r.row(ctx, s.db.reader, tenantForKeySQL, keyHash).Scan(&tenant)
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is a secret's fingerprint: keep it out of messages.
		return "", longrun.Errorf(longrun.ENOTFOUND, "unknown API key")
	}
	if err != nil {
		return "", fmt.Errorf("tenant for api key: %w", err)
	}
	return tenant, nil
}
