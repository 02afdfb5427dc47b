package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"golang.org/x/time/rate"

	longrun "github.com/longrun/longrun"
)

// handlerFunc is a route handler; a returned error becomes a problem answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// requestInfo is what the middleware and handlers learn about a request, for
// its log line.
type requestInfo struct {
	id          string
	tenant      string
	executionID string
}

type requestInfoKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// tenantOf returns the authenticated tenant of the request.
func tenantOf(r *http.Request) string { return info(r.Context()).tenant }

// setExecution attaches the execution id to the request's log line.
func setExecution(r *http.Request, id string) { info(r.Context()).executionID = id }

// handle turns a handlerFunc into an http.Handler, answering errors as
// problems and logging the ones that are the server's fault.
func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		ri := info(r.Context())
		if statusFor(longrun.ErrorCode(err)) >= 500 {
			s.log.ErrorContext(r.Context(), "request failed", "err", err, "request_id", ri.id, "tenant", ri.tenant, "execution_id", ri.executionID)
		}
		writeProblem(w, ri.id, err)
	})
}

// statusRecorder remembers the status a handler wrote, for the log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observe gives each request an id, logs it once when it ends, and turns a
// handler panic into a 500 instead of a dropped connection.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{id: requestID(r)}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, ri))
		rec := &statusRecorder{ResponseWriter: w}
		rec.Header().Set("X-Request-Id", ri.id)
		start := time.Now() // wall time for latency, not the injected clock
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(r.Context(), "handler panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()), "request_id", ri.id)
				if rec.status == 0 {
					writeProblem(rec, ri.id, fmt.Errorf("panic: %v", v))
				}
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
				slog.String("request_id", ri.id), slog.String("tenant", ri.tenant),
				slog.String("execution_id", ri.executionID))
		}()
		next.ServeHTTP(rec, r)
	})
}

// requestID is API Gateway's id when there is one, so our logs and its
// access logs join; otherwise a random one.
func requestID(r *http.Request) string {
	if gw, ok := GatewayRequestContext(r.Context()); ok && gw.RequestID != "" {
		return gw.RequestID
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// authenticate resolves every request to a tenant, or answers 401.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r.Context())
		tenant, err := s.cfg.Authenticate(r)
		if err == nil && tenant == "" {
			err = longrun.Errorf(longrun.EUNAUTHORIZED, "no tenant for this request")
		}
		if err != nil {
			if statusFor(longrun.ErrorCode(err)) >= 500 {
				s.log.ErrorContext(r.Context(), "authenticate", "err", err, "request_id", ri.id)
				// The key store failing is an outage, not a bug: retry-safe.
				err = asUnavailable(err)
			}
			if longrun.IsCode(err, longrun.EUNAUTHORIZED) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="longrun"`)
			}
			writeProblem(w, ri.id, err)
			return
		}
		ri.tenant = tenant
		next.ServeHTTP(w, r)
	})
}

// throttle applies each tenant's token bucket.
func (s *server) throttle(next http.Handler) http.Handler {
	if s.cfg.RatePerTenant <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r.Context())
		if !s.limiter(ri.tenant).AllowN(s.clock.Now(), 1) {
			w.Header().Set("Retry-After", retryAfter(time.Duration(float64(time.Second)/s.cfg.RatePerTenant)))
			writeProblem(w, ri.id, longrun.Errorf(longrun.ETHROTTLED,
				"too many requests: this API key's tenant may make %g requests per second (bursts of %d); retry after the Retry-After seconds",
				s.cfg.RatePerTenant, s.burst()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) burst() int { return max(s.cfg.BurstPerTenant, 1) }

func (s *server) limiter(tenant string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[tenant]
	if !ok {
		// The map holds one small limiter per tenant, and tenants are few
		// and created by operators, so it is not pruned.
		l = rate.NewLimiter(rate.Limit(s.cfg.RatePerTenant), s.burst())
		s.limiters[tenant] = l
	}
	return l
}
