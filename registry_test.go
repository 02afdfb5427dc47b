package longrun_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	longrun "github.com/longrun/longrun"
)

func nop(context.Context, json.RawMessage, func(longrun.Progress)) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

func TestRegistryDefaultIsFirstKind(t *testing.T) {
	t.Parallel()
	r := longrun.NewRegistry()
	if _, ok := r.Lookup(""); ok {
		t.Fatal("an empty registry has a default kind")
	}
	r.Handle("export", nop, longrun.JobOptions{Description: "exports"})
	r.Handle("transcode", nop, longrun.JobOptions{})
	if got := r.Kinds(); !slices.Equal(got, []string{"export", "transcode"}) {
		t.Fatalf("Kinds() = %q, want registration order", got)
	}
	k, ok := r.Lookup("")
	if !ok || k.Name != "export" || k.Options.Description != "exports" {
		t.Fatalf("Lookup(\"\") = %+v, %v; want the first kind", k, ok)
	}
	if k, ok := r.Lookup("transcode"); !ok || k.Name != "transcode" {
		t.Fatalf("Lookup(transcode) = %+v, %v", k, ok)
	}
	if _, ok := r.Lookup("nope"); ok || r.Has("nope") || !r.Has("export") {
		t.Fatal("Lookup/Has of an unknown kind found it")
	}
}

func TestRegistryHandlePanicsOnProgrammingErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, kind string
		job        longrun.Job
		opts       longrun.JobOptions
		want       string
	}{
		{"empty kind", "", nop, longrun.JobOptions{}, "a kind is"},
		{"kind with a space", "my job", nop, longrun.JobOptions{}, "a kind is"},
		{"kind too long", strings.Repeat("a", 65), nop, longrun.JobOptions{}, "a kind is"},
		{"nil job", "a", nil, longrun.JobOptions{}, "nil"},
		{"negative timeout", "a", nop, longrun.JobOptions{Timeout: -1}, "negative"},
		{"bad schema", "a", nop, longrun.JobOptions{InputSchema: json.RawMessage(`{`)}, "InputSchema"},
		{"schema not a schema", "a", nop, longrun.JobOptions{InputSchema: json.RawMessage(`{"type":"objekt"}`)}, "not a valid JSON Schema"},
		{"schema with a remote ref", "a", nop, longrun.JobOptions{InputSchema: json.RawMessage(`{"$ref":"https://example.com/s.json"}`)}, "only point inside the schema"},
		{"backoff over its cap", "a", nop, longrun.JobOptions{Retry: longrun.RetryPolicy{MaxAttempts: 3, Backoff: time.Minute, MaxBackoff: time.Second}}, "over its MaxBackoff"},
		{"duplicate", "dup", nop, longrun.JobOptions{}, "already registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := longrun.NewRegistry()
			r.Handle("dup", nop, longrun.JobOptions{})
			defer func() {
				v := recover()
				if v == nil || !strings.Contains(v.(string), tc.want) {
					t.Fatalf("Handle panicked with %v, want a message with %q", v, tc.want)
				}
			}()
			r.Handle(tc.kind, tc.job, tc.opts)
		})
	}
}

func TestJobInfoTravelsInTheContext(t *testing.T) {
	t.Parallel()
	if _, ok := longrun.JobInfoFromContext(context.Background()); ok {
		t.Fatal("a bare context has a JobInfo")
	}
	want := longrun.JobInfo{ExecutionID: "e1", Kind: "export", Attempt: 2}
	got, ok := longrun.JobInfoFromContext(longrun.WithJobInfo(context.Background(), want))
	if !ok || got != want {
		t.Fatalf("JobInfoFromContext = %+v, %v; want %+v", got, ok, want)
	}
}

