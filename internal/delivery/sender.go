package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/webhook"
)

// Timeout is how long a receiver has to answer 2xx (Standard Webhooks
// recommends 15 to 30 s; DESIGN.md § Webhooks says 15).
const Timeout = 15 * time.Second

// Caps on what is read back from a receiver: nothing it sends is needed but a
// short excerpt for the attempt record.
const (
	maxResponseHeaderBytes = 16 << 10
	maxBodyRead            = 4 << 10
	maxErrorExcerpt        = 200
)

// errRefused marks a destination the Policy forbids.
var errRefused = errors.New("destination refused")

// Verdict is what an attempt's answer means for the delivery.
type Verdict int

// The verdicts.
const (
	Retry     Verdict = iota // not delivered; try again on the schedule
	Delivered                // 2xx within Timeout
	Stop                     // 410 Gone, or a URL the policy refuses outright: never try again
)

func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "delivered"
	case Stop:
		return "stop"
	}
	return "retry"
}

// Result is one attempt and what it means.
type Result struct {
	Attempt    longrun.Attempt
	Verdict    Verdict
	RetryAfter time.Duration // from Retry-After on 429 or 503; 0 when absent
}

// Config configures a Sender.
type Config struct {
	Policy    Policy
	Timeout   time.Duration // 0 means Timeout
	Clock     longrun.Clock // nil means longrun.SystemClock
	UserAgent string        // "" means "longrun-webhook/1"
	// Resolver looks up host names; nil means net.DefaultResolver. Tests
	// inject one that answers private addresses.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// Sender makes webhook attempts over an SSRF-safe HTTP client.
type Sender struct {
	policy    Policy
	clock     longrun.Clock
	userAgent string
	client    *http.Client
	resolver  resolver
	dialer    *net.Dialer
}

// NewSender returns a Sender. Its client never follows redirects (a 3xx is a
// failed attempt: the receiver should update its URL), never uses a proxy
// from the environment (the proxy's address would be checked instead of the
// receiver's), and checks every address it connects to against cfg.Policy.
func NewSender(cfg Config) *Sender {
	s := &Sender{
		policy:    cfg.Policy,
		clock:     cfg.Clock,
		userAgent: cfg.UserAgent,
		resolver:  cfg.Resolver,
	}
	if s.clock == nil {
		s.clock = longrun.SystemClock{}
	}
	if s.userAgent == "" {
		s.userAgent = "longrun-webhook/1"
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = Timeout
	}
	s.dialer = &net.Dialer{Timeout: timeout, Control: s.policy.control}
	s.client = &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            s.dial,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
			IdleConnTimeout:        90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

// dial resolves the host itself, refuses forbidden addresses before dialing
// (clearer errors, and IPv4-mapped answers are refused as such rather than
// unmapped), then dials each address in turn; the dialer's Control checks
// the address again at connect time, which is the check that matters.
func (s *Sender) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portText, err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = s.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	var errs []error
	for _, a := range addrs {
		if s.policy.AllowLoopback && a.Is4In6() && a.Unmap().IsLoopback() {
			// localhost may resolve to ::ffff:127.0.0.1: that is loopback,
			// allowed here. Any other mapped address stays refused as such.
			a = a.Unmap()
		}
		ap := netip.AddrPortFrom(a, uint16(port))
		if err := s.policy.checkAddr(ap); err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", errRefused, err))
			continue
		}
		conn, err := s.dialer.DialContext(ctx, network, ap.String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	return nil, errors.Join(errs...)
}

// Attempt posts body to rawURL once, signed with every secret, and classifies
// the answer. It never returns an error: every failure is a Result.
func (s *Sender) Attempt(ctx context.Context, rawURL string, secrets []string, eventID string, body []byte) Result {
	start := s.clock.Now()
	fail := func(v Verdict, format string, args ...any) Result {
		return Result{Attempt: longrun.Attempt{At: start, Error: excerpt(fmt.Sprintf(format, args...))}, Verdict: v}
	}
	if err := CheckURL(rawURL, s.policy); err != nil {
		return fail(Stop, "%s", longrun.ErrorMessage(err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return fail(Stop, "build request: %v", unwrapURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	if err := webhook.SetHeaders(req.Header, secrets, eventID, start, body); err != nil {
		// No active secret is a tenant misconfiguration that rotation fixes;
		// keep retrying rather than dropping the event.
		return fail(Retry, "sign: %v", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		r := fail(Retry, "%s", describeError(err))
		r.Attempt.Latency = s.clock.Now().Sub(start)
		return r
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
	r := Result{Attempt: longrun.Attempt{At: start, StatusCode: resp.StatusCode, Latency: s.clock.Now().Sub(start)}}
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		r.Verdict = Delivered
		return r
	case code == http.StatusGone:
		r.Verdict = Stop
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		r.Verdict = Retry
		r.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), start)
	default:
		r.Verdict = Retry
	}
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if code := resp.StatusCode; code >= 300 && code <= 399 {
		msg += " (redirects are not followed; update the callback URL)"
	}
	if text := strings.TrimSpace(string(head)); text != "" {
		msg += ": " + text
	}
	r.Attempt.Error = excerpt(msg)
	return r
}

// describeError turns a client error into a short, secret-free excerpt: no
// URL (its query may hold a token), no request headers.
func describeError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errRefused):
		var parts []string
		for e := range strings.SplitSeq(unwrapURLError(err).Error(), "\n") {
			parts = append(parts, strings.TrimPrefix(strings.TrimPrefix(e, "dial tcp: "), "lookup "))
		}
		return strings.Join(parts, "; ")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out waiting for the receiver"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return unwrapURLError(err).Error()
}

// excerpt keeps the start of s on one printable line.
func excerpt(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > maxErrorExcerpt {
		cut := maxErrorExcerpt
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP-date
// (RFC 9110 § 10.2.3); anything unreadable or in the past is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
