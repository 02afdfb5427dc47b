// Package queuetest is the conformance suite of longrun.Queue: the one set of
// tests every adapter (internal/sqlite, internal/sqsqueue) runs, so the local
// queue behaves as SQS does.
//
// Run it from the adapter's own tests:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queuetest.Harness { ... })
//	}
//
// setup is called once per case, and the cases run in parallel, so it must
// return fresh queues each time.
//
// # Cases that need a controllable clock
//
// When Harness.Advance is nil (an adapter on real time, such as SQS or an SQS
// emulator) these cases are skipped with t.Skip and do not count as passed:
//
//   - VisibleAgainAfterTimeout
//   - ChangeVisibilityExtends
//   - LongPollWakesWhenVisible
//   - EmptyAfterWait (on real time only its wait=0 half runs)
//
// Every other case runs on real time too: it makes messages visible again with
// ChangeVisibility(0) instead of waiting, and never waits on an empty queue
// with wait > 0 unless a Send or a cancel ends the wait.
//
// # Stale receipts
//
// A receipt is valid for its own receive only. Once the message has been
// received again, Delete with the old receipt must not delete it. Whether that
// Delete returns nil (SQS, internal/sqlite) or an error is left to the adapter;
// the suite checks only that the message survives.
package queuetest

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// Config is the configuration of the queue a case needs.
type Config struct {
	// MaxReceiveCount moves a message to Harness.DeadLetter on the receive
	// after its MaxReceiveCount-th. 0: no dead-letter queue.
	MaxReceiveCount int
}

// Harness is what an adapter hands the suite.
type Harness struct {
	Queue longrun.Queue
	// DeadLetter is Queue's dead-letter queue; set when Config.MaxReceiveCount > 0.
	DeadLetter longrun.Queue
	// Advance moves the queues' clock forward by d and wakes anything waiting
	// on it. nil when the adapter runs on real time: the cases that need it
	// are then skipped (see the package doc).
	Advance func(d time.Duration)
	// Waits, optional, returns how many waits are pending on the queues'
	// clock (a fake clock counts its timers). The long-poll cases then act
	// only once Receive is waiting, so an adapter that ignored a Send or a
	// visibility change fails instead of passing because Receive started
	// late. nil: the cases act at once (weaker, but still correct).
	Waits func() int
	// StaleDeleteDeletes is a known emulator difference, asserted as the
	// emulator does it: Delete with a stale receipt deletes the message
	// (moto 5.2.1). SQS succeeds and keeps the message (see "Stale receipts").
	StaleDeleteDeletes bool
}

// Run runs every case against the queues setup returns.
func Run(t *testing.T, setup func(t *testing.T, cfg Config) Harness) {
	cases := []struct {
		name string
		cfg  Config
		fn   func(t *testing.T, h Harness)
	}{
		{"SendReceiveDelete", Config{}, testSendReceiveDelete},
		{"InvisibleInFlight", Config{}, testInvisibleInFlight},
		{"VisibleAgainAfterTimeout", Config{}, testVisibleAgainAfterTimeout},
		{"ChangeVisibilityZero", Config{}, testChangeVisibilityZero},
		{"ChangeVisibilityExtends", Config{}, testChangeVisibilityExtends},
		{"ReceiveCountIncrements", Config{}, testReceiveCountIncrements},
		{"DeadLetterAfterMaxReceiveCount", Config{MaxReceiveCount: 2}, testDeadLetter},
		{"LongPollWakesOnSend", Config{}, testLongPollWakesOnSend},
		{"LongPollWakesWhenVisible", Config{}, testLongPollWakesWhenVisible},
		{"LongPollCancelled", Config{}, testLongPollCancelled},
		{"MaxRespected", Config{}, testMaxRespected},
		{"StaleReceipt", Config{}, testStaleReceipt},
		{"EmptyAfterWait", Config{}, testEmptyAfterWait},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, setup(t, c.cfg))
		})
	}
}

const (
	// visibility is long enough that a message never comes back on its own
	// during a case on real time.
	visibility = 30 * time.Second
	// someWait is the long-poll wait when a message is expected: Receive
	// returns at once when one is there, on any clock.
	someWait = 2 * time.Second
	// bound is how long, in real time, the suite waits for anything that
	// should happen at once before it fails the case.
	bound = 10 * time.Second
)

