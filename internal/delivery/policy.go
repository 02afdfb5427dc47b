// Package delivery sends longrun's webhooks: one signed HTTP attempt at a time
// through an SSRF-safe client, the classification of its answer, and the retry
// schedule that decides when the next attempt is due. It never sleeps: notify
// records each attempt and the state machine (or the local engine) waits.
package delivery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"code.dny.dev/ssrf"

	"github.com/longrun/longrun"
)

// MaxURLLength bounds a callback URL.
const MaxURLLength = 2048

// DefaultPorts are the ports a callback URL may use unless the Policy says
// otherwise: the HTTP and HTTPS defaults and 8443, the usual alternative HTTPS
// port. Anything else is far more often an internal service than a webhook
// receiver.
var DefaultPorts = []int{443, 80, 8443}

// Policy says where webhooks may go.
type Policy struct {
	// Ports a destination may use; nil means DefaultPorts.
	Ports []int
	// RequireHTTPS refuses plain http (on AWS, where payloads cross the internet).
	RequireHTTPS bool
	// AllowLoopback permits 127.0.0.0/8 and ::1 on any port, and nothing else
	// that is otherwise refused; only `longrun dev --allow-loopback-webhooks`
	// sets it, so a receiver on the developer's machine can be reached.
	AllowLoopback bool
}

func (p Policy) ports() []int {
	if p.Ports == nil {
		return DefaultPorts
	}
	return p.Ports
}

// loopback are the only prefixes AllowLoopback opens. IPv4-mapped forms
// (::ffff:127.0.0.1) stay refused: a real resolver never needs them.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// guard is the dial-time address check: code.dny.dev/ssrf denies every IANA
// special-purpose IPv4 range (loopback, RFC 1918, link-local with the
// 169.254.169.254 metadata address, CGNAT 100.64/10, 0/8, multicast,
// 240/4 and broadcast, documentation and benchmarking nets) and every IPv6
// address outside global unicast 2000::/3 (::1, ::, fc00::/7 with the EC2
// metadata fd00:ec2::254, fe80::/10, IPv4-mapped ::ffff:0:0/96,
// IPv4-compatible ::/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48), plus 6to4,
// Teredo and documentation prefixes inside it.
var guard = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// checkAddr reports why the client must not connect to ap, or nil.
func (p Policy) checkAddr(ap netip.AddrPort) error {
	addr := ap.Addr()
	if addr.Zone() != "" {
		return fmt.Errorf("%s has an IPv6 zone, which only local addresses use", addr)
	}
	if p.AllowLoopback {
		for _, pre := range loopback {
			if pre.Contains(addr) {
				return nil
			}
		}
	}
	if err := guard.SafeAddr(addr); err != nil {
		return fmt.Errorf("%s is not a public address", addr)
	}
	if !slices.Contains(p.ports(), int(ap.Port())) {
		return fmt.Errorf("port %d is not allowed (allowed: %s)", ap.Port(), joinInts(p.ports()))
	}
	return nil
}

// control is the net.Dialer Control hook: it runs after DNS resolution, on
// the very address about to be connected, so a name that resolves to a
// private address — or that changes its answer between a check and the
// connection (DNS rebinding) — cannot pass.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%w: network %s", errRefused, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errRefused, address, err)
	}
	if err := p.checkAddr(ap); err != nil {
		return fmt.Errorf("%w: %v", errRefused, err)
	}
	return nil
}

// CheckURL validates a callback URL when an execution is started, so a
// client learns at once what to fix. It cannot know where a host name will
// resolve: the dial-time check still decides each attempt.
func CheckURL(raw string, p Policy) error {
	invalid := func(format string, args ...any) error {
		return longrun.Errorf(longrun.EINVALID, "callbackUrl: "+format, args...)
	}
	if len(raw) > MaxURLLength {
		return invalid("%d characters, at most %d are allowed", len(raw), MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("not a URL (%v)", unwrapURLError(err))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if p.RequireHTTPS {
			return invalid("use https:// (plain http is not allowed here)")
		}
	case "":
		return invalid("use an absolute URL starting with https://")
	default:
		return invalid("scheme %q is not allowed; use https://", u.Scheme)
	}
	if u.Opaque != "" {
		return invalid("use https://host/path")
	}
	if u.User != nil {
		return invalid("remove the user:password@ part; webhooks are authenticated by their signature")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid("remove the #fragment; it is never sent to the server")
	}
	host := u.Hostname()
	if host == "" {
		return invalid("the host is missing")
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return invalid("port %q is not a port number", ps)
		}
		port = n
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := p.checkAddr(netip.AddrPortFrom(addr, uint16(port))); err != nil {
			return invalid("%v; use a public host", err)
		}
		return nil
	}
	// Numbers in other spellings (2130706433, 0x7f000001, 127.1, 0177.0.0.1)
	// are IPv4 addresses to browsers and inet_aton: checked as the address
	// they mean, and otherwise asked for in the usual form, since Go's
	// resolver would not read them.
	switch addr, ok, err := parseIPv4(host); {
	case err != nil:
		return invalid("host %q ends in a number but is not a valid IPv4 address", host)
	case ok:
		if err := p.checkAddr(netip.AddrPortFrom(addr, uint16(port))); err != nil {
			return invalid("host %q means %s: %v; use a public host", host, addr, err)
		}
		return invalid("host %q means %s: write it as %s", host, addr, addr)
	}
	if strings.Contains(host, "%") {
		return invalid("host %q has an IPv6 zone, which only local addresses use", host)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	isLocal := name == "localhost" || strings.HasSuffix(name, ".localhost")
	if isLocal && !p.AllowLoopback {
		return invalid("%s is this machine; use a public host", host)
	}
	if p.AllowLoopback {
		// The name may resolve to loopback, where any port is allowed; the
		// dial-time check applies the port rule to every other address.
		return nil
	}
	if !slices.Contains(p.ports(), port) {
		return invalid("port %d is not allowed; use one of %s", port, joinInts(p.ports()))
	}
	return nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// unwrapURLError drops the URL from a *url.Error: it may carry a token in its
// query, and the caller already knows which URL it sent.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// resolver finds the addresses of a host; *net.Resolver is one. Tests inject
// their own so that names resolving to private addresses can be tried
// without DNS.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ resolver = (*net.Resolver)(nil)
