package delivery

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// errNotIPv4 is parseIPv4's answer for a host that ends in a number but is
// no IPv4 address: the WHATWG URL parser refuses such a URL.
var errNotIPv4 = errors.New("not a valid IPv4 address")

// parseIPv4 reads host as the WHATWG URL standard's host parser (what
// browsers do) and inet_aton (what getaddrinfo, curl and many HTTP clients
// do) read it: one to four dot-separated numbers, each decimal, octal (a
// leading 0) or hexadecimal (0x), the last filling the bytes left, so
// 2130706433, 0x7f000001, 127.1 and 0177.0.0.1 are all 127.0.0.1. ok is
// false when host does not end in a number (a domain name, to resolve);
// err is set when it does but is no address.
func parseIPv4(host string) (addr netip.Addr, ok bool, err error) {
	parts := strings.Split(host, ".")
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1] // one trailing dot is allowed
	}
	if !endsInNumber(parts[len(parts)-1]) {
		return netip.Addr{}, false, nil
	}
	if len(parts) > 4 {
		return netip.Addr{}, true, errNotIPv4
	}
	var nums []uint64
	for _, p := range parts {
		n, err := ipv4Number(p)
		if err != nil {
			return netip.Addr{}, true, errNotIPv4
		}
		nums = append(nums, n)
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, true, errNotIPv4
	}
	v := last
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, true, errNotIPv4
		}
		v += n << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true, nil
}

// endsInNumber is the WHATWG "ends in a number" test of a host's last label:
// all decimal digits, or a 0x number.
func endsInNumber(label string) bool {
	if label == "" {
		return false
	}
	if strings.Trim(label, "0123456789") == "" {
		return true
	}
	_, err := ipv4Number(label)
	return err == nil && (strings.HasPrefix(label, "0x") || strings.HasPrefix(label, "0X"))
}

// ipv4Number parses one part: 0x… hexadecimal (0x alone is 0), 0… octal,
// otherwise decimal.
func ipv4Number(p string) (uint64, error) {
	if p == "" {
		return 0, errNotIPv4
	}
	base := 10
	switch {
	case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
		p, base = p[2:], 16
		if p == "" {
			return 0, nil
		}
	case len(p) > 1 && p[0] == '0':
		p, base = p[1:], 8
	}
	if strings.ContainsAny(p, "+-_") {
		return 0, errNotIPv4 // ParseUint would take none of these, but say so plainly
	}
	n, err := strconv.ParseUint(p, base, 64)
	if err != nil || n > 1<<32-1 {
		return 0, errNotIPv4
	}
	return n, nil
}
