package delivery

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/fakeclock"
	"github.com/longrun/longrun/webhook"
)

// fakeResolver answers fixed addresses for names, so names that resolve to
// private addresses can be tried without DNS.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	texts, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(texts))
	for i, s := range texts {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

var fixedNow = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

type fixture struct {
	secret string
	hits   atomic.Int32 // requests the receiver saw
	srv    *httptest.Server
}

// setup starts a receiver on 127.0.0.1 that answers with handler.
func setup(t *testing.T, handler http.HandlerFunc) *fixture {
	t.Helper()
	f := &fixture{secret: webhook.NewSecret()}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) sender(p Policy, names fakeResolver) *Sender {
	return NewSender(Config{Policy: p, Clock: fakeclock.At(fixedNow), Resolver: names, Timeout: 2 * time.Second})
}

func (f *fixture) port() string {
	_, port, _ := net.SplitHostPort(f.srv.Listener.Addr().String())
	return port
}

func TestAttemptClassifies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		verdict    Verdict
		retryAfter time.Duration
		errHas     string
	}{
		{"200", 200, nil, "ok", Delivered, 0, ""},
		{"204", 204, nil, "", Delivered, 0, ""},
		{"299", 299, nil, "", Delivered, 0, ""},
		{"410 stops", 410, nil, "unsubscribed", Stop, 0, "HTTP 410: unsubscribed"},
		{"429 Retry-After seconds", 429, map[string]string{"Retry-After": "120"}, "", Retry, 2 * time.Minute, "HTTP 429"},
		{"503 Retry-After date", 503, map[string]string{"Retry-After": fixedNow.Add(time.Hour).Format(http.TimeFormat)}, "", Retry, time.Hour, "HTTP 503"},
		{"503 Retry-After in the past", 503, map[string]string{"Retry-After": fixedNow.Add(-time.Hour).Format(http.TimeFormat)}, "", Retry, 0, "HTTP 503"},
		{"503 Retry-After garbage", 503, map[string]string{"Retry-After": "soon"}, "", Retry, 0, "HTTP 503"},
		{"503 Retry-After huge", 503, map[string]string{"Retry-After": "99999999"}, "", Retry, maxRetryAfter, "HTTP 503"},
		{"500 Retry-After ignored", 500, map[string]string{"Retry-After": "120"}, "boom\nstack", Retry, 0, "HTTP 500: boom stack"},
		{"404", 404, nil, "", Retry, 0, "HTTP 404"},
		{"400", 400, nil, "", Retry, 0, "HTTP 400"},
		{"301 not followed", 301, map[string]string{"Location": "https://elsewhere.example.com/"}, "", Retry, 0, "redirects are not followed"},
		{"302 to metadata not followed", 302, map[string]string{"Location": "http://169.254.169.254/latest/meta-data/"}, "", Retry, 0, "HTTP 302"},
		{"307 to private not followed", 307, map[string]string{"Location": "http://10.0.0.1/"}, "", Retry, 0, "HTTP 307"},
		{"long body capped", 500, nil, strings.Repeat("x", 1<<20), Retry, 0, "HTTP 500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			r := f.sender(Policy{AllowLoopback: true}, nil).Attempt(t.Context(), f.srv.URL+"/hook", []string{f.secret}, "msg_1", []byte(`{}`))
			if r.Verdict != tc.verdict || r.RetryAfter != tc.retryAfter {
				t.Fatalf("verdict %s, retry-after %s; want %s, %s (attempt %+v)", r.Verdict, r.RetryAfter, tc.verdict, tc.retryAfter, r.Attempt)
			}
			if r.Attempt.StatusCode != tc.status || !r.Attempt.At.Equal(fixedNow) {
				t.Fatalf("attempt %+v, want status %d at %s", r.Attempt, tc.status, fixedNow)
			}
			if tc.errHas == "" && r.Attempt.Error != "" || !strings.Contains(r.Attempt.Error, tc.errHas) {
				t.Fatalf("error %q, want it to contain %q", r.Attempt.Error, tc.errHas)
			}
			if len(r.Attempt.Error) > maxErrorExcerpt+len("…") {
				t.Fatalf("error excerpt is %d bytes, want ≤ %d", len(r.Attempt.Error), maxErrorExcerpt)
			}
			if got := f.hits.Load(); got != 1 {
				t.Fatalf("receiver saw %d requests, want exactly 1 (redirects are never followed)", got)
			}
		})
	}
}

func TestAttemptSigns(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	var f *fixture
	f = setup(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := webhook.Verify([]string{f.secret}, r.Header, body, fixedNow)
		if err == nil && (r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get(webhook.HeaderID) != "msg_42") {
			err = fmt.Errorf("method %s, content-type %q, id %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get(webhook.HeaderID))
		}
		got <- err
	})
	old := webhook.NewSecret()
	r := f.sender(Policy{AllowLoopback: true}, nil).Attempt(t.Context(), f.srv.URL, []string{f.secret, old}, "msg_42", []byte(`{"type":"execution.succeeded"}`))
	if r.Verdict != Delivered {
		t.Fatalf("attempt %+v, want delivered", r)
	}
	if err := <-got; err != nil {
		t.Fatalf("receiver could not verify: %v", err)
	}
}

