package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/sqlite"
)

// TestWebhookDocument pins the stored form of a delivery: a file written by
// one version must be read by the next. testdata/webhook.json is the row's
// webhook column for the delivery below.
func TestWebhookDocument(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	store := sqlite.NewExecutionStore(db)
	e := &longrun.Execution{ID: longrun.NewExecutionID(), ARN: "arn", Tenant: "acme", Status: longrun.StatusRunning, StartDate: clock.Now()}
	if _, _, err := store.CreateExecution(ctx, e); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	d := longrun.Delivery{
		EventID: "msg_2q8Zk3vYxJbE0QmT6uW1",
		Type:    longrun.EventFailed,
		State:   longrun.DeliveryPending,
		Attempts: []longrun.Attempt{
			{At: at("2026-11-25T09:00:02Z"), Latency: 15 * time.Second, Error: "dial tcp 203.0.113.7:443: i/o timeout"},
			{At: at("2026-11-25T09:00:07.25Z"), StatusCode: 503, Latency: 120 * time.Millisecond, Error: "Service Unavailable"},
		},
		NextAttempt: at("2026-11-25T09:05:07Z"),
	}
	fixture, err := os.ReadFile("testdata/webhook.json")
	if err != nil {
		t.Fatal(err)
	}

	// Write: the stored document equals the fixture.
	if err := store.SaveDelivery(ctx, e.ID, d); err != nil {
		t.Fatalf("SaveDelivery: %v", err)
	}
	var stored string
	if err := db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT webhook FROM executions WHERE id = ?`, e.ID).Scan(&stored)
	}); err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal([]byte(stored), &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixture, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored webhook document:\n%s\nwant testdata/webhook.json:\n%s", stored, fixture)
	}

	// Read: the fixture, as an older version wrote it, decodes to d.
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE executions SET webhook = ? WHERE id = ?`, string(fixture), e.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	back, err := store.GetExecution(ctx, "acme", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if back.Webhook == nil || !reflect.DeepEqual(*back.Webhook, d) {
		t.Errorf("decoded fixture = %+v, want %+v", back.Webhook, d)
	}
}

func TestExecutionStoreRefusesBadInput(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	store := sqlite.NewExecutionStore(db)
	running := &longrun.Execution{ID: longrun.NewExecutionID(), Tenant: "acme", Status: longrun.StatusRunning, StartDate: clock.Now()}
	if _, _, err := store.CreateExecution(ctx, running); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"create without id", func() error {
			_, _, err := store.CreateExecution(ctx, &longrun.Execution{Tenant: "acme", StartDate: clock.Now()})
			return err
		}},
		{"create without tenant", func() error {
			_, _, err := store.CreateExecution(ctx, &longrun.Execution{ID: longrun.NewExecutionID(), StartDate: clock.Now()})
			return err
		}},
		{"list an unknown status", func() error {
			_, err := store.ListExecutions(ctx, "acme", longrun.ListQuery{Status: "DONE", Limit: 10})
			return err
		}},
		{"finish as RUNNING", func() error {
			_, _, err := store.FinishExecution(ctx, running.ID, longrun.Outcome{Status: longrun.StatusRunning})
			return err
		}},
		{"finish with no status", func() error {
			_, _, err := store.FinishExecution(ctx, running.ID, longrun.Outcome{})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !longrun.IsCode(err, longrun.EINVALID) {
				t.Errorf("%s = %v, want EINVALID", c.name, err)
			}
		})
	}
	if got, err := store.GetExecution(ctx, "", running.ID); err != nil || got.Status != longrun.StatusRunning {
		t.Errorf("after refused calls: %+v, %v; want it still RUNNING", got, err)
	}
}

