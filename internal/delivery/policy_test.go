package delivery

import (
	"strings"
	"testing"

	"github.com/longrun/longrun"
)

// TestControl runs the dial-time check on every address class DESIGN.md §
// Webhooks names. It never connects anywhere: Control is called directly, as
// net.Dialer calls it before connecting.
func TestControl(t *testing.T) {
	t.Parallel()
	strict := Policy{}
	dev := Policy{AllowLoopback: true}
	cases := []struct {
		name    string
		policy  Policy
		network string
		address string
		ok      bool
	}{
		{"public IPv4 on 443", strict, "tcp4", "93.184.216.34:443", true},
		{"public IPv4 on 80", strict, "tcp4", "93.184.216.34:80", true},
		{"public IPv4 on 8443", strict, "tcp4", "93.184.216.34:8443", true},
		{"public IPv6 on 443", strict, "tcp6", "[2606:4700:4700::1111]:443", true},
		{"public IPv4 on 22", strict, "tcp4", "93.184.216.34:22", false},
		{"public IPv4 on 6379", strict, "tcp4", "93.184.216.34:6379", false},
		{"configured port", Policy{Ports: []int{9000}}, "tcp4", "93.184.216.34:9000", true},
		{"default port not configured", Policy{Ports: []int{9000}}, "tcp4", "93.184.216.34:443", false},
		{"udp", strict, "udp4", "93.184.216.34:443", false},

		{"loopback 127.0.0.1", strict, "tcp4", "127.0.0.1:443", false},
		{"loopback 127.1.2.3", strict, "tcp4", "127.1.2.3:443", false},
		{"RFC 1918 10/8", strict, "tcp4", "10.0.0.1:443", false},
		{"RFC 1918 172.16/12", strict, "tcp4", "172.16.5.4:443", false},
		{"RFC 1918 172.31.255.255", strict, "tcp4", "172.31.255.255:443", false},
		{"RFC 1918 192.168/16", strict, "tcp4", "192.168.1.1:443", false},
		{"link-local", strict, "tcp4", "169.254.1.1:443", false},
		{"EC2 metadata IPv4", strict, "tcp4", "169.254.169.254:80", false},
		{"EC2 metadata IPv6", strict, "tcp6", "[fd00:ec2::254]:80", false},
		{"CGNAT 100.64/10", strict, "tcp4", "100.64.0.1:443", false},
		{"CGNAT 100.127.255.254", strict, "tcp4", "100.127.255.254:443", false},
		{"this network 0.0.0.0", strict, "tcp4", "0.0.0.0:443", false},
		{"this network 0.1.2.3", strict, "tcp4", "0.1.2.3:443", false},
		{"multicast 224/4", strict, "tcp4", "224.0.0.1:443", false},
		{"multicast 239.255.255.250", strict, "tcp4", "239.255.255.250:443", false},
		{"broadcast", strict, "tcp4", "255.255.255.255:443", false},
		{"reserved 240/4", strict, "tcp4", "240.0.0.1:443", false},
		{"IPv6 loopback ::1", strict, "tcp6", "[::1]:443", false},
		{"IPv6 unspecified ::", strict, "tcp6", "[::]:443", false},
		{"IPv6 ULA fc00::/7", strict, "tcp6", "[fc00::1]:443", false},
		{"IPv6 ULA fd12::", strict, "tcp6", "[fd12:3456::1]:443", false},
		{"IPv6 link-local", strict, "tcp6", "[fe80::1]:443", false},
		{"IPv6 multicast", strict, "tcp6", "[ff02::1]:443", false},
		{"IPv4-mapped loopback", strict, "tcp6", "[::ffff:127.0.0.1]:443", false},
		{"IPv4-mapped private", strict, "tcp6", "[::ffff:10.0.0.1]:443", false},
		{"IPv4-mapped metadata", strict, "tcp6", "[::ffff:169.254.169.254]:80", false},
		{"IPv4-mapped CGNAT", strict, "tcp6", "[::ffff:100.64.0.1]:443", false},
		{"IPv4-compatible loopback", strict, "tcp6", "[::127.0.0.1]:443", false},
		{"IPv4-compatible private", strict, "tcp6", "[::10.0.0.1]:443", false},
		{"NAT64 loopback", strict, "tcp6", "[64:ff9b::7f00:1]:443", false},
		{"NAT64 metadata", strict, "tcp6", "[64:ff9b::a9fe:a9fe]:80", false},
		{"NAT64 private", strict, "tcp6", "[64:ff9b::a00:1]:443", false},
		{"local-use NAT64 private", strict, "tcp6", "[64:ff9b:1::a00:1]:443", false},
		{"6to4 of private", strict, "tcp6", "[2002:a00:1::1]:443", false},
		{"zone", strict, "tcp6", "[fe80::1%eth0]:443", false},

		{"dev: loopback any port", dev, "tcp4", "127.0.0.1:3000", true},
		{"dev: 127/8", dev, "tcp4", "127.9.9.9:8080", true},
		{"dev: ::1", dev, "tcp6", "[::1]:8080", true},
		{"dev: still no RFC 1918", dev, "tcp4", "10.0.0.1:443", false},
		{"dev: still no metadata", dev, "tcp4", "169.254.169.254:80", false},
		{"dev: still no ::", dev, "tcp6", "[::]:443", false},
		{"dev: still no 0.0.0.0", dev, "tcp4", "0.0.0.0:8080", false},
		{"dev: still no mapped loopback", dev, "tcp6", "[::ffff:127.0.0.1]:8080", false},
		{"dev: still no NAT64 loopback", dev, "tcp6", "[64:ff9b::7f00:1]:8080", false},
		{"dev: public keeps port rules", dev, "tcp4", "93.184.216.34:22", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.control(tc.network, tc.address, nil)
			if tc.ok && err != nil {
				t.Fatalf("control(%s, %s) = %v, want allowed", tc.network, tc.address, err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("control(%s, %s) allowed, want refused", tc.network, tc.address)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	strict := Policy{}
	aws := Policy{RequireHTTPS: true}
	dev := Policy{AllowLoopback: true}
	cases := []struct {
		name   string
		policy Policy
		url    string
		fix    string // part of the message; "" means valid
	}{
		{"https", aws, "https://hooks.example.com/longrun?team=7", ""},
		{"https on 8443", aws, "https://hooks.example.com:8443/x", ""},
		{"http allowed locally", strict, "http://hooks.example.com/x", ""},
		{"public IP literal", strict, "https://93.184.216.34/x", ""},
		{"dev: localhost any port", dev, "http://localhost:3001/hook", ""},
		{"dev: 127.0.0.1 any port", dev, "http://127.0.0.1:3001/hook", ""},
		{"dev: [::1]", dev, "http://[::1]:3001/hook", ""},
		{"dev: name on any port, checked at dial time", dev, "http://receiver.test:3001/hook", ""},

		{"http on AWS", aws, "http://hooks.example.com/x", "use https://"},
		{"ftp", strict, "ftp://hooks.example.com/x", `scheme "ftp"`},
		{"file", strict, "file:///etc/passwd", `scheme "file"`},
		{"gopher", strict, "gopher://hooks.example.com/", `scheme "gopher"`},
		{"relative", strict, "/hook", "absolute URL"},
		{"opaque", strict, "https:hooks.example.com", "https://host/path"},
		{"userinfo", strict, "https://user:pass@hooks.example.com/", "user:password@"},
		{"fragment", strict, "https://hooks.example.com/#x", "#fragment"},
		{"empty fragment", strict, "https://hooks.example.com/#", "#fragment"},
		{"no host", strict, "https:///x", "host is missing"},
		{"port not allowed", strict, "https://hooks.example.com:22/", "port 22"},
		{"port not a number", strict, "https://hooks.example.com:99999/", "not a port"},
		{"too long", strict, "https://hooks.example.com/" + strings.Repeat("a", MaxURLLength), "at most 2048"},
		{"loopback literal", strict, "https://127.0.0.1/", "not a public address"},
		{"localhost", strict, "https://localhost/", "this machine"},
		{"sub.localhost", strict, "https://app.localhost/", "this machine"},
		{"private literal", strict, "https://10.1.2.3/", "not a public address"},
		{"metadata literal", dev, "http://169.254.169.254/latest/meta-data/", "not a public address"},
		{"IPv6 ULA literal", strict, "https://[fd00:ec2::254]/", "not a public address"},
		{"IPv4-mapped literal", dev, "http://[::ffff:127.0.0.1]:3000/", "not a public address"},
		{"zone literal", strict, "https://[fe80::1%25eth0]/", "zone"},
		{"not a URL", strict, "https://exa mple.com/", "not a URL"},

		// IPv4 in the spellings browsers (WHATWG) and inet_aton read: the
		// address they mean is checked, and named.
		{"decimal loopback", strict, "http://2130706433/", `"2130706433" means 127.0.0.1: 127.0.0.1 is not a public address`},
		{"hex loopback", strict, "http://0x7f000001/", "means 127.0.0.1: 127.0.0.1 is not a public address"},
		{"HEX loopback", strict, "http://0X7F000001/", "means 127.0.0.1"},
		{"short loopback", strict, "http://127.1/", "means 127.0.0.1: 127.0.0.1 is not a public address"},
		{"octal loopback", strict, "http://0177.0.0.1/", "means 127.0.0.1: 127.0.0.1 is not a public address"},
		{"mixed loopback", strict, "http://0x7f.0.00.0x1/", "means 127.0.0.1"},
		{"three parts", strict, "http://127.0.1/", "means 127.0.0.1"},
		{"trailing dot", strict, "http://127.1./", "means 127.0.0.1"},
		{"octal metadata", dev, "http://0251.0376.0251.0376/", "means 169.254.169.254: 169.254.169.254 is not a public address"},
		{"decimal private", strict, "http://167772161/", "means 10.0.0.1"},
		{"dev: short loopback is named", dev, "http://127.1:3000/", "write it as 127.0.0.1"},
		{"public in odd spelling", strict, "http://0x5db8d822/", "means 93.184.216.34: write it as 93.184.216.34"},
		{"ends in a number, too big", strict, "http://4294967296/", "not a valid IPv4 address"},
		{"ends in a number, a part too big", strict, "http://256.1.1.1/", "not a valid IPv4 address"},
		{"ends in a number, five parts", strict, "http://1.2.3.4.5/", "not a valid IPv4 address"},
		{"ends in a number, bad octal", strict, "http://09.1.1.1/", "not a valid IPv4 address"},
		{"ends in a number after a name", strict, "http://example.0x1/", "not a valid IPv4 address"},
		{"a name with digits is a name", strict, "http://1x.example.com/", ""},
		{"a hex-looking name is a name", strict, "http://cafe.example/", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckURL(tc.url, tc.policy)
			if tc.fix == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want valid", tc.url, err)
				}
				return
			}
			if !longrun.IsCode(err, longrun.EINVALID) {
				t.Fatalf("CheckURL(%q) = %v, want an EINVALID error", tc.url, err)
			}
			if msg := longrun.ErrorMessage(err); !strings.Contains(msg, tc.fix) || !strings.HasPrefix(msg, "callbackUrl: ") {
				t.Fatalf("CheckURL(%q) message %q, want it to start with callbackUrl: and mention %q", tc.url, msg, tc.fix)
			}
		})
	}
}
