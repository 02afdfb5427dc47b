// Package storetest is the conformance suite of longrun.ExecutionStore and
// longrun.TenantStore: the one set of tests every adapter (internal/sqlite,
// internal/dynamostore) runs, so the stores cannot drift apart.
//
// Run it from the adapter's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness { ... })
//	}
//
// setup is called once per case, and the cases run in parallel. Every case
// uses tenants with a random suffix, so setup may hand out one shared table
// (an emulator) instead of a fresh database per case.
//
// Times are compared at millisecond precision, the precision the DynamoDB
// adapter stores. Input and output JSON are compared by value, not by bytes.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

// Harness is what an adapter hands the suite.
type Harness struct {
	Executions longrun.ExecutionStore
	Tenants    longrun.TenantStore
	// Clock is the clock the store uses for "now"; nil means
	// longrun.SystemClock. The suite takes start dates from it.
	Clock longrun.Clock
}

func (h Harness) now() time.Time {
	if h.Clock == nil {
		return time.Now().UTC().Truncate(time.Millisecond)
	}
	return h.Clock.Now().UTC().Truncate(time.Millisecond)
}

// Run runs every case against the stores setup returns.
func Run(t *testing.T, setup func(t *testing.T) Harness) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"CreateGet", testCreateGet},
		{"CreateDuplicateID", testCreateDuplicateID},
		{"GetTenantIsolation", testGetTenantIsolation},
		{"IdempotentReplay", testIdempotentReplay},
		{"IdempotencyConflict", testIdempotencyConflict},
		{"IdempotencyKeyPerTenant", testIdempotencyKeyPerTenant},
		{"IdempotencyKeyReuseAfterWindow", testIdempotencyKeyReuseAfterWindow},
		{"DeleteFreesKey", testDeleteFreesKey},
		{"ListNewestFirstPaginated", testListNewestFirstPaginated},
		{"ListStatusFilter", testListStatusFilter},
		{"ListJobFilter", testListJobFilter},
		{"ListBadToken", testListBadToken},
		{"FinishRecordsOutcome", testFinishRecordsOutcome},
		{"FinishExactlyOnceConcurrent", testFinishExactlyOnceConcurrent},
		{"FinishUnknown", testFinishUnknown},
		{"SetProgress", testSetProgress},
		{"SaveDelivery", testSaveDelivery},
		{"SaveDeliveryIfClaimsOnce", testSaveDeliveryIf},
		{"TenantRoundTrip", testTenantRoundTrip},
		{"TenantUnknown", testTenantUnknown},
		{"APIKeys", testAPIKeys},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, setup(t))
		})
	}
}

