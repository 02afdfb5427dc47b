package auth

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	longrun "github.com/longrun/longrun"
)

// TenantContextKey is the key under which the authorizer passes the tenant to
// the API: API Gateway exposes it to the integration as
// requestContext.authorizer.lambda.tenant.
const TenantContextKey = "tenant"

// Authorizer is the API Gateway HTTP API Lambda authorizer (payload format
// 2.0, simple responses). It runs Authenticate on the Authorization header.
//
// API Gateway itself answers 401 when the header is missing (it is the
// identity source) and 403 when the authorizer denies, so a malformed or
// unknown key gets 403 {"message":"Forbidden"} on AWS rather than the 401
// problem that `longrun dev` gives: HTTP API simple responses cannot choose
// the status.
type Authorizer struct {
	Tenants longrun.TenantStore
	Logger  *slog.Logger // nil discards
}

// Handle decides one request. A store failure is returned as an error (API
// Gateway answers 500) rather than a denial, so an outage is not mistaken for
// a bad key and cached as one.
func (a *Authorizer) Handle(ctx context.Context, req events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error) {
	header := req.Headers["authorization"] // HTTP API lower-cases header names
	if header == "" && len(req.IdentitySource) > 0 {
		header = req.IdentitySource[0]
	}
	tenant, err := Authenticate(ctx, a.Tenants, header)
	log := a.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case longrun.IsCode(err, longrun.EUNAUTHORIZED):
		// Log why, never the key.
		log.InfoContext(ctx, "request denied", "reason", longrun.ErrorMessage(err), "route", req.RouteKey, "request_id", req.RequestContext.RequestID)
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}, nil
	case err != nil:
		log.ErrorContext(ctx, "authorize", "err", err, "request_id", req.RequestContext.RequestID)
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{}, err
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{
		IsAuthorized: true,
		Context:      map[string]any{TenantContextKey: tenant},
	}, nil
}
