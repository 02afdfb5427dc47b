package sfnengine_test

import (
	"context"
	"testing"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/orchestratortest"
)

// A task with HeartbeatSeconds that gets no heartbeat is lost. The real
// Work state has none, so this is not a suite case: kumo's stand-in
// (awstest.FixHeartbeatPath, here at 1 s) gives it one. On AWS the error is
// States.HeartbeatTimeout; kumo reports States.Timeout. Either way the
// Catch sends the execution to FinalizeFailure and the token is gone.
func TestKumoHeartbeatTimeout(t *testing.T) {
	t.Parallel()
	h := conformanceHarness(t, awstest.Kumo(t), 1)
	in := orchestratortest.Start(t, h, `{"timer":600}`, longrun.Limits{TimeoutSeconds: 60, HeartbeatSeconds: 30})
	task := orchestratortest.Task(t, h, in.ExecutionID)
	req := orchestratortest.Notified(t, h)
	if req.Status != longrun.StatusFailed || req.Failure == nil {
		t.Fatalf("notify got %+v, want finalize FAILED", req)
	}
	t.Logf("kumo: heartbeat timeout reaches notify as %q (AWS: States.HeartbeatTimeout)", req.Failure.Error)
	err := h.Tasks.SendTaskHeartbeat(context.Background(), task.TaskToken)
	if longrun.ErrorCode(err) != longrun.ETASKGONE {
		t.Fatalf("SendTaskHeartbeat(lost token) = %v (code %q), want code %q", err, longrun.ErrorCode(err), longrun.ETASKGONE)
	}
}