// unique returns prefix plus a random suffix, so cases never share a tenant
// even on a shared table.
func unique(prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func newExecution(tenant string, start time.Time) *longrun.Execution {
	id := longrun.NewExecutionID()
	return &longrun.Execution{
		ID:          id,
		ARN:         "arn:aws:states:us-east-1:123456789012:execution:longrun:" + id,
		Tenant:      tenant,
		Name:        "nightly-export",
		Job:         "export",
		Status:      longrun.StatusRunning,
		Input:       json.RawMessage(`{"timer":3,"items":["a","b"],"nested":{"ok":true}}`),
		CallbackURL: "https://hooks.example.com/longrun",
		StartDate:   start,
	}
}

func create(t *testing.T, h Harness, e *longrun.Execution) *longrun.Execution {
	t.Helper()
	stored, replayed, err := h.Executions.CreateExecution(context.Background(), e)
	if err != nil {
		t.Fatalf("CreateExecution(%s): %v", e.ID, err)
	}
	if replayed {
		t.Fatalf("CreateExecution(%s): replayed = true, want a new execution", e.ID)
	}
	return stored
}

func get(t *testing.T, h Harness, tenant, id string) *longrun.Execution {
	t.Helper()
	e, err := h.Executions.GetExecution(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("GetExecution(%q, %s): %v", tenant, id, err)
	}
	return e
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if !longrun.IsCode(err, code) {
		t.Fatalf("%s: error = %v (code %q), want code %q", what, err, longrun.ErrorCode(err), code)
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(bytes.TrimSpace(a)) == 0 || len(bytes.TrimSpace(b)) == 0 {
		return len(bytes.TrimSpace(a)) == len(bytes.TrimSpace(b))
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

// diffExecution lists the fields in which got differs from want.
func diffExecution(got, want *longrun.Execution) []string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.ARN != want.ARN {
		add("ARN", got.ARN, want.ARN)
	}
	if got.Tenant != want.Tenant {
		add("Tenant", got.Tenant, want.Tenant)
	}
	if got.Name != want.Name {
		add("Name", got.Name, want.Name)
	}
	if got.Job != want.Job {
		add("Job", got.Job, want.Job)
	}
	if got.Status != want.Status {
		add("Status", got.Status, want.Status)
	}
	if !jsonEqual(got.Input, want.Input) {
		add("Input", string(got.Input), string(want.Input))
	}
	if !jsonEqual(got.Output, want.Output) {
		add("Output", string(got.Output), string(want.Output))
	}
	if got.Error != want.Error {
		add("Error", got.Error, want.Error)
	}
	if got.Cause != want.Cause {
		add("Cause", got.Cause, want.Cause)
	}
	if got.CallbackURL != want.CallbackURL {
		add("CallbackURL", got.CallbackURL, want.CallbackURL)
	}
	if !sameTime(got.StartDate, want.StartDate) {
		add("StartDate", got.StartDate, want.StartDate)
	}
	if !sameTime(got.StopDate, want.StopDate) {
		add("StopDate", got.StopDate, want.StopDate)
	}
	if got.IdempotencyKey != want.IdempotencyKey {
		add("IdempotencyKey", got.IdempotencyKey, want.IdempotencyKey)
	}
	if got.RequestHash != want.RequestHash {
		add("RequestHash", got.RequestHash, want.RequestHash)
	}
	if (got.Progress == nil) != (want.Progress == nil) {
		add("Progress", got.Progress, want.Progress)
	} else if got.Progress != nil {
		g, w := *got.Progress, *want.Progress
		if g.Percent != w.Percent || g.Message != w.Message || !sameTime(g.UpdatedAt, w.UpdatedAt) {
			add("Progress", g, w)
		}
	}
	if (got.Webhook == nil) != (want.Webhook == nil) {
		add("Webhook", got.Webhook, want.Webhook)
	} else if got.Webhook != nil {
		d = append(d, diffDelivery(*got.Webhook, *want.Webhook)...)
	}
	return d
}

func diffDelivery(got, want longrun.Delivery) []string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("Webhook.%s = %v, want %v", field, g, w)) }
	if got.EventID != want.EventID {
		add("EventID", got.EventID, want.EventID)
	}
	if got.Type != want.Type {
		add("Type", got.Type, want.Type)
	}
	if got.State != want.State {
		add("State", got.State, want.State)
	}
	if !sameTime(got.NextAttempt, want.NextAttempt) {
		add("NextAttempt", got.NextAttempt, want.NextAttempt)
	}
	if got.Round != want.Round {
		add("Round", got.Round, want.Round)
	}
	if got.RoundAttempts != want.RoundAttempts {
		add("RoundAttempts", got.RoundAttempts, want.RoundAttempts)
	}
	if len(got.Attempts) != len(want.Attempts) {
		add("len(Attempts)", len(got.Attempts), len(want.Attempts))
		return d
	}
	for i, g := range got.Attempts {
		w := want.Attempts[i]
		if !sameTime(g.At, w.At) || g.StatusCode != w.StatusCode || g.Latency.Truncate(time.Millisecond) != w.Latency.Truncate(time.Millisecond) || g.Error != w.Error {
			add(fmt.Sprintf("Attempts[%d]", i), g, w)
		}
	}
	return d
}

func wantExecution(t *testing.T, what string, got, want *longrun.Execution) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got nil execution", what)
	}
	if d := diffExecution(got, want); len(d) > 0 {
		t.Errorf("%s differs:", what)
		for _, line := range d {
			t.Errorf("  %s", line)
		}
	}
}

func testCreateGet(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant := unique("tenant")
	e := newExecution(tenant, h.now())
	e.IdempotencyKey = unique("key")
	e.RequestHash = "sha256:0f1e2d"
	want := *e
	stored := create(t, h, e)
	wantExecution(t, "CreateExecution result", stored, &want)

	for _, who := range []string{tenant, ""} {
		wantExecution(t, fmt.Sprintf("GetExecution(tenant %q)", who), get(t, h, who, e.ID), &want)
	}

	_, err := h.Executions.GetExecution(ctx, tenant, longrun.NewExecutionID())
	wantCode(t, "GetExecution(unknown id)", err, longrun.ENOTFOUND)
}