func needClock(t *testing.T, h Harness) {
	t.Helper()
	if h.Advance == nil {
		t.Skip("queuetest: this case needs a controllable clock (Harness.Advance); see the package doc")
	}
}

func send(t *testing.T, q longrun.Queue, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := q.Send(context.Background(), b); err != nil {
			t.Fatalf("Send(%q): %v", b, err)
		}
	}
}

// receiveOne receives exactly one message and checks its body and count.
func receiveOne(t *testing.T, q longrun.Queue, body string, count int, vis time.Duration) longrun.Message {
	t.Helper()
	msgs, err := q.Receive(context.Background(), 10, someWait, vis)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Receive = %d messages %v, want 1 (%q)", len(msgs), bodies(msgs), body)
	}
	m := msgs[0]
	if m.Body != body || m.ReceiveCount != count || m.ID == "" || m.Receipt == "" || m.SentAt.IsZero() {
		t.Fatalf("Receive = {ID %q Body %q ReceiveCount %d Receipt %q SentAt %v}, want body %q, count %d, and ID, receipt, sent time set",
			m.ID, m.Body, m.ReceiveCount, m.Receipt, m.SentAt, body, count)
	}
	return m
}

// receiveNone checks that no message is visible now (wait 0).
func receiveNone(t *testing.T, q longrun.Queue, why string) {
	t.Helper()
	msgs, err := q.Receive(context.Background(), 10, 0, visibility)
	if err != nil {
		t.Fatalf("Receive(%s): %v", why, err)
	}
	if len(msgs) != 0 {
		t.Fatalf("Receive(%s) = %v, want no message", why, bodies(msgs))
	}
}

func bodies(msgs []longrun.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}

type received struct {
	msgs []longrun.Message
	err  error
}

// receiveAsync starts a long poll and returns where its result arrives.
func receiveAsync(ctx context.Context, q longrun.Queue, wait time.Duration) <-chan received {
	ch := make(chan received, 1)
	go func() {
		msgs, err := q.Receive(ctx, 10, wait, visibility)
		ch <- received{msgs, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan received, what string) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(bound):
		t.Fatalf("%s: Receive did not return within %s", what, bound)
		return received{}
	}
}

func testSendReceiveDelete(t *testing.T, h Harness) {
	ctx := context.Background()
	body := `{"taskToken":"AQCEAAAAKgAAAA","executionId":"0193a1b2-0000-7000-8000-000000000001","input":{"timer":3}}`
	send(t, h.Queue, body)
	m := receiveOne(t, h.Queue, body, 1, visibility)
	if err := h.Queue.Delete(ctx, m.Receipt); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	receiveNone(t, h.Queue, "after delete")
	if h.Advance != nil {
		h.Advance(2 * visibility)
		receiveNone(t, h.Queue, "after delete and past the visibility timeout")
	}
}

func testInvisibleInFlight(t *testing.T, h Harness) {
	send(t, h.Queue, "in-flight")
	receiveOne(t, h.Queue, "in-flight", 1, visibility)
	receiveNone(t, h.Queue, "while in flight")
}

func testVisibleAgainAfterTimeout(t *testing.T, h Harness) {
	needClock(t, h)
	send(t, h.Queue, "comes-back")
	first := receiveOne(t, h.Queue, "comes-back", 1, visibility)
	h.Advance(visibility - time.Second)
	receiveNone(t, h.Queue, "a second before the timeout")
	h.Advance(time.Second)
	second := receiveOne(t, h.Queue, "comes-back", 2, visibility)
	if second.ID != first.ID {
		t.Errorf("ID = %q on the second receive, want %q", second.ID, first.ID)
	}
	if second.Receipt == first.Receipt {
		t.Errorf("the second receive reused receipt %q; each receive needs its own", first.Receipt)
	}
}

