package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	longrun "github.com/longrun/longrun"
)

// tenantStore is an in-memory TenantStore keyed by key hash.
type tenantStore struct {
	keys map[string]string
	err  error // returned by TenantForKey when set
}

func (s *tenantStore) PutTenant(context.Context, *longrun.Tenant) error { return nil }
func (s *tenantStore) GetTenant(context.Context, string) (*longrun.Tenant, error) {
	return nil, longrun.Errorf(longrun.ENOTFOUND, "no tenant")
}
func (s *tenantStore) PutAPIKey(_ context.Context, hash, tenant string) error {
	s.keys[hash] = tenant
	return nil
}
func (s *tenantStore) DeleteAPIKey(context.Context, string) error { return errors.New("not used") }
func (s *tenantStore) TenantForKey(_ context.Context, hash string) (string, error) {
	if s.err != nil {
		return "", s.err
	}
	t, ok := s.keys[hash]
	if !ok {
		return "", longrun.Errorf(longrun.ENOTFOUND, "no key")
	}
	return t, nil
}

func setup(t *testing.T) (*tenantStore, string) {
	t.Helper()
	store := &tenantStore{keys: map[string]string{}}
	key := NewAPIKey()
	if err := store.PutAPIKey(context.Background(), HashKey(key), "acme"); err != nil {
		t.Fatal(err)
	}
	return store, key
}

func TestNewAPIKey(t *testing.T) {
	t.Parallel()
	a, b := NewAPIKey(), NewAPIKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, KeyPrefix))
	if !strings.HasPrefix(a, KeyPrefix) || err != nil || len(raw) != 32 {
		t.Fatalf("key %q: want lr_ + base64url of 32 bytes (decode err %v, %d bytes)", a, err, len(raw))
	}
}

func TestHashKey(t *testing.T) {
	t.Parallel()
	// SHA-256("abc") from FIPS 180-2.
	if got, want := HashKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("HashKey(abc) = %s, want %s", got, want)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	store, key := setup(t)
	tests := []struct {
		name, header, wantTenant, wantCode, wantMsg string
	}{
		{name: "valid", header: "Bearer " + key, wantTenant: "acme"},
		{name: "scheme is case-insensitive", header: "bearer " + key, wantTenant: "acme"},
		{name: "missing", header: "", wantCode: longrun.EUNAUTHORIZED, wantMsg: "missing API key"},
		{name: "basic scheme", header: "Basic dXNlcjpwYXNz", wantCode: longrun.EUNAUTHORIZED, wantMsg: "expected 'Authorization: Bearer <api key>'"},
		{name: "bare key", header: key, wantCode: longrun.EUNAUTHORIZED, wantMsg: "malformed"},
		{name: "empty key", header: "Bearer ", wantCode: longrun.EUNAUTHORIZED, wantMsg: "malformed"},
		{name: "unknown key", header: "Bearer " + NewAPIKey(), wantCode: longrun.EUNAUTHORIZED, wantMsg: "unknown API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant, err := Authenticate(context.Background(), store, tt.header)
			if tenant != tt.wantTenant || longrun.ErrorCode(err) != tt.wantCode {
				t.Fatalf("Authenticate = %q, %v; want %q, code %q", tenant, err, tt.wantTenant, tt.wantCode)
			}
			if !strings.Contains(longrun.ErrorMessage(err), tt.wantMsg) {
				t.Fatalf("message %q does not say %q", longrun.ErrorMessage(err), tt.wantMsg)
			}
			if err != nil && strings.Contains(err.Error(), key) {
				t.Fatalf("error %q echoes the key", err)
			}
		})
	}
}

func TestAuthenticateStoreFailureIsNotUnauthorized(t *testing.T) {
	t.Parallel()
	store, key := setup(t)
	store.err = errors.New("dynamodb: connection reset")
	_, err := Authenticate(context.Background(), store, "Bearer "+key)
	if err == nil || longrun.IsCode(err, longrun.EUNAUTHORIZED) {
		t.Fatalf("err = %v; want a non-401 error", err)
	}
}

func TestAuthorizer(t *testing.T) {
	t.Parallel()
	fixture, err := os.ReadFile("testdata/authorizer-request.json")
	if err != nil {
		t.Fatal(err)
	}
	store, key := setup(t)
	tests := []struct {
		name       string
		header     string
		storeErr   error
		wantAuth   bool
		wantTenant string
		wantErr    bool
	}{
		{name: "valid key", header: "Bearer " + key, wantAuth: true, wantTenant: "acme"},
		{name: "unknown key", header: "Bearer lr_nope"},
		{name: "malformed", header: "Token " + key},
		{name: "store down", header: "Bearer " + key, storeErr: errors.New("throttled"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var req events.APIGatewayV2CustomAuthorizerV2Request
			if err := json.Unmarshal(bytes.ReplaceAll(fixture, []byte("Bearer KEY"), []byte(tt.header)), &req); err != nil {
				t.Fatal(err)
			}
			s := &tenantStore{keys: store.keys, err: tt.storeErr}
			var logs bytes.Buffer
			a := &Authorizer{Tenants: s, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			res, err := a.Handle(context.Background(), req)
			if (err != nil) != tt.wantErr || res.IsAuthorized != tt.wantAuth {
				t.Fatalf("Handle = %+v, %v; want authorized %v, error %v", res, err, tt.wantAuth, tt.wantErr)
			}
			if got, _ := res.Context[TenantContextKey].(string); got != tt.wantTenant {
				t.Fatalf("tenant = %q, want %q", got, tt.wantTenant)
			}
			if strings.Contains(logs.String(), key) {
				t.Fatalf("the log contains the API key: %s", logs.String())
			}
			// The response must serialise to API Gateway's simple response shape.
			b, _ := json.Marshal(res)
			if !bytes.Contains(b, []byte(`"isAuthorized"`)) {
				t.Fatalf("response JSON %s lacks isAuthorized", b)
			}
		})
	}
}