func testCreateDuplicateID(t *testing.T, h Harness) {
	e := newExecution(unique("tenant"), h.now())
	create(t, h, e)
	again := *e
	again.Name = "other"
	_, _, err := h.Executions.CreateExecution(context.Background(), &again)
	wantCode(t, "CreateExecution(same id)", err, longrun.EDUPLICATE)
	if got := get(t, h, "", e.ID); got.Name != e.Name {
		t.Errorf("after a duplicate create, Name = %q, want the first %q", got.Name, e.Name)
	}
}

func testGetTenantIsolation(t *testing.T, h Harness) {
	ctx := context.Background()
	owner, other := unique("owner"), unique("other")
	e := create(t, h, newExecution(owner, h.now()))

	_, err := h.Executions.GetExecution(ctx, other, e.ID)
	wantCode(t, "GetExecution(foreign tenant)", err, longrun.ENOTFOUND)

	page, err := h.Executions.ListExecutions(ctx, other, longrun.ListQuery{Limit: longrun.MaxListLimit})
	if err != nil {
		t.Fatalf("ListExecutions(other): %v", err)
	}
	if len(page.Executions) != 0 {
		t.Errorf("ListExecutions(other) = %d executions, want none of the owner's", len(page.Executions))
	}
}

func testIdempotentReplay(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant, key := unique("tenant"), unique("key")
	start := h.now()
	first := newExecution(tenant, start)
	first.IdempotencyKey, first.RequestHash = key, "hash-a"
	create(t, h, first)

	// A retry an hour later, with a fresh id as the API would mint.
	retry := newExecution(tenant, start.Add(time.Hour))
	retry.IdempotencyKey, retry.RequestHash = key, "hash-a"
	got, replayed, err := h.Executions.CreateExecution(ctx, retry)
	if err != nil {
		t.Fatalf("CreateExecution(replay): %v", err)
	}
	if !replayed {
		t.Errorf("replayed = false, want true")
	}
	if got == nil || got.ID != first.ID {
		t.Fatalf("replay returned %+v, want the first execution %s", got, first.ID)
	}
	wantExecution(t, "replayed execution", got, first)

	_, err = h.Executions.GetExecution(ctx, "", retry.ID)
	wantCode(t, "GetExecution(id of the replayed request)", err, longrun.ENOTFOUND)
}

func testIdempotencyConflict(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant, key := unique("tenant"), unique("key")
	start := h.now()
	first := newExecution(tenant, start)
	first.IdempotencyKey, first.RequestHash = key, "hash-a"
	create(t, h, first)

	other := newExecution(tenant, start.Add(23*time.Hour))
	other.IdempotencyKey, other.RequestHash = key, "hash-b"
	_, _, err := h.Executions.CreateExecution(ctx, other)
	wantCode(t, "CreateExecution(same key, other body)", err, longrun.ECONFLICT)

	_, err = h.Executions.GetExecution(ctx, "", other.ID)
	wantCode(t, "GetExecution(id of the conflicting request)", err, longrun.ENOTFOUND)
}

func testIdempotencyKeyPerTenant(t *testing.T, h Harness) {
	key := unique("key")
	start := h.now()
	a := newExecution(unique("tenant-a"), start)
	a.IdempotencyKey, a.RequestHash = key, "hash-a"
	create(t, h, a)

	b := newExecution(unique("tenant-b"), start)
	b.IdempotencyKey, b.RequestHash = key, "hash-b"
	stored := create(t, h, b) // neither a replay nor a conflict: keys are per tenant
	if stored.ID != b.ID {
		t.Errorf("second tenant got execution %s, want its own %s", stored.ID, b.ID)
	}
}

func testIdempotencyKeyReuseAfterWindow(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant, key := unique("tenant"), unique("key")
	start := h.now()
	first := newExecution(tenant, start)
	first.IdempotencyKey, first.RequestHash = key, "hash-a"
	create(t, h, first)

	// 25 h later the key is forgotten: a new execution, even with another body.
	later := newExecution(tenant, start.Add(25*time.Hour))
	later.IdempotencyKey, later.RequestHash = key, "hash-b"
	stored := create(t, h, later)
	if stored.ID != later.ID {
		t.Fatalf("after the window got %s, want the new execution %s", stored.ID, later.ID)
	}
	// The window now runs from the new execution.
	retry := newExecution(tenant, start.Add(26*time.Hour))
	retry.IdempotencyKey, retry.RequestHash = key, "hash-b"
	got, replayed, err := h.Executions.CreateExecution(ctx, retry)
	if err != nil {
		t.Fatalf("CreateExecution(replay of the new one): %v", err)
	}
	if !replayed || got.ID != later.ID {
		t.Errorf("replay = (%s, %v), want (%s, true)", got.ID, replayed, later.ID)
	}
	// The first execution is still there: only the key moved on.
	get(t, h, tenant, first.ID)
}