func testChangeVisibilityZero(t *testing.T, h Harness) {
	send(t, h.Queue, "release")
	m := receiveOne(t, h.Queue, "release", 1, visibility)
	if err := h.Queue.ChangeVisibility(context.Background(), m.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	receiveOne(t, h.Queue, "release", 2, visibility)
}

func testChangeVisibilityExtends(t *testing.T, h Harness) {
	needClock(t, h)
	send(t, h.Queue, "long-job")
	m := receiveOne(t, h.Queue, "long-job", 1, 10*time.Second)
	h.Advance(5 * time.Second)
	// A worker's heartbeat: another minute from now.
	if err := h.Queue.ChangeVisibility(context.Background(), m.Receipt, time.Minute); err != nil {
		t.Fatalf("ChangeVisibility(1m): %v", err)
	}
	h.Advance(30 * time.Second)
	receiveNone(t, h.Queue, "35 s after a receive extended to 5 s + 1 min")
	h.Advance(30 * time.Second)
	receiveOne(t, h.Queue, "long-job", 2, visibility)
}

func testReceiveCountIncrements(t *testing.T, h Harness) {
	send(t, h.Queue, "counted")
	for count := 1; count <= 4; count++ {
		m := receiveOne(t, h.Queue, "counted", count, visibility)
		if err := h.Queue.ChangeVisibility(context.Background(), m.Receipt, 0); err != nil {
			t.Fatalf("ChangeVisibility(0) after receive %d: %v", count, err)
		}
	}
}

func testDeadLetter(t *testing.T, h Harness) {
	if h.DeadLetter == nil {
		t.Fatalf("Harness.DeadLetter is nil for Config{MaxReceiveCount: 2}")
	}
	send(t, h.Queue, "poison", "healthy")
	// Receive both twice, giving both back at once; then only the healthy one
	// is deleted on its last regular receive.
	for count := 1; count <= 2; count++ {
		msgs, err := h.Queue.Receive(context.Background(), 10, someWait, visibility)
		if err != nil {
			t.Fatalf("Receive %d: %v", count, err)
		}
		// SQS may hand out fewer than are there; take what is missing.
		for len(msgs) < 2 {
			more, err := h.Queue.Receive(context.Background(), 10, someWait, visibility)
			if err != nil || len(more) == 0 {
				t.Fatalf("Receive %d: got %v, %v; want both messages", count, bodies(msgs), err)
			}
			msgs = append(msgs, more...)
		}
		for _, m := range msgs {
			if m.ReceiveCount != count {
				t.Fatalf("receive %d: %q has ReceiveCount %d", count, m.Body, m.ReceiveCount)
			}
			if m.Body == "healthy" && count == 2 {
				if err := h.Queue.Delete(context.Background(), m.Receipt); err != nil {
					t.Fatalf("Delete(healthy): %v", err)
				}
				continue
			}
			if err := h.Queue.ChangeVisibility(context.Background(), m.Receipt, 0); err != nil {
				t.Fatalf("ChangeVisibility(0): %v", err)
			}
		}
	}
	// The third receive would exceed MaxReceiveCount: the message moves instead.
	receiveNone(t, h.Queue, "after MaxReceiveCount receives")
	msgs, err := h.DeadLetter.Receive(context.Background(), 10, someWait, visibility)
	if err != nil {
		t.Fatalf("Receive(dead letter): %v", err)
	}
	if !slices.Equal(bodies(msgs), []string{"poison"}) {
		t.Fatalf("dead-letter queue holds %v, want [poison]", bodies(msgs))
	}
	if err := h.DeadLetter.Delete(context.Background(), msgs[0].Receipt); err != nil {
		t.Fatalf("Delete(dead letter): %v", err)
	}
	receiveNone(t, h.Queue, "the main queue, after the dead-letter receive")
}

// waiting returns once a Receive waits on the clock, when the harness can tell.
func waiting(t *testing.T, h Harness) {
	t.Helper()
	if h.Waits == nil {
		return
	}
	deadline := time.Now().Add(bound)
	for h.Waits() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no Receive waiting on the clock after %s", bound)
		}
		runtime.Gosched()
	}
}

func testLongPollWakesOnSend(t *testing.T, h Harness) {
	// The wait is far longer than bound: only the Send can end it in time.
	got := receiveAsync(context.Background(), h.Queue, 20*time.Second)
	waiting(t, h)
	send(t, h.Queue, "wake-up")
	r := await(t, got, "long poll after a Send")
	if r.err != nil {
		t.Fatalf("Receive: %v", r.err)
	}
	if !slices.Equal(bodies(r.msgs), []string{"wake-up"}) {
		t.Fatalf("Receive = %v, want [wake-up]", bodies(r.msgs))
	}
}

