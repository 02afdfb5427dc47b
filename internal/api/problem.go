package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	longrun "github.com/longrun/longrun"
)

// problem is an RFC 9457 problem details object.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"requestId,omitempty"` // on 5xx, so a report can be matched to the log
	// Errors lists each rule of a kind's InputSchema the input breaks: the
	// JSON pointer of the field in the request body and why (RFC 9457 §3.2
	// extension member, in the shape its example uses).
	Errors []longrun.FieldError `json:"errors,omitempty"`
}

// problemTypePrefix makes each error code a stable problem type URI.
const problemTypePrefix = "urn:longrun:problem:"

// statusFor translates a domain error code into an HTTP status. This is the
// only place that does.
func statusFor(code string) int {
	switch code {
	case longrun.EINVALID:
		return http.StatusBadRequest
	case longrun.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case longrun.ENOTFOUND:
		return http.StatusNotFound
	case longrun.ECONFLICT, longrun.ENOTRUNNING, longrun.EDUPLICATE:
		return http.StatusConflict
	case longrun.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case longrun.ETHROTTLED:
		return http.StatusTooManyRequests
	case longrun.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeProblem answers with err as problem+json. A 5xx shows a fixed detail
// and the request id, never err's text: that is logged by the caller.
func writeProblem(w http.ResponseWriter, requestID string, err error) {
	code := longrun.ErrorCode(err)
	var domain *longrun.Error
	if !errors.As(err, &domain) {
		code = longrun.EINTERNAL
	}
	status := statusFor(code)
	p := problem{Type: problemTypePrefix + code, Title: http.StatusText(status), Status: status, Detail: longrun.ErrorMessage(err)}
	if ie := (*longrun.InputError)(nil); errors.As(err, &ie) {
		p.Errors = ie.Fields
	}
	switch {
	case status == http.StatusServiceUnavailable:
		p.Detail = "A service longrun depends on is unavailable. Retry the request in a moment; retrying is safe."
		p.RequestID = requestID
		w.Header().Set("Retry-After", "1")
	case status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "":
		w.Header().Set("Retry-After", "1")
	case status >= 500:
		p.Type = problemTypePrefix + longrun.EINTERNAL
		p.Detail = "Internal error. If it persists, report it with the request id."
		p.RequestID = requestID
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p) // the client may have gone; nothing to do then
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing to do then
}

// retryAfter formats a duration as Retry-After seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	return strconv.Itoa(max(s, 1))
}

// noRoute answers requests no route matches (404, or 405 with Allow) as
// problems too, instead of ServeMux's plain text.
func noRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}}
		mux.ServeHTTP(rec, r) // only to learn 404 or 405, and Allow
		status, detail := http.StatusNotFound, fmt.Sprintf("no route %s %s: see api/openapi.yaml for the API", r.Method, r.URL.Path)
		if rec.status == http.StatusMethodNotAllowed {
			status, detail = rec.status, fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, rec.header.Get("Allow"))
			w.Header().Set("Allow", rec.header.Get("Allow"))
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
	})
}
