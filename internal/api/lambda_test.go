package api

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	longrun "github.com/longrun/longrun"
)

func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

func TestLambdaHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		event       string
		status      int
		contentType string
		check       func(t *testing.T, hs *harness, res events.APIGatewayV2HTTPResponse)
	}{
		{
			name: "start with base64 body and authorizer tenant", event: "start-execution.json", status: 202, contentType: "application/json",
			check: func(t *testing.T, hs *harness, res events.APIGatewayV2HTTPResponse) {
				var body startResponse
				if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
					t.Fatal(err)
				}
				e, ok := hs.store.execution(body.ExecutionID)
				if !ok || e.Tenant != "acme" || e.Name != "tea" || e.CallbackURL != "https://hooks.example.com/longrun" || e.IdempotencyKey != "order-42" || string(e.Input) != `{"seconds":2}` {
					t.Fatalf("stored %+v", e)
				}
				if res.Headers["Location"] != "/executions/"+body.ExecutionID || res.Headers["Retry-After"] != "5" {
					t.Fatalf("headers %v", res.Headers)
				}
			},
		},
		{
			name: "list under a named stage with a query", event: "list-executions.json", status: 200, contentType: "application/json",
			check: func(t *testing.T, hs *harness, res events.APIGatewayV2HTTPResponse) {
				var body listResponse
				if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
					t.Fatal(err)
				}
				if len(body.Executions) != 1 || body.Executions[0].Status != string(longrun.StatusRunning) || body.NextToken == "" {
					t.Fatalf("list %s", res.Body)
				}
			},
		},
		{
			name: "no authorizer context", event: "describe-no-authorizer.json", status: 401, contentType: "application/problem+json",
			check: func(t *testing.T, hs *harness, res events.APIGatewayV2HTTPResponse) {
				if !strings.Contains(res.Body, "authorizer") {
					t.Fatalf("body %s", res.Body)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := setup(t, func(c *Config) { c.Authenticate = GatewayAuth })
			for _, id := range []string{"0193a6f0-0000-7000-8000-000000000001", "0193a6f0-0000-7000-8000-000000000002"} {
				hs.store.put(running(id, "acme"))
			}
			ev := loadEvent(t, tt.event)
			res, err := LambdaHandler(hs.h)(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.status || res.Headers["Content-Type"] != tt.contentType || res.IsBase64Encoded {
				t.Fatalf("response %d %v %s", res.StatusCode, res.Headers, res.Body)
			}
			if res.Headers["X-Request-Id"] != ev.RequestContext.RequestID {
				t.Fatalf("X-Request-Id %q, want API Gateway's %q", res.Headers["X-Request-Id"], ev.RequestContext.RequestID)
			}
			tt.check(t, hs, res)
		})
	}
}

func TestLambdaHandlerBadBase64(t *testing.T) {
	t.Parallel()
	hs := setup(t, func(c *Config) { c.Authenticate = GatewayAuth })
	ev := loadEvent(t, "start-execution.json")
	ev.Body = "not base64!"
	if _, err := LambdaHandler(hs.h)(context.Background(), ev); err == nil {
		t.Fatal("want an error for a body that is not base64")
	}
}