func testDeleteFreesKey(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant, key := unique("tenant"), unique("key")
	start := h.now()
	first := newExecution(tenant, start)
	first.IdempotencyKey, first.RequestHash = key, "hash-a"
	create(t, h, first)

	if err := h.Executions.DeleteExecution(ctx, first.ID); err != nil {
		t.Fatalf("DeleteExecution: %v", err)
	}
	_, err := h.Executions.GetExecution(ctx, tenant, first.ID)
	wantCode(t, "GetExecution(deleted)", err, longrun.ENOTFOUND)

	retry := newExecution(tenant, start.Add(time.Minute))
	retry.IdempotencyKey, retry.RequestHash = key, "hash-b"
	if stored := create(t, h, retry); stored.ID != retry.ID {
		t.Errorf("after delete got %s, want the new execution %s", stored.ID, retry.ID)
	}
}

// listAll pages through ListExecutions and returns the ids, page by page.
func listAll(t *testing.T, h Harness, tenant string, q longrun.ListQuery) [][]string {
	t.Helper()
	var pages [][]string
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatalf("ListExecutions: more than 50 pages, the token does not advance")
		}
		page, err := h.Executions.ListExecutions(context.Background(), tenant, q)
		if err != nil {
			t.Fatalf("ListExecutions(%+v): %v", q, err)
		}
		if len(page.Executions) > q.Limit {
			t.Fatalf("ListExecutions(limit %d) returned %d executions", q.Limit, len(page.Executions))
		}
		var ids []string
		for _, e := range page.Executions {
			if e.Tenant != tenant {
				t.Fatalf("ListExecutions(%s) returned %s of tenant %s", tenant, e.ID, e.Tenant)
			}
			if q.Status != "" && e.Status != q.Status {
				t.Fatalf("ListExecutions(status %s) returned %s with status %s", q.Status, e.ID, e.Status)
			}
			ids = append(ids, e.ID)
		}
		pages = append(pages, ids)
		if page.NextToken == "" {
			return pages
		}
		q.NextToken = page.NextToken
	}
}

func flatten(pages [][]string) []string {
	var all []string
	for _, p := range pages {
		all = append(all, p...)
	}
	return all
}

func testListNewestFirstPaginated(t *testing.T, h Harness) {
	tenant, other := unique("tenant"), unique("other")
	start := h.now()
	var ids []string
	for i := range 5 {
		e := create(t, h, newExecution(tenant, start.Add(time.Duration(i)*time.Second)))
		ids = append(ids, e.ID)
		create(t, h, newExecution(other, start)) // interleaved noise of another tenant
	}
	want := [][]string{{ids[4], ids[3]}, {ids[2], ids[1]}, {ids[0]}}
	got := listAll(t, h, tenant, longrun.ListQuery{Limit: 2})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pages of 2 = %v, want %v", got, want)
	}
	one := listAll(t, h, tenant, longrun.ListQuery{Limit: longrun.MaxListLimit})
	if !reflect.DeepEqual(one, [][]string{{ids[4], ids[3], ids[2], ids[1], ids[0]}}) {
		t.Errorf("one page = %v, want all five newest first", one)
	}
	page, err := h.Executions.ListExecutions(context.Background(), tenant, longrun.ListQuery{Limit: 5})
	if err != nil {
		t.Fatalf("ListExecutions(limit 5): %v", err)
	}
	if len(page.Executions) != 5 {
		t.Fatalf("limit 5 = %d executions, want 5", len(page.Executions))
	}
	// Summaries come back, not only ids (the rest of a record may be left
	// out: see longrun.ExecutionStore).
	e := page.Executions[0]
	if e.ARN == "" || e.Name != newExecution(tenant, start).Name || e.Status != longrun.StatusRunning || e.StartDate.IsZero() {
		t.Errorf("listed execution lacks its summary: %+v", e)
	}
}