func testLongPollWakesWhenVisible(t *testing.T, h Harness) {
	needClock(t, h)
	send(t, h.Queue, "timed-out-elsewhere")
	receiveOne(t, h.Queue, "timed-out-elsewhere", 1, visibility)
	// Nothing is sent while the poll waits: the message must come back by
	// itself when its visibility timeout ends, well before the poll's wait.
	got := receiveAsync(context.Background(), h.Queue, 20*visibility)
	waiting(t, h)
	h.Advance(visibility)
	r := await(t, got, "long poll while an in-flight message becomes visible")
	if r.err != nil {
		t.Fatalf("Receive: %v", r.err)
	}
	if len(r.msgs) != 1 || r.msgs[0].Body != "timed-out-elsewhere" || r.msgs[0].ReceiveCount != 2 {
		t.Fatalf("Receive = %+v, want timed-out-elsewhere with ReceiveCount 2", r.msgs)
	}
}

func testLongPollCancelled(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	got := receiveAsync(ctx, h.Queue, 20*time.Second)
	waiting(t, h)
	cancel()
	r := await(t, got, "long poll after cancel")
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Receive after cancel = %v, %v; want an error wrapping context.Canceled", bodies(r.msgs), r.err)
	}
}

func testMaxRespected(t *testing.T, h Harness) {
	want := []string{"m0", "m1", "m2", "m3", "m4"}
	send(t, h.Queue, want...)
	seen := map[string]bool{}
	for i := 0; len(seen) < len(want); i++ {
		if i > 20 {
			t.Fatalf("after 20 receives saw only %v", seen)
		}
		msgs, err := h.Queue.Receive(context.Background(), 2, someWait, visibility)
		if err != nil {
			t.Fatalf("Receive(max 2): %v", err)
		}
		if len(msgs) == 0 || len(msgs) > 2 {
			t.Fatalf("Receive(max 2) = %d messages, want 1 or 2", len(msgs))
		}
		for _, m := range msgs {
			if seen[m.Body] {
				t.Fatalf("%q received twice while in flight", m.Body)
			}
			seen[m.Body] = true
		}
	}
	for _, b := range want {
		if !seen[b] {
			t.Errorf("%q never received", b)
		}
	}
	receiveNone(t, h.Queue, "all five in flight")
}

func testStaleReceipt(t *testing.T, h Harness) {
	ctx := context.Background()
	send(t, h.Queue, "stale")
	first := receiveOne(t, h.Queue, "stale", 1, visibility)
	if err := h.Queue.ChangeVisibility(ctx, first.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	second := receiveOne(t, h.Queue, "stale", 2, visibility)

	// A worker whose visibility ran out deletes late, with its old receipt.
	err := h.Queue.Delete(ctx, first.Receipt)
	t.Logf("Delete(stale receipt) = %v", err)
	if h.StaleDeleteDeletes {
		if err != nil {
			t.Fatalf("Delete(stale receipt) = %v, want the emulator's success", err)
		}
		if err := h.Queue.ChangeVisibility(ctx, second.Receipt, 0); err == nil {
			t.Fatal("the stale Delete kept the message: the emulator behaves as SQS now, drop StaleDeleteDeletes")
		}
		receiveNone(t, h.Queue, "after the stale Delete deleted the message")
		return
	}

	// The current holder still owns the message: it comes back when released.
	if err := h.Queue.ChangeVisibility(ctx, second.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility(0, current receipt) after a stale Delete: %v", err)
	}
	third := receiveOne(t, h.Queue, "stale", 3, visibility)
	if err := h.Queue.Delete(ctx, third.Receipt); err != nil {
		t.Fatalf("Delete(current receipt): %v", err)
	}
	receiveNone(t, h.Queue, "after deleting with the current receipt")
}

func testEmptyAfterWait(t *testing.T, h Harness) {
	receiveNone(t, h.Queue, "empty queue, wait 0")
	needClock(t, h)

	const wait = 5 * time.Second
	got := receiveAsync(context.Background(), h.Queue, wait)
	// Move the clock a second at a time until the poll gives up. It must not
	// give up before its wait has passed on the queue's clock.
	var advanced time.Duration
	for {
		select {
		case r := <-got:
			if r.err != nil || len(r.msgs) != 0 {
				t.Fatalf("Receive(empty, wait %s) = %v, %v; want no message, no error", wait, bodies(r.msgs), r.err)
			}
			if advanced < wait {
				t.Fatalf("Receive(wait %s) gave up after the clock moved only %s", wait, advanced)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if advanced > 10*wait {
			t.Fatalf("Receive(wait %s) still waiting after the clock moved %s", wait, advanced)
		}
		h.Advance(time.Second)
		advanced += time.Second
	}
}
