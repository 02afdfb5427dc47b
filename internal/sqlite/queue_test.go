package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

func TestReceiveRefusesBadArguments(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	for _, c := range []struct {
		name             string
		max              int
		wait, visibility time.Duration
	}{
		{"max 0", 0, 0, time.Minute},
		{"max over SQS's 10", 11, 0, time.Minute},
		{"negative wait", 1, -time.Second, time.Minute},
		{"negative visibility", 1, 0, -time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := q.Receive(context.Background(), c.max, c.wait, c.visibility)
			if !longrun.IsCode(err, longrun.EINVALID) {
				t.Errorf("Receive(%d, %s, %s) = %v, want EINVALID", c.max, c.wait, c.visibility, err)
			}
		})
	}
}

// TestStaleReceipts pins what internal/sqlite returns for a receipt that is
// no longer current; the conformance suite leaves that to each adapter.
func TestStaleReceipts(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	if err := q.Send(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	first := receive(t, q, 1)
	clock.Advance(time.Minute)
	second := receive(t, q, 2)

	if err := q.Delete(ctx, first.Receipt); err != nil {
		t.Errorf("Delete(stale) = %v, want nil as SQS answers", err)
	}
	if err := q.ChangeVisibility(ctx, first.Receipt, time.Hour); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Errorf("ChangeVisibility(stale) = %v, want ENOTFOUND so a heartbeat learns it lost the message", err)
	}
	if err := q.Delete(ctx, second.Receipt); err != nil {
		t.Fatalf("Delete(current): %v", err)
	}
	if err := q.ChangeVisibility(ctx, second.Receipt, time.Hour); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Errorf("ChangeVisibility(deleted) = %v, want ENOTFOUND", err)
	}
	if err := q.Delete(ctx, "no-such-receipt"); err != nil {
		t.Errorf("Delete(unknown) = %v, want nil", err)
	}
}

func TestQueuesAreSeparateByName(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	jobs := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	other := sqlite.NewQueue(db, "other", sqlite.QueueConfig{})
	if err := jobs.Send(ctx, "for jobs"); err != nil {
		t.Fatal(err)
	}
	if msgs, err := other.Receive(ctx, 10, 0, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("other.Receive = %v, %v; want nothing from jobs", msgs, err)
	}
	m := receive(t, jobs, 1)
	// A receipt is bound to its queue too.
	if err := other.Delete(ctx, m.Receipt); err != nil {
		t.Fatal(err)
	}
	if err := jobs.ChangeVisibility(ctx, m.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility after other.Delete: %v (the message should still be in jobs)", err)
	}
}

func TestDeadLetterStartsAfresh(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{MaxReceiveCount: 1, DeadLetter: "jobs-dlq"})
	dlq := sqlite.NewQueue(db, "jobs-dlq", sqlite.QueueConfig{})
	if err := q.Send(ctx, "poison"); err != nil {
		t.Fatal(err)
	}
	sent := clock.Now()
	receive(t, q, 1)
	clock.Advance(time.Hour)

	// A long poll on the dead-letter queue wakes when the message moves there.
	got := make(chan []longrun.Message, 1)
	go func() {
		msgs, err := dlq.Receive(ctx, 10, 20*time.Second, time.Minute)
		if err != nil {
			t.Errorf("dlq.Receive: %v", err)
		}
		got <- msgs
	}()
	waitForWaiter(t, clock)
	if msgs, err := q.Receive(ctx, 10, 0, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("Receive past MaxReceiveCount = %v, %v; want the message moved, not delivered", msgs, err)
	}
	select {
	case msgs := <-got:
		if len(msgs) != 1 || msgs[0].Body != "poison" || msgs[0].ReceiveCount != 1 || !msgs[0].SentAt.Equal(sent) {
			t.Fatalf("dead letter = %+v, want poison, ReceiveCount 1, SentAt %v", msgs, sent)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the dead-letter long poll did not wake when the message moved")
	}
}