func testListStatusFilter(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant := unique("tenant")
	start := h.now()
	var running, succeeded []string
	for i := range 7 {
		e := create(t, h, newExecution(tenant, start.Add(time.Duration(i)*time.Second)))
		if i%2 == 0 {
			if _, _, err := h.Executions.FinishExecution(ctx, e.ID, longrun.Outcome{
				Status: longrun.StatusSucceeded, Output: json.RawMessage(`{"ok":true}`), StopDate: start.Add(time.Minute),
			}); err != nil {
				t.Fatalf("FinishExecution: %v", err)
			}
			succeeded = append([]string{e.ID}, succeeded...)
		} else {
			running = append([]string{e.ID}, running...)
		}
	}
	for _, c := range []struct {
		status longrun.Status
		want   []string
	}{
		{longrun.StatusSucceeded, succeeded},
		{longrun.StatusRunning, running},
		{longrun.StatusFailed, nil},
	} {
		got := flatten(listAll(t, h, tenant, longrun.ListQuery{Status: c.status, Limit: 2}))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("status %s, pages of 2 = %v, want %v", c.status, got, c.want)
		}
	}
}

// testListJobFilter lists by job kind, alone and with a status, across pages.
func testListJobFilter(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant := unique("tenant")
	start := h.now()
	kinds := []string{"export", "transcode", "export", "report", "export", "transcode"}
	want := map[string][]string{}
	var exportSucceeded []string
	for i, kind := range kinds {
		e := newExecution(tenant, start.Add(time.Duration(i)*time.Second))
		e.Job = kind
		create(t, h, e)
		want[kind] = append([]string{e.ID}, want[kind]...)
		if kind == "export" && i > 0 {
			if _, _, err := h.Executions.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusSucceeded, StopDate: start.Add(time.Minute)}); err != nil {
				t.Fatalf("FinishExecution: %v", err)
			}
			exportSucceeded = append([]string{e.ID}, exportSucceeded...)
		}
	}
	for _, c := range []struct {
		q    longrun.ListQuery
		want []string
	}{
		{longrun.ListQuery{Job: "export", Limit: 2}, want["export"]},
		{longrun.ListQuery{Job: "transcode", Limit: 1}, want["transcode"]},
		{longrun.ListQuery{Job: "report", Limit: 10}, want["report"]},
		{longrun.ListQuery{Job: "missing", Limit: 10}, nil},
		{longrun.ListQuery{Job: "export", Status: longrun.StatusSucceeded, Limit: 1}, exportSucceeded},
	} {
		got := flatten(listAll(t, h, tenant, c.q))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("job %q status %q, pages of %d = %v, want %v", c.q.Job, c.q.Status, c.q.Limit, got, c.want)
		}
	}
	// The records say which kind they run.
	page, err := h.Executions.ListExecutions(ctx, tenant, longrun.ListQuery{Job: "report", Limit: 10})
	if err != nil || len(page.Executions) != 1 || page.Executions[0].Job != "report" {
		t.Errorf("ListExecutions(job report) = %+v, %v; want one execution of kind report", page, err)
	}
}

func testListBadToken(t *testing.T, h Harness) {
	_, err := h.Executions.ListExecutions(context.Background(), unique("tenant"),
		longrun.ListQuery{Limit: 10, NextToken: "not a token we made!"})
	wantCode(t, "ListExecutions(garbage token)", err, longrun.EINVALID)
}

func testFinishRecordsOutcome(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant := unique("tenant")
	start := h.now()
	for _, o := range []longrun.Outcome{
		{Status: longrun.StatusSucceeded, Output: json.RawMessage(`{"message":"ramen is ready"}`), StopDate: start.Add(3 * time.Second)},
		{Status: longrun.StatusFailed, Error: "Job.Error", Cause: "the oven caught fire", StopDate: start.Add(4 * time.Second)},
		{Status: longrun.StatusTimedOut, Error: "States.Timeout", StopDate: start.Add(5 * time.Second)},
		{Status: longrun.StatusAborted, Error: "Stopped", Cause: "stopped by the client", StopDate: start.Add(6 * time.Second)},
	} {
		e := newExecution(tenant, start)
		create(t, h, e)
		want := *e
		want.Status, want.Output, want.Error, want.Cause, want.StopDate = o.Status, o.Output, o.Error, o.Cause, o.StopDate

		got, recorded, err := h.Executions.FinishExecution(ctx, e.ID, o)
		if err != nil || !recorded {
			t.Fatalf("FinishExecution(%s) = recorded %v, %v; want recorded", o.Status, recorded, err)
		}
		wantExecution(t, "FinishExecution result", got, &want)
		wantExecution(t, "GetExecution after finish", get(t, h, tenant, e.ID), &want)

		// A repeated call (another notify, an EventBridge event) changes nothing.
		late := longrun.Outcome{Status: longrun.StatusAborted, Error: "Late", StopDate: start.Add(time.Hour)}
		got, recorded, err = h.Executions.FinishExecution(ctx, e.ID, late)
		if err != nil || recorded {
			t.Fatalf("second FinishExecution = recorded %v, %v; want not recorded, no error", recorded, err)
		}
		wantExecution(t, "second FinishExecution result", got, &want)
		wantExecution(t, "GetExecution after second finish", get(t, h, tenant, e.ID), &want)
	}
}

