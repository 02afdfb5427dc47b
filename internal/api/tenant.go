package api

import (
	"net/http"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/auth"
)

// BearerAuth authenticates the request's API key against tenants: how
// `longrun dev` and any server without an authorizer in front resolve tenants.
func BearerAuth(tenants longrun.TenantStore) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		return auth.Authenticate(r.Context(), tenants, r.Header.Get("Authorization"))
	}
}

// GatewayAuth reads the tenant that the API Gateway Lambda authorizer
// (auth.Authorizer) put in the request context, which LambdaHandler carries
// into the request. The key is not checked again: the authorizer did that,
// and API Gateway does not invoke the API for a request it denied.
func GatewayAuth(r *http.Request) (string, error) {
	gw, ok := GatewayRequestContext(r.Context())
	if !ok || gw.Authorizer == nil {
		return "", longrun.Errorf(longrun.EUNAUTHORIZED, "no authorizer context: the route must use the longrun Lambda authorizer")
	}
	tenant, _ := gw.Authorizer.Lambda[auth.TenantContextKey].(string)
	if tenant == "" {
		return "", longrun.Errorf(longrun.EUNAUTHORIZED, "the authorizer context names no tenant")
	}
	return tenant, nil
}