func TestLongPollWakesAcrossQueueValues(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	receiver := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	sender := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	got := make(chan error, 1)
	go func() {
		msgs, err := receiver.Receive(ctx, 10, 20*time.Second, time.Minute)
		if err == nil && len(msgs) != 1 {
			err = errors.New("no message")
		}
		got <- err
	}()
	waitForWaiter(t, clock)
	if err := sender.Send(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("a Send on another Queue value of the same name did not wake the poll")
	}
}

func TestInFlightSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "longrun.db")
	clock := newFakeClock()
	open := func() (*sqlite.DB, *sqlite.Queue) {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		db.Clock = clock
		return db, sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	}
	db, q := open()
	if err := q.Send(ctx, "crash-me"); err != nil {
		t.Fatal(err)
	}
	receive(t, q, 1)
	db.Close() // the process dies with the message in flight

	db, q = open()
	defer db.Close()
	if msgs, err := q.Receive(ctx, 10, 0, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("Receive after restart, still in flight = %v, %v; want nothing", msgs, err)
	}
	clock.Advance(time.Minute)
	if m := receive(t, q, 2); m.Body != "crash-me" {
		t.Fatalf("Body = %q after the visibility timeout", m.Body)
	}
}

func receive(t *testing.T, q *sqlite.Queue, count int) longrun.Message {
	t.Helper()
	msgs, err := q.Receive(context.Background(), 1, 0, time.Minute)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 1 || msgs[0].ReceiveCount != count {
		t.Fatalf("Receive = %+v, want one message with ReceiveCount %d", msgs, count)
	}
	return msgs[0]
}

func waitForWaiter(t *testing.T, clock *fakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for clock.Waits() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no Receive started waiting")
		}
		time.Sleep(time.Millisecond) // polls for a goroutine to block, asserts nothing about time
	}
}

