package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/longrun/longrun/webhook"
)

// The official libraries check their own timestamps against the real clock,
// so the interop tests sign at time.Now (no sleeping involved).

func TestOfficialGoVerifiesOurs(t *testing.T) {
	t.Parallel()
	secret := webhook.NewSecret()
	body := []byte(`{"type":"execution.succeeded","data":{"executionId":"x"}}`)
	for _, secrets := range [][]string{{secret}, {webhook.NewSecret(), secret}} {
		h := http.Header{}
		if err := webhook.SetHeaders(h, secrets, "msg_interop", time.Now(), body); err != nil {
			t.Fatal(err)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("official Go library refuses our signature %q: %v", h.Get(webhook.HeaderSignature), err)
		}
		if err := wh.Verify(append(body, ' '), h); err == nil {
			t.Fatal("official Go library accepts a changed body")
		}
	}
}

func TestWeVerifyOfficialGo(t *testing.T) {
	t.Parallel()
	secret := webhook.NewSecret()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte(`{"hello":"world"}`)
	sig, err := wh.Sign("msg_official", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, "msg_official")
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	if err := webhook.Verify([]string{secret}, h, body, now); err != nil {
		t.Fatalf("we refuse the official Go library's signature: %v", err)
	}
}

// nodeInterop runs testdata/interop.mjs with the official npm package
// "standardwebhooks". It needs `npm ci --prefix webhook/testdata`; without
// it the test skips locally but fails in CI (CI=true), so a missing install
// step can never pass as green.
func nodeInterop(t *testing.T, req any) map[string]any {
	t.Helper()
	if _, err := os.Stat(filepath.Join("testdata", "node_modules", "standardwebhooks")); err != nil {
		msg := "webhook/testdata/node_modules is missing: run `npm ci --prefix webhook/testdata`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, "interop.mjs")
	cmd.Dir = "testdata"
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node interop.mjs: %v\n%s", err, stderr.String())
	}
	var answer map[string]any
	if err := json.Unmarshal(out, &answer); err != nil {
		t.Fatalf("node answered %q: %v", out, err)
	}
	return answer
}

func TestOfficialNodeVerifiesOurs(t *testing.T) {
	t.Parallel()
	secret := webhook.NewSecret()
	body := `{"type":"execution.failed","data":{"error":"Job.Failed","cause":"é ✓"}}`
	cases := []struct {
		name    string
		secrets []string
		body    string // what node is given to verify
		ok      bool
	}{
		{"one secret", []string{secret}, body, true},
		{"rotation: old and new", []string{webhook.NewSecret(), secret}, body, true},
		{"changed body", []string{secret}, body + " ", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if err := webhook.SetHeaders(h, tc.secrets, "msg_node", time.Now(), []byte(body)); err != nil {
				t.Fatal(err)
			}
			answer := nodeInterop(t, map[string]any{
				"op": "verify", "secret": secret, "body": tc.body,
				"headers": map[string]string{
					webhook.HeaderID:        h.Get(webhook.HeaderID),
					webhook.HeaderTimestamp: h.Get(webhook.HeaderTimestamp),
					webhook.HeaderSignature: h.Get(webhook.HeaderSignature),
				},
			})
			if answer["ok"] != tc.ok {
				t.Fatalf("node verify = %v, want ok=%v", answer, tc.ok)
			}
		})
	}
}

func TestWeVerifyOfficialNode(t *testing.T) {
	t.Parallel()
	secret := webhook.NewSecret()
	now := time.Now()
	body := `{"type":"execution.succeeded","data":{"output":{"message":"ラーメン"}}}`
	answer := nodeInterop(t, map[string]any{"op": "sign", "secret": secret, "id": "msg_node", "timestamp": now.Unix(), "body": body})
	sig, _ := answer["signature"].(string)
	h := http.Header{}
	h.Set(webhook.HeaderID, "msg_node")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	if err := webhook.Verify([]string{secret}, h, []byte(body), now); err != nil {
		t.Fatalf("we refuse node's signature %q: %v", sig, err)
	}
	// And node agrees with the spec's vector, so both sides are anchored.
	answer = nodeInterop(t, map[string]any{"op": "sign", "secret": specSecret, "id": specID, "timestamp": specUnix, "body": specBody})
	if answer["signature"] != specSignature {
		t.Fatalf("node signs the spec vector as %v, want %s", answer["signature"], specSignature)
	}
}
