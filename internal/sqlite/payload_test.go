package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

// randomJSON is a JSON object holding n bytes of random base64 text.
func randomJSON(seed uint64, n int) json.RawMessage {
	raw := make([]byte, n*3/4)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return json.RawMessage(`{"data":"` + base64.StdEncoding.EncodeToString(raw) + `"}`)
}

// An execution's record and its task message, written in one transaction
// as longrun dev's engine does, store a large input once: the message adds
// only the few bytes around it. Each reads back exactly what was written,
// whichever of them goes first, and once both are gone nothing is left.
func TestPayloadsSharedByRecordAndMessage(t *testing.T) {
	t.Parallel()
	for _, recordFirst := range []bool{true, false} {
		db, clock := setup(t)
		ctx := context.Background()
		store := sqlite.NewExecutionStore(db)
		q := sqlite.NewQueue(db, "jobs", sqlite.QueueConfig{})
		input := randomJSON(1, 64<<10)
		body := `{"taskToken":"t","executionArn":"arn:1","input":` + string(input) + `,"job":""}`
		e := &longrun.Execution{ID: longrun.NewExecutionID(), ARN: "arn:1", Tenant: "acme", Status: longrun.StatusRunning, StartDate: clock.Now(), Input: input}
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			if _, _, err := store.CreateExecutionTx(ctx, tx, e); err != nil {
				return err
			}
			_, err := q.SendOwnedTx(ctx, tx, body, e.ARN)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		count := func(query string) int {
			t.Helper()
			var n sql.NullInt64
			if err := db.Read(ctx, func(tx *sql.Tx) error { return tx.QueryRowContext(ctx, query).Scan(&n) }); err != nil {
				t.Fatal(err)
			}
			return int(n.Int64)
		}
		if n := count(`SELECT sum(length(data)) FROM payload_chunks`); n < len(input)-128 || n > len(input)+len(input)/16 {
			t.Errorf("%d bytes of chunks for a %d-byte input carried twice", n, len(input))
		}
		if n := count(`SELECT length(body) FROM queue_messages`); n > 1<<10 {
			t.Errorf("the message row holds %d bytes: the body itself", n)
		}
		msgs, err := q.Receive(ctx, 1, 0, time.Minute)
		if err != nil || len(msgs) != 1 || msgs[0].Body != body {
			t.Fatalf("Receive: %v, %d messages", err, len(msgs))
		}
		deleteRecord := func() {
			if err := store.DeleteExecution(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
		}
		deleteMessage := func() {
			if err := q.Delete(ctx, msgs[0].Receipt); err != nil {
				t.Fatal(err)
			}
		}
		first, then := deleteRecord, deleteMessage
		if !recordFirst {
			first, then = deleteMessage, deleteRecord
		}
		first()
		if recordFirst {
			if err := q.ChangeVisibility(ctx, msgs[0].Receipt, 0); err != nil {
				t.Fatal(err)
			}
			again, err := q.Receive(ctx, 1, 0, time.Minute)
			if err != nil || len(again) != 1 || again[0].Body != body {
				t.Fatalf("Receive after the record's delete: %v, %d messages", err, len(again))
			}
			msgs = again
		} else if got, err := store.GetExecution(ctx, "acme", e.ID); err != nil || string(got.Input) != string(input) {
			t.Fatalf("GetExecution after the message's delete: %v", err)
		}
		then()
		for _, table := range []string{"payload_chunks", "payload_holders", "queue_messages", "executions"} {
			if n := count(`SELECT count(*) FROM ` + table); n != 0 {
				t.Errorf("record first %v: %d rows left in %s", recordFirst, n, table)
			}
		}
	}
}
