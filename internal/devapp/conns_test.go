package devapp_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/jobs/noop"
)

// Clients holding many more idle connections than the bound — keep-alives
// after a request, and connections that never send one — do not keep a new
// client's request out.
func TestIdleConnectionsDoNotBlockNewRequests(t *testing.T) {
	t.Parallel()
	const limit = 16
	app, url := serve(t, devapp.Config{Jobs: registryOf(noop.Job), MaxConnections: limit})
	key := keyFor(t, app, "acme")
	addr := strings.TrimPrefix(url, "http://")
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := range 3 * limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if i%2 == 1 {
			continue // open, silent
		}
		// One request, then idle on a keep-alive connection.
		if _, err := c.Write([]byte("GET /executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("keep-alive request %d: %v", i, err)
		}
		resp.Body.Close()
	}
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, url+"/executions", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("a new request with %d idle connections open (bound %d): %v", len(held), limit, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a new request: %d", resp.StatusCode)
		}
	}
}