func testFinishExactlyOnceConcurrent(t *testing.T, h Harness) {
	ctx := context.Background()
	e := create(t, h, newExecution(unique("tenant"), h.now()))
	const n = 8
	type result struct {
		e        *longrun.Execution
		recorded bool
		err      error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o := longrun.Outcome{
				Status:   longrun.StatusSucceeded,
				Output:   json.RawMessage(fmt.Sprintf(`{"caller":%d}`, i)),
				StopDate: e.StartDate.Add(time.Duration(i+1) * time.Second),
			}
			got, recorded, err := h.Executions.FinishExecution(ctx, e.ID, o)
			results[i] = result{got, recorded, err}
		})
	}
	wg.Wait()
	winner := -1
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if r.recorded {
			if winner >= 0 {
				t.Fatalf("callers %d and %d both recorded", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no caller recorded")
	}
	want := fmt.Sprintf(`{"caller":%d}`, winner)
	for i, r := range results {
		if r.e == nil || !jsonEqual(r.e.Output, json.RawMessage(want)) || r.e.Status != longrun.StatusSucceeded {
			t.Errorf("caller %d got %+v, want the winner's output %s", i, r.e, want)
		}
	}
	if got := get(t, h, "", e.ID); !jsonEqual(got.Output, json.RawMessage(want)) {
		t.Errorf("stored output %s, want the winner's %s", got.Output, want)
	}
}

func testFinishUnknown(t *testing.T, h Harness) {
	_, _, err := h.Executions.FinishExecution(context.Background(), longrun.NewExecutionID(),
		longrun.Outcome{Status: longrun.StatusSucceeded, StopDate: h.now()})
	wantCode(t, "FinishExecution(unknown)", err, longrun.ENOTFOUND)
}

func testSetProgress(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant := unique("tenant")
	start := h.now()
	e := create(t, h, newExecution(tenant, start))

	for _, p := range []longrun.Progress{
		{Percent: 10, Message: "boiling water", UpdatedAt: start.Add(time.Second)},
		{Percent: 62.5, Message: "noodles in", UpdatedAt: start.Add(2 * time.Second)},
	} {
		if err := h.Executions.SetProgress(ctx, e.ID, p); err != nil {
			t.Fatalf("SetProgress(%v): %v", p.Percent, err)
		}
		want := *e
		want.Progress = &p
		wantExecution(t, "GetExecution after SetProgress", get(t, h, tenant, e.ID), &want)
	}

	if _, _, err := h.Executions.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusSucceeded, StopDate: start.Add(time.Minute)}); err != nil {
		t.Fatalf("FinishExecution: %v", err)
	}
	late := longrun.Progress{Percent: 99, Message: "late", UpdatedAt: start.Add(2 * time.Minute)}
	wantCode(t, "SetProgress(ended)", h.Executions.SetProgress(ctx, e.ID, late), longrun.ENOTRUNNING)
	if got := get(t, h, tenant, e.ID); got.Status != longrun.StatusSucceeded || got.Progress == nil || got.Progress.Percent != 62.5 {
		t.Errorf("after a late SetProgress: status %s, progress %+v; want SUCCEEDED with the last running progress", got.Status, got.Progress)
	}

	wantCode(t, "SetProgress(unknown)", h.Executions.SetProgress(ctx, longrun.NewExecutionID(), late), longrun.ENOTFOUND)
}

