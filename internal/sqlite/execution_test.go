package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"reflect"
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
