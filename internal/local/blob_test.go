package local

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// bigText is n bytes of random base64: incompressible, unlike any other
// test's payload.
func bigText(seed uint64, n int) string {
	raw := make([]byte, n*3/4)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)
}

func (f *fixture) scalar(query string, args ...any) int64 {
	f.t.Helper()
	var n sql.NullInt64
	if err := f.db.Read(f.ctx, func(tx *sql.Tx) error { return tx.QueryRowContext(f.ctx, query, args...).Scan(&n) }); err != nil {
		f.t.Fatal(err)
	}
	return n.Int64
}

// A large input and output are stored once as chunks, not copied into every
// event and record, and everything that reads them back — the history,
// describe, a restart in the middle of the Finalize invocation (the run
// record's state input and parameters) — sees exactly the bytes of before;
// retention deletes the chunks with the execution.
func TestLargePayloadsStoredOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const size = 64 << 10
	input := json.RawMessage(`{"data":"` + bigText(1, size) + `"}`)
	output := json.RawMessage(`{"result":"` + bigText(2, size) + `"}`)

	calling := make(chan struct{}, 1)
	f.notify.set(func(r *recorder) { r.block, r.calling = make(chan struct{}), calling })
	arn := f.startJob("big-1", string(input), longrun.Limits{TimeoutSeconds: 60})
	tm, _ := f.takeTask()
	if !bytes.Equal(tm.Input, input) {
		t.Fatalf("task message input: %d bytes, want the %d given", len(tm.Input), len(input))
	}
	if err := f.e.SendTaskSuccess(f.ctx, tm.TaskToken, output); err != nil {
		t.Fatal(err)
	}
	<-calling // Finalize's invocation is under way: its parameters are in the run record
	f.crash()
	f.notify.set(func(r *recorder) {
		if r.block != nil {
			close(r.block)
		}
		r.block = nil
	})
	d := f.waitEnd(arn)
	if d.Status != longrun.StatusSucceeded {
		t.Fatalf("status %s %s %s", d.Status, d.Error, d.Cause)
	}
	if !bytes.Equal(d.Output, output) {
		t.Errorf("described output: %d bytes, want the job's %d", len(d.Output), len(output))
	}
	var start longrun.StateInput
	if err := json.Unmarshal(d.Input, &start); err != nil || !bytes.Equal(start.Input, input) {
		t.Errorf("described input does not hold the input given (%v)", err)
	}
	calls := f.notify.payloads()
	var req longrun.NotifyRequest
	if err := json.Unmarshal(calls[len(calls)-1], &req); err != nil || !bytes.Equal(req.Output, output) {
		t.Errorf("notify after the restart got another output (%v)", err)
	}

	h, err := f.e.History(f.ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ExecutionStarted":         `{"input":` + string(d.Input) + `}`,
		"ChoiceStateEntered:Kind":  `{"input":` + string(d.Input) + `}`,
		"TaskSucceeded:Work":       `{"output":` + string(output) + `}`,
		"TaskStateExited:Finalize": `{"output":` + string(output) + `}`,
		"ExecutionSucceeded":       `{"output":` + string(output) + `}`,
	}
	for _, ev := range h {
		key := ev.Type
		if ev.State != "" {
			key += ":" + ev.State
		}
		if w, ok := want[key]; ok {
			if string(ev.Detail) != w {
				t.Errorf("%s detail: %d bytes, not the %d expected", key, len(ev.Detail), len(w))
			}
			delete(want, key)
		}
		if !json.Valid(ev.Detail) && ev.Detail != nil {
			t.Errorf("%s detail is not JSON", key)
		}
	}
	if len(want) > 0 {
		t.Errorf("events missing: %v", want)
	}

	// Stored once: the history rows hold refs, and the chunks add up to
	// the input and the output, however many documents embed them.
	if n := f.scalar(`SELECT sum(length(events)) FROM local_history WHERE arn = ?`, arn); n > 16<<10 {
		t.Errorf("history rows hold %d bytes: payloads copied into them", n)
	}
	if n := f.scalar(`SELECT length(input) + length(output) FROM local_executions WHERE arn = ?`, arn); n > 4<<10 {
		t.Errorf("the execution's row holds %d bytes of input and output", n)
	}
	blobs := f.scalar(`SELECT sum(length(data)) FROM payload_chunks WHERE owner = ?`, arn)
	if limit := int64(1.1 * float64(len(input)+len(output))); blobs == 0 || blobs > limit {
		t.Errorf("%d bytes of chunks for %d bytes of input and output, want (0, %d]", blobs, len(input)+len(output), limit)
	}

	f.clock.Advance(time.Hour)
	if n, err := f.e.DeleteEnded(f.ctx, f.clock.Now(), 100); err != nil || n == 0 {
		t.Fatalf("DeleteEnded = %d, %v", n, err)
	}
	if n := f.scalar(`SELECT count(*) FROM payload_chunks`); n != 0 {
		t.Errorf("%d chunks left after retention deleted every execution", n)
	}
}