// TestSendTx: a message sent inside a transaction exists only if the
// transaction commits, and a waiting receiver wakes only then.
func TestSendTx(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})

	boom := errors.New("state transition failed")
	err := db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := q.SendTx(ctx, tx, "rolled back"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want %v", err, boom)
	}
	if msgs, err := q.Receive(ctx, 10, 0, time.Minute); err != nil || len(msgs) != 0 {
		t.Fatalf("Receive after a rolled-back SendTx = %v, %v; want nothing", msgs, err)
	}

	got := make(chan []longrun.Message, 1)
	go func() {
		msgs, err := q.Receive(ctx, 10, 20*time.Second, time.Minute)
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
		got <- msgs
	}()
	waitForWaiter(t, clock)
	var id string
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = q.SendTx(ctx, tx, "committed")
		return err
	}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	select {
	case msgs := <-got:
		if len(msgs) != 1 || msgs[0].Body != "committed" || msgs[0].ID != id {
			t.Fatalf("Receive = %+v, want the committed message", msgs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the commit did not wake the waiting Receive")
	}
}

func TestLongPollWakesOnChangeVisibilityZero(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	if err := q.Send(ctx, "given back"); err != nil {
		t.Fatal(err)
	}
	m := receive(t, q, 1)
	got := make(chan []longrun.Message, 1)
	go func() {
		msgs, err := q.Receive(ctx, 10, 20*time.Second, time.Minute)
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
		got <- msgs
	}()
	waitForWaiter(t, clock)
	// A worker shutting down gives its message back for another to take.
	if err := q.ChangeVisibility(ctx, m.Receipt, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case msgs := <-got:
		if len(msgs) != 1 || msgs[0].ReceiveCount != 2 {
			t.Fatalf("Receive = %+v, want the message given back", msgs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("ChangeVisibility(0) did not wake the waiting Receive")
	}
}

// TestLongPollOnRealTime checks the default timer: an empty poll ends once
// its wait has passed, not before.
func TestLongPollOnRealTime(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	const wait = 30 * time.Millisecond
	start := time.Now()
	msgs, err := q.Receive(context.Background(), 10, wait, time.Minute)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Receive(empty) = %v, %v", msgs, err)
	}
	if elapsed := time.Since(start); elapsed < wait {
		t.Fatalf("Receive(wait %s) returned after %s", wait, elapsed)
	}
}

// TestLongPollSeesOtherProcesses: a Send from another process on the same
// file cannot wake this one's waiters, so a long poll looks again every second.
func TestLongPollSeesOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	clock := newFakeClock()
	open := func() *sqlite.Queue {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		db.Clock = clock
		return sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	}
	here, there := open(), open()
	got := make(chan []longrun.Message, 1)
	go func() {
		msgs, err := here.Receive(ctx, 10, 20*time.Second, time.Minute)
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
		got <- msgs
	}()
	waitForWaiter(t, clock)
	if err := there.Send(ctx, "from elsewhere"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	select {
	case msgs := <-got:
		if len(msgs) != 1 || msgs[0].Body != "from elsewhere" {
			t.Fatalf("Receive = %+v", msgs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("a message sent by another process was not seen a second later")
	}
}

// ReleaseInFlight hands back what a dead process held: received messages
// become visible at once with their receive counts, their old receipts stop
// counting, and messages waiting or in other queues are untouched.
func TestReleaseInFlight(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	other := sqlite.NewQueue(db, "other", sqlite.QueueConfig{})
	for _, body := range []string{"held", "waiting"} {
		if err := q.Send(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Send(ctx, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	held := receive(t, q, 1)
	if _, err := other.Receive(ctx, 1, 0, time.Hour); err != nil {
		t.Fatal(err)
	}

	n, err := q.ReleaseInFlight(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ReleaseInFlight = %d, %v; want the 1 held message", n, err)
	}
	msgs, err := q.Receive(ctx, 10, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]int{}
	for _, m := range msgs {
		bodies[m.Body] = m.ReceiveCount
	}
	if len(msgs) != 2 || bodies["held"] != 2 || bodies["waiting"] != 1 {
		t.Fatalf("after the release got %v (body → receive count), want held (2nd receive) and waiting (1st)", bodies)
	}
	if err := q.ChangeVisibility(ctx, held.Receipt, time.Hour); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Errorf("the dead holder's receipt: ChangeVisibility = %v, want ENOTFOUND", err)
	}
	if msgs, err := other.Receive(ctx, 1, 0, time.Hour); err != nil || len(msgs) != 0 {
		t.Errorf("another queue's in-flight message was released: %v %v", msgs, err)
	}
}

// TestDeleteTx: the local engine deletes a task's message by id in its own
// transaction; the holder's Delete afterwards is a no-op that succeeds, and
// the same id in another queue is not touched.
func TestDeleteTx(t *testing.T) {
	t.Parallel()
	db, _ := setup(t)
	ctx := context.Background()
	jobs := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
	other := sqlite.NewQueue(db, "other", sqlite.QueueConfig{})
	var id string
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = jobs.SendTx(ctx, tx, "job")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	m := receive(t, jobs, 1)
	for _, q := range []*sqlite.Queue{other, jobs} {
		if err := db.Write(ctx, func(tx *sql.Tx) error { return q.DeleteTx(ctx, tx, id) }); err != nil {
			t.Fatalf("DeleteTx in %s: %v", q.Name(), err)
		}
		if q == other {
			if err := jobs.ChangeVisibility(ctx, m.Receipt, time.Hour); err != nil {
				t.Errorf("after DeleteTx in another queue, the message is gone: %v", err)
			}
		}
	}
	if err := jobs.ChangeVisibility(ctx, m.Receipt, time.Hour); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Errorf("ChangeVisibility after DeleteTx = %v, want ENOTFOUND", err)
	}
	if err := jobs.Delete(ctx, m.Receipt); err != nil {
		t.Errorf("Delete after DeleteTx = %v, want nil", err)
	}
}
