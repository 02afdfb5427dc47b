package sqlite_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

// The benchmarks run on a WAL file in b.TempDir() on real time, as
// `longrun dev` does; each operation is one committed write transaction.

func benchDB(b *testing.B) *sqlite.DB {
	b.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchExecution(i int) *longrun.Execution {
	id := longrun.NewExecutionID()
	return &longrun.Execution{
		ID:             id,
		ARN:            "arn:aws:states:us-east-1:123456789012:execution:longrun:" + id,
		Tenant:         "acme",
		Status:         longrun.StatusRunning,
		Input:          json.RawMessage(`{"timer":3,"items":["a","b","c"]}`),
		CallbackURL:    "https://hooks.example.com/longrun",
		StartDate:      time.Now(),
		IdempotencyKey: id, // every create also looks up and writes a key
		RequestHash:    "sha256:0f1e2d",
	}
}

func BenchmarkCreateExecution(b *testing.B) {
	db := benchDB(b)
	store := sqlite.NewExecutionStore(db)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := store.CreateExecution(ctx, benchExecution(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkFinishExecution(b *testing.B) {
	db := benchDB(b)
	store := sqlite.NewExecutionStore(db)
	ctx := context.Background()
	// Executions are created in batches outside the timer, as b.Loop's
	// count is not known up front.
	var ids []string
	more := func() {
		b.StopTimer()
		defer b.StartTimer()
		for i := range 1000 {
			e, _, err := store.CreateExecution(ctx, benchExecution(i))
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
	}
	out := longrun.Outcome{Status: longrun.StatusSucceeded, Output: json.RawMessage(`{"message":"ramen is ready"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if len(ids) == 0 {
			more()
		}
		id := ids[len(ids)-1]
		ids = ids[:len(ids)-1]
		out.StopDate = time.Now()
		if _, recorded, err := store.FinishExecution(ctx, id, out); err != nil || !recorded {
			b.Fatalf("FinishExecution = %v, %v", recorded, err)
		}
	}
}

func BenchmarkQueueSendReceiveDelete(b *testing.B) {
	db := benchDB(b)
	q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{MaxReceiveCount: 5, DeadLetter: "jobs-dlq"})
	ctx := context.Background()
	body := `{"taskToken":"AQCEAAAAKgAAAAMAAAAAAAAAAc","executionArn":"arn:aws:states:us-east-1:123456789012:execution:longrun:x","executionId":"x","input":{"timer":3}}`
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Send(ctx, body); err != nil {
			b.Fatal(err)
		}
		msgs, err := q.Receive(ctx, 1, 0, 30*time.Second)
		if err != nil || len(msgs) != 1 {
			b.Fatalf("Receive = %d, %v", len(msgs), err)
		}
		if err := q.Delete(ctx, msgs[0].Receipt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetExecutionParallel shows reads from the reader pool while
// nothing writes: the describe path.
func BenchmarkGetExecutionParallel(b *testing.B) {
	db := benchDB(b)
	store := sqlite.NewExecutionStore(db)
	ctx := context.Background()
	e, _, err := store.CreateExecution(ctx, benchExecution(0))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := store.GetExecution(ctx, "acme", e.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCreateExecutionParallel shows many goroutines queueing on the
// single writer.
func BenchmarkCreateExecutionParallel(b *testing.B) {
	db := benchDB(b)
	store := sqlite.NewExecutionStore(db)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := store.CreateExecution(ctx, benchExecution(0)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