// TestListLimitOutOfRange: the API validates the limit; the store, called
// from elsewhere, takes anything outside 1..MaxListLimit as the maximum.
func TestListLimitOutOfRange(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	store := sqlite.NewExecutionStore(db)
	const n = longrun.MaxListLimit + 3
	for range n {
		e := &longrun.Execution{ID: longrun.NewExecutionID(), Tenant: "acme", Status: longrun.StatusRunning, StartDate: clock.Now()}
		if _, _, err := store.CreateExecution(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, -1, longrun.MaxListLimit + 1} {
		page, err := store.ListExecutions(ctx, "acme", longrun.ListQuery{Limit: limit})
		if err != nil {
			t.Fatalf("ListExecutions(limit %d): %v", limit, err)
		}
		if len(page.Executions) != longrun.MaxListLimit || page.NextToken == "" {
			t.Errorf("limit %d: %d executions, token %q; want %d and a token", limit, len(page.Executions), page.NextToken, longrun.MaxListLimit)
		}
	}
}

// A large input and output are stored once, as payload chunks the row
// refers to: every read returns them as given, an update of the row
// (progress) leaves them, a finish that does not record (already ended)
// writes nothing, and deleting the execution deletes them.
func TestLargePayloadsOutOfRow(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	store := sqlite.NewExecutionStore(db)
	big := func(c byte) json.RawMessage {
		return json.RawMessage(`{"data":"` + string(bytes.Repeat([]byte{c}, 64<<10)) + `"}`)
	}
	input, output := big('i'), big('o')
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.Read(ctx, func(tx *sql.Tx) error { return tx.QueryRowContext(ctx, query, args...).Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	e := &longrun.Execution{ID: longrun.NewExecutionID(), ARN: "arn", Tenant: "acme", Status: longrun.StatusRunning, StartDate: clock.Now(), Input: input}
	created, _, err := store.CreateExecution(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(created.Input, input) || created.Output != nil {
		t.Errorf("created: input %d bytes, output %q", len(created.Input), created.Output)
	}
	if err := store.SetProgress(ctx, e.ID, longrun.Progress{Percent: 50}); err != nil {
		t.Fatal(err)
	}
	finished, recorded, err := store.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusSucceeded, Output: output, StopDate: clock.Now()})
	if err != nil || !recorded || !bytes.Equal(finished.Output, output) || !bytes.Equal(finished.Input, input) {
		t.Fatalf("finish: recorded %v, %v, input %d output %d bytes", recorded, err, len(finished.Input), len(finished.Output))
	}
	if _, recorded, err := store.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusFailed, Output: big('x'), StopDate: clock.Now()}); err != nil || recorded {
		t.Fatalf("second finish: recorded %v, %v", recorded, err)
	}
	got, err := store.GetExecution(ctx, "acme", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, err := store.ListExecutions(ctx, "acme", longrun.ListQuery{Limit: 10})
	if err != nil || len(page.Executions) != 1 {
		t.Fatalf("list: %v %v", page, err)
	}
	for what, x := range map[string]*longrun.Execution{"get": got, "list": &page.Executions[0]} {
		if !bytes.Equal(x.Input, input) || !bytes.Equal(x.Output, output) || x.Progress == nil || x.Status != longrun.StatusSucceeded {
			t.Errorf("%s: input %d, output %d bytes, progress %v, status %s", what, len(x.Input), len(x.Output), x.Progress, x.Status)
		}
	}
	if n := count(`SELECT length(input) + length(output) FROM executions WHERE id = ?`, e.ID); n > 1<<10 {
		t.Errorf("the row holds %d bytes of input and output: the payloads themselves", n)
	}
	if n := count(`SELECT count(*) FROM payload_chunks WHERE owner = 'arn'`); n == 0 {
		t.Errorf("no payload chunks: the payloads are stored elsewhere")
	}
	if err := store.DeleteExecution(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"payload_chunks", "payload_holders", "execution_payloads"} {
		if n := count(`SELECT count(*) FROM ` + table); n != 0 {
			t.Errorf("%d rows left in %s after the delete", n, table)
		}
	}
}

// A record written before payload chunks, its payloads in
// execution_payloads, reads as it did; deleting it deletes them.
func TestPayloadsOfOlderRecords(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	store := sqlite.NewExecutionStore(db)
	input := json.RawMessage(`{"data":"` + strings.Repeat("i", 8<<10) + `"}`)
	e := &longrun.Execution{ID: longrun.NewExecutionID(), ARN: "arn", Tenant: "acme", Status: longrun.StatusSucceeded, StartDate: clock.Now(), StopDate: clock.Now()}
	if _, _, err := store.CreateExecution(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO execution_payloads (id, kind, data) VALUES (?, 'input', ?)`, e.ID, string(input))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, err := store.GetExecution(ctx, "acme", e.ID)
	if err != nil || !bytes.Equal(got.Input, input) {
		t.Fatalf("get: %v, input %d bytes, want %d", err, len(got.Input), len(input))
	}
	if n, err := store.DeleteEnded(ctx, clock.Now().Add(time.Second), 10); err != nil || n != 1 {
		t.Fatalf("DeleteEnded = %d, %v", n, err)
	}
	var left int
	if err := db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM execution_payloads`).Scan(&left)
	}); err != nil || left != 0 {
		t.Errorf("%d payload rows left after the delete (%v)", left, err)
	}
}

func TestTenantOf(t *testing.T) {
	t.Parallel()
	db, clock := setup(t)
	ctx := context.Background()
	store := sqlite.NewExecutionStore(db)
	e := &longrun.Execution{ID: longrun.NewExecutionID(), ARN: "arn", Tenant: "acme", Status: longrun.StatusRunning, StartDate: clock.Now(), Input: json.RawMessage(`{}`)}
	if _, _, err := store.CreateExecution(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, err := store.TenantOf(ctx, e.ID); err != nil || got != "acme" {
		t.Errorf("TenantOf(%s) = %q, %v; want acme", e.ID, got, err)
	}
	if got, err := store.TenantOf(ctx, longrun.NewExecutionID()); !longrun.IsCode(err, longrun.ENOTFOUND) {
		t.Errorf("TenantOf(unknown) = %q, %v; want ENOTFOUND", got, err)
	}
}
