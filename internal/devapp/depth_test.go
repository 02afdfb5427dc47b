package devapp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/api"
	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/jobs/noop"
)

// An input at the nesting limit runs to the end on the engine; one level
// deeper is refused at the door with a 400 that names the limit.
func TestInputDepthLimit(t *testing.T) {
	t.Parallel()
	app, url := serve(t, devapp.Config{Jobs: registryOf(noop.Job)})
	c := newClient(t, url, keyFor(t, app, "acme"))
	nested := func(depth int) json.RawMessage {
		// Brackets inside strings do not count.
		return json.RawMessage(strings.Repeat(`{"a":"[[{",`+`"b":`, depth-1) + `{"c":"]]"}` + strings.Repeat("}", depth-1))
	}
	code, out, _ := c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": nested(api.MaxInputDepth)})
	if code != http.StatusAccepted {
		t.Fatalf("input %d deep: %d %s", api.MaxInputDepth, code, out)
	}
	var e struct{ ExecutionID string }
	_ = json.Unmarshal(out, &e)
	waitStatus(t, app, e.ExecutionID, longrun.StatusSucceeded)

	code, out, _ = c.do(t, http.MethodPost, "/start-execution", map[string]any{"input": nested(api.MaxInputDepth + 1)})
	if code != http.StatusBadRequest || !strings.Contains(string(out), "the limit is 1000") {
		t.Fatalf("input %d deep: %d %s, want 400 naming the limit", api.MaxInputDepth+1, code, out)
	}
}
