package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	longrun "github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/jsonscan"
)

// decodeMessage reads a task message from a queue body.
func decodeMessage(body string) (longrun.TaskMessage, error) {
	msg, ok := scanMessage(body)
	if !ok {
		msg = longrun.TaskMessage{}
		if err := json.Unmarshal([]byte(body), &msg); err != nil {
			return msg, fmt.Errorf("decode task message: %w", err)
		}
	}
	switch {
	case msg.TaskToken == "":
		return msg, fmt.Errorf("task message has no taskToken")
	case msg.ExecutionID == "":
		return msg, fmt.Errorf("task message has no executionId")
	}
	return msg, nil
}

// scanMessage decodes a task message as json.Unmarshal would, in one pass
// (jsonscan) that copies the input, up to 256 KiB, as it is rather than
// checking it all and then decoding it. It gives up (ok false) on anything
// json.Unmarshal would report: that one then says what is wrong.
func scanMessage(body string) (msg longrun.TaskMessage, ok bool) {
	v, err := jsonscan.Fields([]byte(body), "taskToken", "executionArn", "executionId", "job", "limits", "input")
	if err != nil {
		return msg, false
	}
	for i, dst := range []any{&msg.TaskToken, &msg.ExecutionARN, &msg.ExecutionID, &msg.Job, &msg.Limits} {
		if v[i] != nil && json.Unmarshal(v[i], dst) != nil {
			return msg, false
		}
	}
	msg.Input = json.RawMessage(v[5])
	return msg, true
}

// rejectMessage fails the task of a message that cannot be processed, if a
// token can be read from it, so the execution fails at once with a clear
// error instead of waiting for its timeout. It returns whether the message is
// settled (and can be deleted).
func (p *Processor) rejectMessage(ctx context.Context, body string, decodeErr error) bool {
	var probe struct {
		TaskToken   string `json:"taskToken"`
		ExecutionID string `json:"executionId"`
	}
	_ = json.Unmarshal([]byte(body), &probe) // best effort: a token may still be there
	log := p.log.With("execution_id", probe.ExecutionID)
	if probe.TaskToken == "" {
		log.ErrorContext(ctx, "bad task message without a token; leaving it for the dead-letter queue", "err", decodeErr, "body_bytes", len(body))
		return false
	}
	cause := longrun.Truncate(fmt.Sprintf("the worker could not read the task message: %v", decodeErr), longrun.MaxCauseLength)
	err := p.send(ctx, probe.ExecutionID, "send task failure", log, func() error {
		return p.cfg.Tasks.SendTaskFailure(ctx, probe.TaskToken, longrun.ErrNameBadMessage, cause)
	})
	if err != nil {
		log.ErrorContext(ctx, "reject bad task message", "err", err)
		return false
	}
	log.WarnContext(ctx, "bad task message rejected", "err", decodeErr)
	return true
}

// handleBody processes one queue message body, received for the receives-th
// time; it returns whether the message is done with.
func (p *Processor) handleBody(ctx context.Context, body string, receives int, log *slog.Logger) bool {
	msg, err := decodeMessage(body)
	if err != nil {
		return p.rejectMessage(ctx, body, err)
	}
	if err := p.process(ctx, msg, receives); err != nil {
		if ctx.Err() != nil {
			// Shutting down (SIGTERM, Ctrl-C): expected, and already logged
			// as an interrupted job whose message comes back.
			log.InfoContext(ctx, "task message left for a retry", "err", err, "execution_id", msg.ExecutionID)
			return false
		}
		log.ErrorContext(ctx, "process task message", "err", err, "execution_id", msg.ExecutionID)
		return false
	}
	return true
}
