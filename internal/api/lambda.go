package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// This adapter is written by hand rather than taken from
// github.com/awslabs/aws-lambda-go-api-proxy: that module's single go.mod
// requires gin, echo, fiber, iris and fasthttp (92 lines of requirements, last
// release April 2024), which every user of longrun would inherit, for the
// sixty lines below.

type gatewayContextKey struct{}

// GatewayRequestContext returns the API Gateway request context (request id,
// authorizer context, source IP) of a request that came through LambdaHandler.
func GatewayRequestContext(ctx context.Context) (events.APIGatewayV2HTTPRequestContext, bool) {
	gw, ok := ctx.Value(gatewayContextKey{}).(events.APIGatewayV2HTTPRequestContext)
	return gw, ok
}

// LambdaHandler serves h to API Gateway HTTP API events (payload format 2.0).
func LambdaHandler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r, err := requestFromEvent(ctx, ev)
		if err != nil {
			// Only a body that claims base64 and is not; API Gateway never
			// sends that, so this is a bad test event, not a client error.
			return events.APIGatewayV2HTTPResponse{}, err
		}
		w := &bufferedResponse{header: http.Header{}}
		h.ServeHTTP(w, r)
		return w.event(), nil
	}
}

func requestFromEvent(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("decode base64 body of request %s: %w", ev.RequestContext.RequestID, err)
		}
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	// A named stage (not $default) prefixes the raw path with "/<stage>".
	if st := ev.RequestContext.Stage; st != "" && st != "$default" {
		if p, ok := strings.CutPrefix(path, "/"+st); ok && (p == "" || p[0] == '/') {
			path = p
		}
	}
	u := &url.URL{Path: path, RawQuery: ev.RawQueryString}
	r, err := http.NewRequestWithContext(context.WithValue(ctx, gatewayContextKey{}, ev.RequestContext),
		ev.RequestContext.HTTP.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request %s: %w", ev.RequestContext.RequestID, err)
	}
	for k, v := range ev.Headers {
		// API Gateway joins repeated headers with commas; that is also what
		// HTTP means by them, so one value is kept as is.
		r.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	r.Host = ev.Headers["host"]
	if r.Host == "" {
		r.Host = ev.RequestContext.DomainName
	}
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	r.RequestURI = u.RequestURI()
	r.ContentLength = int64(len(body))
	return r, nil
}

// bufferedResponse collects a handler's response for the Lambda result.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func (w *bufferedResponse) event() events.APIGatewayV2HTTPResponse {
	res := events.APIGatewayV2HTTPResponse{StatusCode: w.status, Headers: map[string]string{}}
	if res.StatusCode == 0 {
		res.StatusCode = http.StatusOK
	}
	for k, vs := range w.header {
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			res.Cookies = append(res.Cookies, vs...) // payload 2.0 carries cookies apart
			continue
		}
		res.Headers[k] = strings.Join(vs, ", ")
	}
	if b := w.body.Bytes(); utf8.Valid(b) {
		res.Body = string(b)
	} else {
		res.Body = base64.StdEncoding.EncodeToString(b)
		res.IsBase64Encoded = true
	}
	return res
}
