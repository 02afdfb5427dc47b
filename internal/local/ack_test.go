package local

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// TestAnswerDeletesTheTaskMessage: the task's answer (SendTaskSuccess or
// SendTaskFailure) deletes its message in the same transaction, so the
// worker's Delete after it has nothing left to write. After a restart the
// engine no longer knows the message, and the worker's Delete removes it.
func TestAnswerDeletesTheTaskMessage(t *testing.T) {
	t.Parallel()
	limits := longrun.Limits{TimeoutSeconds: 100, HeartbeatSeconds: 10}
	for _, tc := range []struct {
		name    string
		restart bool
		answer  func(f *fixture, token string) error
	}{
		{"success", false, func(f *fixture, token string) error {
			return f.e.SendTaskSuccess(f.ctx, token, json.RawMessage(`{"ok":true}`))
		}},
		{"failure", false, func(f *fixture, token string) error {
			return f.e.SendTaskFailure(f.ctx, token, "Job.Failed", "it failed")
		}},
		{"success after a restart", true, func(f *fixture, token string) error {
			return f.e.SendTaskSuccess(f.ctx, token, json.RawMessage(`{"ok":true}`))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			arn := f.startJob("a", `{}`, limits)
			var msgs []longrun.Message
			f.waitFor("the task message", func() bool {
				var err error
				msgs, err = f.queue.Receive(f.ctx, 1, 0, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				return len(msgs) == 1
			})
			var tm longrun.TaskMessage
			if err := json.Unmarshal([]byte(msgs[0].Body), &tm); err != nil {
				t.Fatal(err)
			}
			if tc.restart {
				f.crash()
			}
			if err := tc.answer(f, tm.TaskToken); err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.restart {
				want = 1
			}
			if n := f.queued(); n != want {
				t.Errorf("%d messages in the queue after the answer, want %d", n, want)
			}
			if err := f.queue.Delete(f.ctx, msgs[0].Receipt); err != nil {
				t.Errorf("the worker's Delete: %v", err)
			}
			if n := f.queued(); n != 0 {
				t.Errorf("%d messages in the queue after the worker's Delete", n)
			}
			if d := f.waitEnd(arn); !d.Status.Terminal() {
				t.Errorf("ended %s", d.Status)
			}
		})
	}
}