// TestAttemptRefuses covers destinations the policy forbids: none of them
// may reach the receiver, and the resolved private address is refused at
// dial time, so no connection is even opened.
func TestAttemptRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		policy  Policy
		names   fakeResolver
		url     func(f *fixture) string
		verdict Verdict
		errHas  string
	}{
		{"loopback literal without the dev flag", Policy{Ports: []int{0}}, nil,
			func(f *fixture) string { return f.srv.URL }, Stop, "not a public address"},
		{"name resolving to loopback without the dev flag", Policy{}, fakeResolver{"receiver.test": {"127.0.0.1"}},
			func(f *fixture) string { return "http://receiver.test/" }, Retry, "not a public address"},
		{"name resolving to private (rebinding)", Policy{AllowLoopback: true}, fakeResolver{"rebind.test": {"10.0.0.7"}},
			func(f *fixture) string { return "http://rebind.test/" }, Retry, "10.0.0.7 is not a public address"},
		{"name resolving to metadata", Policy{AllowLoopback: true}, fakeResolver{"meta.test": {"169.254.169.254"}},
			func(f *fixture) string { return "http://meta.test/latest/meta-data/" }, Retry, "169.254.169.254"},
		{"name resolving to IPv4-mapped loopback without the dev flag", Policy{}, fakeResolver{"mapped.test": {"::ffff:127.0.0.1"}},
			func(f *fixture) string { return "http://mapped.test/" }, Retry, "not a public address"},
		{"name resolving to IPv4-mapped private", Policy{AllowLoopback: true}, fakeResolver{"mapped.test": {"::ffff:10.0.0.7"}},
			func(f *fixture) string { return "http://mapped.test:" + f.port() + "/" }, Retry, "not a public address"},
		{"name resolving to NAT64 metadata", Policy{AllowLoopback: true}, fakeResolver{"nat64.test": {"64:ff9b::a9fe:a9fe"}},
			func(f *fixture) string { return "http://nat64.test/" }, Retry, "not a public address"},
		{"every address checked", Policy{AllowLoopback: true}, fakeResolver{"multi.test": {"10.0.0.1", "fd00::1"}},
			func(f *fixture) string { return "http://multi.test/" }, Retry, "fd00::1"},
		{"plain http on AWS", Policy{RequireHTTPS: true}, nil,
			func(f *fixture) string { return "http://hooks.example.com/" }, Stop, "use https://"},
		{"unknown host", Policy{}, fakeResolver{},
			func(f *fixture) string { return "https://nowhere.test/" }, Retry, "no such host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(w http.ResponseWriter, r *http.Request) {})
			r := f.sender(tc.policy, tc.names).Attempt(t.Context(), tc.url(f), []string{f.secret}, "msg_1", []byte(`{}`))
			if r.Verdict != tc.verdict || !strings.Contains(r.Attempt.Error, tc.errHas) || r.Attempt.StatusCode != 0 {
				t.Fatalf("attempt %+v verdict %s; want %s with error containing %q", r.Attempt, r.Verdict, tc.verdict, tc.errHas)
			}
			if f.hits.Load() != 0 {
				t.Fatal("the receiver was reached")
			}
		})
	}
}

// With loopback allowed, a name that resolves to loopback delivers, also
// when the resolver answers in IPv4-mapped form (localhost gives
// ::ffff:127.0.0.1 on some systems): the address is unmapped first.
func TestAttemptReachesLoopbackByName(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1", "::ffff:127.0.0.1"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(w http.ResponseWriter, r *http.Request) {})
			names := fakeResolver{"localhost": {addr}}
			r := f.sender(Policy{AllowLoopback: true}, names).Attempt(t.Context(), "http://localhost:"+f.port()+"/", []string{f.secret}, "msg_1", []byte(`{}`))
			if r.Verdict != Delivered || f.hits.Load() != 1 {
				t.Fatalf("attempt %+v verdict %s, want delivered once", r.Attempt, r.Verdict)
			}
		})
	}
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := setup(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	s := NewSender(Config{Policy: Policy{AllowLoopback: true}, Timeout: 50 * time.Millisecond})
	r := s.Attempt(t.Context(), f.srv.URL, []string{f.secret}, "msg_1", []byte(`{}`))
	if r.Verdict != Retry || r.Attempt.Error != "timed out waiting for the receiver" {
		t.Fatalf("attempt %+v verdict %s, want a timed-out retry", r.Attempt, r.Verdict)
	}
}

func TestAttemptErrorHasNoSecrets(t *testing.T) {
	t.Parallel()
	f := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	names := fakeResolver{"hooks.test": {"10.0.0.1"}}
	for _, url := range []string{
		"https://hooks.test/cb?token=SUPERSECRET",
		"https://nowhere.test/cb?token=SUPERSECRET",
	} {
		r := f.sender(Policy{}, names).Attempt(t.Context(), url, []string{f.secret}, "msg_1", []byte(`{}`))
		if r.Attempt.Error == "" || strings.Contains(r.Attempt.Error, "SUPERSECRET") || strings.Contains(r.Attempt.Error, f.secret) {
			t.Fatalf("error %q must be set and free of the URL's token and the signing secret", r.Attempt.Error)
		}
	}
}

func TestAttemptWithoutSecret(t *testing.T) {
	t.Parallel()
	f := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	r := f.sender(Policy{AllowLoopback: true}, nil).Attempt(t.Context(), f.srv.URL, nil, "msg_1", []byte(`{}`))
	if r.Verdict != Retry || !strings.Contains(r.Attempt.Error, "no secret") || f.hits.Load() != 0 {
		t.Fatalf("attempt %+v verdict %s, want an unsent retry saying there is no secret", r.Attempt, r.Verdict)
	}
}
