package devapp_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/devapp"
)

// copyTemplate copies the repository's template and state machines into a
// temporary directory, with edit applied to the template's text.
func copyTemplate(t *testing.T, edit func([]byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "template.yaml"), edit(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "statemachine"), os.DirFS(filepath.Join("..", "..", "statemachine"))); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "template.yaml")
}

func TestOpenFollowsTheTemplate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		schedule string
		want     []time.Duration
	}{
		{"template default", "", []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}},
		{"flag", "1s,5s,30s", []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := openApp(t, devapp.Config{WebhookSchedule: tt.schedule})
			if app.Limits != (longrun.Limits{TimeoutSeconds: 890, HeartbeatSeconds: 60}) {
				t.Errorf("limits %+v, want the template's JobTimeoutSeconds and JobHeartbeatSeconds defaults", app.Limits)
			}
			if len(app.Schedule) != len(tt.want) {
				t.Fatalf("schedule %v, want %v", app.Schedule, tt.want)
			}
			for i := range tt.want {
				if app.Schedule[i] != tt.want[i] {
					t.Fatalf("schedule %v, want %v", app.Schedule, tt.want)
				}
			}
		})
	}
}

func TestOpenRefusesWhatItCannotRun(t *testing.T) {
	t.Parallel()
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	for _, tt := range []struct {
		name              string
		template, deliver func([]byte) []byte
		schedule          string
		want              string
	}{
		{name: "bad schedule", schedule: "soon", want: `webhook schedule "soon"`},
		{name: "no status-change rule", template: func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("Type: EventBridgeRule"), []byte("Type: Schedule"))
		}, want: "NotifyFunction has no EventBridgeRule"},
		{name: "a substitution with no local stand-in",
			template: replace("NotifyFunctionArn: !GetAtt NotifyFunction.Arn", "NotifyFunctionArn: !GetAtt Table.StreamArn"),
			want:     "no local stand-in for Table.StreamArn"},
		{name: "an unsupported state", deliver: replace(`"Type": "Wait"`, `"Type": "Parallel"`), want: `"WaitForRetry"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tpl := copyTemplate(t, orSame(tt.template))
			def := filepath.Join(filepath.Dir(tpl), "statemachine", "deliver.asl.json")
			data, err := os.ReadFile(def)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(def, orSame(tt.deliver)(data), 0o600); err != nil {
				t.Fatal(err)
			}
			app, err := devapp.Open(context.Background(), devapp.Config{DataDir: t.TempDir(), TemplatePath: tpl, WebhookSchedule: tt.schedule})
			if err == nil {
				app.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v\nwant it to say %q", err, tt.want)
			}
		})
	}
}

func orSame(edit func([]byte) []byte) func([]byte) []byte {
	if edit == nil {
		return func(b []byte) []byte { return b }
	}
	return edit
}

// The local API throttles each tenant on its own.
func TestOpenThrottlesPerTenant(t *testing.T) {
	t.Parallel()
	app := openApp(t, devapp.Config{RatePerTenant: 1})
	get := func(key string) int {
		req := httptest.NewRequest(http.MethodGet, "/executions", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		app.Handler.ServeHTTP(w, req)
		return w.Code
	}
	acme, globex := keyFor(t, app, "acme"), keyFor(t, app, "globex")
	codes := []int{get(acme), get(acme), get(acme)}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("acme's three requests at once got %v, want 200 200 429 (1/s, burst 2)", codes)
	}
	if code := get(globex); code != 200 {
		t.Fatalf("another tenant got %d, want 200", code)
	}
}

// A callback to this machine is refused in dev unless the flag allows it,
// and the refusal names the flag.
func TestLoopbackRefusalNamesTheFlag(t *testing.T) {
	t.Parallel()
	app := openApp(t, devapp.Config{})
	key := keyFor(t, app, "dev")
	for _, tt := range []struct {
		url      string
		wantFlag bool
	}{
		{"http://127.0.0.1:8080/hook", true},
		{"http://localhost/hook", true},
		{"http://10.0.0.1/hook", false}, // private: no flag opens it
	} {
		body := strings.NewReader(`{"input": {}, "callbackUrl": "` + tt.url + `"}`)
		req := httptest.NewRequest(http.MethodPost, "/start-execution", body)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		app.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400: %s", tt.url, rec.Code, rec.Body)
		}
		if got := strings.Contains(rec.Body.String(), "--allow-loopback-webhooks"); got != tt.wantFlag {
			t.Errorf("%s: names the flag %v, want %v: %s", tt.url, got, tt.wantFlag, rec.Body)
		}
	}
}

// The console is served beside the API; the bare address leads a browser to
// it, while an API client there still gets the API's answer.
func TestConsoleIsServedBesideTheAPI(t *testing.T) {
	t.Parallel()
	app := openApp(t, devapp.Config{})
	get := func(path, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		app.Handler.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/", ""); rec.Code != http.StatusFound || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET / from a browser: %d to %q, want 302 to /ui/", rec.Code, rec.Header().Get("Location"))
	}
	if rec := get("/", "Bearer lr_nope"); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET / with a bad key: %d, want the API's 401", rec.Code)
	}
	if rec := get("/ui/", ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "console.js") || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("GET /ui/: %d %v", rec.Code, rec.Header())
	}
	if rec := get("/ui/api/executions/x/trace", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("the console's data without a key: %d, want 401", rec.Code)
	}
	if rec := get("/executions", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("the API without a key: %d, want 401", rec.Code)
	}
	if got, want := devapp.ConsoleURL("http://127.0.0.1:3000", "lr_a+b"), "http://127.0.0.1:3000/ui/#key=lr_a%2Bb"; got != want {
		t.Errorf("ConsoleURL = %q, want %q", got, want)
	}
}

// The console's trace of an execution is its tenant's only: another key gets
// 404, exactly as from the API.
func TestConsoleTraceIsTenantIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := openApp(t, devapp.Config{})
	owner, other := keyFor(t, app, "owner"), keyFor(t, app, "other")
	e := &longrun.Execution{ID: "01a00000-0000-7000-8000-000000000002", Tenant: "owner", Status: longrun.StatusRunning, Input: []byte(`{}`), StartDate: time.Now()}
	e.ARN = app.Engine.ExecutionARN(e.ID)
	if _, _, err := app.Executions.CreateExecution(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  string
		want int
	}{{owner, http.StatusOK}, {other, http.StatusNotFound}} {
		req := httptest.NewRequest(http.MethodGet, "/ui/api/executions/"+e.ID+"/trace", nil)
		req.Header.Set("Authorization", "Bearer "+tt.key)
		rec := httptest.NewRecorder()
		app.Handler.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("trace with the %d-expecting key: %d %s", tt.want, rec.Code, rec.Body)
		}
		if tt.want == http.StatusOK && !strings.Contains(rec.Body.String(), `"graph"`) {
			t.Errorf("trace: %s", rec.Body)
		}
	}
}

// A callback URL in an odd IPv4 spelling is refused at start with a 400
// naming the address it means, as the dotted spelling is.
func TestStartRefusesOddIPv4Callbacks(t *testing.T) {
	t.Parallel()
	app := openApp(t, devapp.Config{})
	key := keyFor(t, app, "acme")
	for _, u := range []string{"http://127.0.0.1/", "http://2130706433/", "http://0x7f000001/", "http://127.1/", "http://0177.0.0.1/", "http://0x7f.1/"} {
		req := httptest.NewRequest(http.MethodPost, "/start-execution", strings.NewReader(`{"input":{},"callbackUrl":"`+u+`"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		app.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "127.0.0.1") {
			t.Errorf("start with callbackUrl %s: %d %s, want 400 naming 127.0.0.1", u, w.Code, w.Body)
		}
	}
}