func TestKindValidateInput(t *testing.T) {
	t.Parallel()
	r := longrun.NewRegistry()
	r.Handle("signup", nop, longrun.JobOptions{InputSchema: json.RawMessage(`{
		"type": "object",
		"required": ["email", "seats"],
		"properties": {
			"email": {"type": "string", "format": "email"},
			"seats": {"type": "integer", "minimum": 1},
			"tags":  {"type": "array", "items": {"type": "string"}}
		},
		"additionalProperties": false
	}`)})
	r.Handle("anything", nop, longrun.JobOptions{})
	for _, tc := range []struct {
		name, kind, input string
		want              []longrun.FieldError // nil: valid
	}{
		{"valid", "signup", `{"email":"a@example.com","seats":2}`, nil},
		{"no schema accepts anything", "anything", `[1,"x",null]`, nil},
		{"missing field", "signup", `{"email":"a@example.com"}`, []longrun.FieldError{{Pointer: "/input", Detail: "missing property 'seats'"}}},
		{"wrong type", "signup", `{"email":"a@example.com","seats":"two"}`, []longrun.FieldError{{Pointer: "/input/seats", Detail: "got string, want integer"}}},
		{"below minimum", "signup", `{"email":"a@example.com","seats":0}`, []longrun.FieldError{{Pointer: "/input/seats", Detail: "minimum: got 0, want 1"}}},
		{"format asserted", "signup", `{"email":"nobody","seats":1}`, []longrun.FieldError{{Pointer: "/input/email", Detail: "'nobody' is not valid email: missing @"}}},
		{"nested item", "signup", `{"email":"a@example.com","seats":1,"tags":["ok",7]}`, []longrun.FieldError{{Pointer: "/input/tags/1", Detail: "got number, want string"}}},
		{"not an object", "signup", `"hello"`, []longrun.FieldError{{Pointer: "/input", Detail: "got string, want object"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, _ := r.Lookup(tc.kind)
			err := k.ValidateInput([]byte(tc.input))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ValidateInput(%s) = %v, want nil", tc.input, err)
				}
				return
			}
			var ie *longrun.InputError
			if !errors.As(err, &ie) || !slices.Equal(ie.Fields, tc.want) || ie.Kind != tc.kind {
				t.Fatalf("ValidateInput(%s) = %#v, want an InputError with %v", tc.input, err, tc.want)
			}
			if !longrun.IsCode(err, longrun.EINVALID) || !strings.Contains(longrun.ErrorMessage(err), tc.want[0].Pointer) {
				t.Fatalf("ValidateInput(%s): code %q message %q; want EINVALID naming %s", tc.input, longrun.ErrorCode(err), longrun.ErrorMessage(err), tc.want[0].Pointer)
			}
		})
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		p       longrun.RetryPolicy
		attempt int
		want    time.Duration
	}{
		{"defaults: one second first", longrun.RetryPolicy{}, 1, time.Second},
		{"doubles", longrun.RetryPolicy{Backoff: 2 * time.Second}, 3, 8 * time.Second},
		{"capped", longrun.RetryPolicy{Backoff: time.Second, MaxBackoff: 5 * time.Second}, 4, 5 * time.Second},
		{"default cap an hour", longrun.RetryPolicy{Backoff: time.Minute}, 40, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.p.Delay(tc.attempt); got != tc.want {
				t.Fatalf("Delay(%d) = %s, want %s", tc.attempt, got, tc.want)
			}
		})
	}
	if got := (longrun.RetryPolicy{}).Attempts(); got != 1 {
		t.Fatalf("zero policy Attempts() = %d, want 1", got)
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("no such bucket")
	err := fmt.Errorf("export: %w", longrun.Permanent(base))
	if !longrun.IsPermanent(err) || !errors.Is(err, base) || err.Error() != "export: no such bucket" {
		t.Fatalf("Permanent wrapped = %v (permanent %v), want the same error marked permanent", err, longrun.IsPermanent(err))
	}
	if longrun.IsPermanent(base) || longrun.Permanent(nil) != nil {
		t.Fatal("an unmarked error is permanent, or Permanent(nil) is not nil")
	}
}

func TestKindLimitsAndCheckTimeouts(t *testing.T) {
	t.Parallel()
	deployment := longrun.Limits{TimeoutSeconds: 3600, HeartbeatSeconds: 60}
	r := longrun.NewRegistry()
	r.Handle("plain", nop, longrun.JobOptions{})
	r.Handle("quick", nop, longrun.JobOptions{Timeout: 90500 * time.Millisecond})
	for _, tc := range []struct {
		kind string
		want longrun.Limits
	}{
		{"plain", deployment},
		{"quick", longrun.Limits{TimeoutSeconds: 91, HeartbeatSeconds: 60}},
	} {
		k, _ := r.Lookup(tc.kind)
		if got := k.Limits(deployment); got != tc.want {
			t.Errorf("%s: Limits = %+v, want %+v", tc.kind, got, tc.want)
		}
	}
	if err := r.CheckTimeouts(12*time.Hour, "SQS"); err != nil {
		t.Fatalf("CheckTimeouts of kinds that fit = %v", err)
	}
	r.Handle("long", nop, longrun.JobOptions{Timeout: 13 * time.Hour})
	r.Handle("tiny", nop, longrun.JobOptions{Timeout: 30 * time.Second})
	err := r.CheckTimeouts(12*time.Hour, "SQS keeps a message in flight at most 12 h")
	// A Timeout under the workers' lease is fine: the worker enforces it
	// from receipt, whatever the lease.
	if err == nil || !strings.Contains(err.Error(), `job "long": Timeout 13h0m0s cannot be honoured: it is over 12h0m0s (SQS keeps`) ||
		strings.Contains(err.Error(), "tiny") || strings.Contains(err.Error(), "quick") {
		t.Fatalf("CheckTimeouts = %v, want long (over 12 h) named, and only it", err)
	}
}