func testSaveDelivery(t *testing.T, h Harness) {
	ctx := context.Background()
	tenant := unique("tenant")
	start := h.now()
	e := create(t, h, newExecution(tenant, start))
	if _, _, err := h.Executions.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusFailed, Error: "Job.Error", Cause: "boom", StopDate: start.Add(time.Second)}); err != nil {
		t.Fatalf("FinishExecution: %v", err)
	}
	want := get(t, h, tenant, e.ID)

	pending := longrun.Delivery{
		EventID: "msg_" + unique("evt"),
		Type:    longrun.EventFailed,
		State:   longrun.DeliveryPending,
		Attempts: []longrun.Attempt{
			{At: start.Add(2 * time.Second), StatusCode: 0, Latency: 15 * time.Second, Error: "dial tcp: i/o timeout"},
			{At: start.Add(7 * time.Second), StatusCode: 503, Latency: 120 * time.Millisecond, Error: "Service Unavailable"},
		},
		NextAttempt: start.Add(5*time.Minute + 7*time.Second),
	}
	delivered := pending
	delivered.State = longrun.DeliveryDelivered
	delivered.Attempts = append(append([]longrun.Attempt(nil), pending.Attempts...),
		longrun.Attempt{At: start.Add(5*time.Minute + 8*time.Second), StatusCode: 204, Latency: 42 * time.Millisecond})
	delivered.NextAttempt = time.Time{}
	redelivering := delivered
	redelivering.State, redelivering.Round, redelivering.RoundAttempts, redelivering.NextAttempt = longrun.DeliveryPending, 2, 3, start.Add(time.Hour)

	for _, d := range []longrun.Delivery{pending, delivered, redelivering} {
		if err := h.Executions.SaveDelivery(ctx, e.ID, d); err != nil {
			t.Fatalf("SaveDelivery(%s): %v", d.State, err)
		}
		want.Webhook = &d
		wantExecution(t, fmt.Sprintf("GetExecution after SaveDelivery(%s)", d.State), get(t, h, tenant, e.ID), want)
	}

	wantCode(t, "SaveDelivery(unknown)", h.Executions.SaveDelivery(ctx, longrun.NewExecutionID(), pending), longrun.ENOTFOUND)
}

// DeliveryClaimer is the conditional save every adapter has: a redeliver
// claims its round with it (internal/api), so of concurrent redelivers
// exactly one starts a round.
type DeliveryClaimer interface {
	SaveDeliveryIf(ctx context.Context, id string, prev, d longrun.Delivery) error
}

