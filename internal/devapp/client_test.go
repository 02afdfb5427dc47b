package devapp_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// client calls the API of a served app in tests.
type client struct {
	url, key string
	hc       *http.Client
}

func newClient(t *testing.T, url, key string) *client {
	t.Helper()
	return &client{url: url, key: key, hc: &http.Client{}}
}

// do sends body (JSON) to path and returns the status and the response body.
func (c *client) do(t *testing.T, method, path string, body any) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

// start starts an execution of {} and returns its id.
func (c *client) start(t *testing.T) string {
	t.Helper()
	return c.startInput(t, map[string]any{})
}

// startInput starts an execution of input and returns its id.
func (c *client) startInput(t *testing.T, input any) string {
	t.Helper()
	code, out, _ := c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": input})
	if code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, out)
	}
	var e struct{ ExecutionID string }
	if err := json.Unmarshal(out, &e); err != nil || e.ExecutionID == "" {
		t.Fatalf("start: %d %s: no execution id (%v)", code, out, err)
	}
	return e.ExecutionID
}