func testSaveDeliveryIf(t *testing.T, h Harness) {
	c, ok := h.Executions.(DeliveryClaimer)
	if !ok {
		t.Fatalf("%T has no SaveDeliveryIf: concurrent redelivers could both start a round", h.Executions)
	}
	ctx := context.Background()
	tenant := unique("tenant")
	start := h.now()
	e := create(t, h, newExecution(tenant, start))
	if _, _, err := h.Executions.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusSucceeded, Output: json.RawMessage(`{}`), StopDate: start.Add(time.Second)}); err != nil {
		t.Fatalf("FinishExecution: %v", err)
	}
	want := get(t, h, tenant, e.ID)
	delivered := longrun.Delivery{
		EventID: "msg_" + unique("evt"), Type: longrun.EventSucceeded, State: longrun.DeliveryDelivered,
		Attempts: []longrun.Attempt{{At: start.Add(2 * time.Second), StatusCode: 204, Latency: 9 * time.Millisecond}},
	}
	if err := h.Executions.SaveDelivery(ctx, e.ID, delivered); err != nil {
		t.Fatalf("SaveDelivery: %v", err)
	}
	round := func(n int) longrun.Delivery {
		d := delivered
		d.State, d.Round, d.RoundAttempts, d.NextAttempt = longrun.DeliveryPending, n, 0, start.Add(time.Minute)
		return d
	}

	// Of concurrent claims from the same read, exactly one wins (round 0,
	// which a store may keep as an absent attribute, included).
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	for range n {
		wg.Go(func() {
			err := c.SaveDeliveryIf(ctx, e.ID, delivered, round(1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case longrun.IsCode(err, longrun.ECONFLICT):
			default:
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || len(errs) > 0 {
		t.Fatalf("%d concurrent SaveDeliveryIf from one read: %d won (want 1), unexpected errors %v", n, wins, errs)
	}
	want.Webhook = new(round(1))
	wantExecution(t, "GetExecution after the claim", get(t, h, tenant, e.ID), want)

	// A claim from a stale read (state or round changed) is refused and
	// changes nothing; one from the current read wins.
	ended := round(1)
	ended.State = longrun.DeliveryFailed
	for _, prev := range []longrun.Delivery{delivered, ended, round(2)} {
		wantCode(t, fmt.Sprintf("SaveDeliveryIf(prev round %d %s)", prev.Round, prev.State), c.SaveDeliveryIf(ctx, e.ID, prev, round(3)), longrun.ECONFLICT)
	}
	wantExecution(t, "GetExecution after stale claims", get(t, h, tenant, e.ID), want)
	if err := c.SaveDeliveryIf(ctx, e.ID, round(1), round(2)); err != nil {
		t.Fatalf("SaveDeliveryIf from the current delivery: %v", err)
	}
	want.Webhook = new(round(2))
	wantExecution(t, "GetExecution after the second claim", get(t, h, tenant, e.ID), want)

	wantCode(t, "SaveDeliveryIf(unknown)", c.SaveDeliveryIf(ctx, longrun.NewExecutionID(), delivered, round(1)), longrun.ENOTFOUND)
}

func testTenantRoundTrip(t *testing.T, h Harness) {
	ctx := context.Background()
	now := h.now()
	id := unique("tenant")
	first := &longrun.Tenant{ID: id, Secrets: []longrun.WebhookSecret{
		{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CreatedAt: now},
	}}
	// Rotation: a new secret first, the old one expiring after the overlap.
	rotated := &longrun.Tenant{ID: id, Secrets: []longrun.WebhookSecret{
		{Value: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", CreatedAt: now.Add(time.Hour)},
		{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CreatedAt: now, ExpiresAt: now.Add(time.Hour + longrun.SecretOverlap)},
		{Value: "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Minute)},
	}}
	for _, want := range []*longrun.Tenant{first, rotated} {
		if err := h.Tenants.PutTenant(ctx, want); err != nil {
			t.Fatalf("PutTenant: %v", err)
		}
		got, err := h.Tenants.GetTenant(ctx, id)
		if err != nil {
			t.Fatalf("GetTenant: %v", err)
		}
		if got.ID != id || len(got.Secrets) != len(want.Secrets) {
			t.Fatalf("GetTenant = %+v, want %+v", got, want)
		}
		for i, s := range got.Secrets {
			w := want.Secrets[i]
			if s.Value != w.Value || !sameTime(s.CreatedAt, w.CreatedAt) || !sameTime(s.ExpiresAt, w.ExpiresAt) {
				t.Errorf("Secrets[%d] = %+v, want %+v (order must be kept)", i, s, w)
			}
		}
	}
}

func testTenantUnknown(t *testing.T, h Harness) {
	_, err := h.Tenants.GetTenant(context.Background(), unique("nobody"))
	wantCode(t, "GetTenant(unknown)", err, longrun.ENOTFOUND)
}

func testAPIKeys(t *testing.T, h Harness) {
	ctx := context.Background()
	a, b := unique("tenant-a"), unique("tenant-b")
	keys := map[string]string{unique("sha256-a1"): a, unique("sha256-a2"): a, unique("sha256-b1"): b}
	for hash, tenant := range keys {
		if err := h.Tenants.PutAPIKey(ctx, hash, tenant); err != nil {
			t.Fatalf("PutAPIKey: %v", err)
		}
	}
	for hash, want := range keys {
		got, err := h.Tenants.TenantForKey(ctx, hash)
		if err != nil || got != want {
			t.Errorf("TenantForKey(%s) = %q, %v; want %q", hash, got, err, want)
		}
	}
	_, err := h.Tenants.TenantForKey(ctx, unique("sha256-unknown"))
	wantCode(t, "TenantForKey(unknown)", err, longrun.ENOTFOUND)

	// Revoking one key leaves the tenant's other keys working.
	var revoked, kept string
	for hash, tenant := range keys {
		if tenant == a && revoked == "" {
			revoked = hash
		} else if tenant == a {
			kept = hash
		}
	}
	if err := h.Tenants.DeleteAPIKey(ctx, revoked); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	_, err = h.Tenants.TenantForKey(ctx, revoked)
	wantCode(t, "TenantForKey(revoked)", err, longrun.ENOTFOUND)
	if got, err := h.Tenants.TenantForKey(ctx, kept); err != nil || got != a {
		t.Errorf("TenantForKey(the tenant's other key) = %q, %v; want %q", got, err, a)
	}
	wantCode(t, "DeleteAPIKey(revoked again)", h.Tenants.DeleteAPIKey(ctx, revoked), longrun.ENOTFOUND)
}
