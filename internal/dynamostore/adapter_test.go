package dynamostore_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/template"
)

// backends are the emulators every adapter test runs on.
var backends = []struct {
	name  string
	setup func(t *testing.T) (*dynamostore.Store, *dynamodb.Client)
}{
	{"kumo", kumoStore},
	{"minidyn", minidynStore},
	{"moto", motoStore},
}

func newExecution(tenant string) *longrun.Execution {
	id := longrun.NewExecutionID()
	return &longrun.Execution{
		ID: id, ARN: "arn:aws:states:us-east-1:123456789012:execution:longrun:" + id, Tenant: tenant,
		Status: longrun.StatusRunning, Input: json.RawMessage(`{"timer":3}`),
		StartDate: time.Now().UTC().Truncate(time.Millisecond),
	}
}

// bigJSON is a JSON document of about n bytes that compresses as real
// payloads do (repetitive keys, varied values).
func bigJSON(n int) json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"rows":[`)
	for i := 0; b.Len() < n-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%x","ok":%t}`, i, i*7919, i%3 == 0)
	}
	b.WriteString(`]}`)
	return json.RawMessage(b.String())
}

// Inputs and outputs of up to 256 KiB each must fit DynamoDB's 400 KB item
// together; above 16 KiB they are stored gzipped and must come back intact.
func TestLargePayloadsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, client := b.setup(t)
			ctx := context.Background()
			e := newExecution("tenant-" + longrun.NewExecutionID())
			e.Input = bigJSON(250 * 1024)
			if _, _, err := s.CreateExecution(ctx, e); err != nil {
				t.Fatalf("CreateExecution: %v", err)
			}
			output := bigJSON(250 * 1024)
			got, recorded, err := s.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusSucceeded, Output: output, StopDate: e.StartDate.Add(time.Second)})
			if err != nil || !recorded {
				t.Fatalf("FinishExecution = %v, %v", recorded, err)
			}
			if string(got.Input) != string(e.Input) || string(got.Output) != string(output) {
				t.Fatalf("payloads changed: input %d → %d bytes, output %d → %d bytes", len(e.Input), len(got.Input), len(output), len(got.Output))
			}
			raw, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tableOf(t, b.name)), Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "EXEC#" + e.ID}, "sk": &types.AttributeValueMemberS{Value: "EXEC"},
			}})
			if err != nil {
				t.Fatalf("GetItem: %v", err)
			}
			if size := itemSize(raw.Item); size > 400*1000 {
				t.Errorf("item is %d bytes, over DynamoDB's 400 KB", size)
			}
		})
	}
}

func tableOf(t *testing.T, backend string) string {
	switch backend {
	case "kumo":
		return kumoTable
	case "moto":
		return motoTable
	}
	return "longrun"
}

// itemSize approximates DynamoDB's item size: names plus values.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		default:
			n += 64 // numbers, maps and lists here are small
		}
	}
	return n
}

func TestListTokenValidated(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, _ := b.setup(t)
			ctx := context.Background()
			tenant, other := "tenant-"+longrun.NewExecutionID(), "other-"+longrun.NewExecutionID()
			for range 3 {
				if _, _, err := s.CreateExecution(ctx, newExecution(tenant)); err != nil {
					t.Fatal(err)
				}
			}
			page, err := s.ListExecutions(ctx, tenant, longrun.ListQuery{Limit: 1})
			if err != nil || page.NextToken == "" {
				t.Fatalf("first page: %v, token %q", err, page.NextToken)
			}
			forged := func(pk, gsi1pk string) string {
				b, _ := json.Marshal(map[string]string{"pk": pk, "sk": "EXEC", "gsi1pk": gsi1pk, "gsi1sk": pk})
				return base64.RawURLEncoding.EncodeToString(b)
			}
			for name, token := range map[string]string{
				"another tenant's token": page.NextToken, // used by other below
				"not base64":             "!!!",
				"not JSON":               base64.RawURLEncoding.EncodeToString([]byte("pk=1")),
				"extra field":            base64.RawURLEncoding.EncodeToString([]byte(`{"pk":"EXEC#1","sk":"EXEC","gsi1pk":"TENANT#` + other + `","gsi1sk":"EXEC#1","x":1}`)),
				"tenant item key":        forged("TENANT#"+other, "TENANT#"+other),
			} {
				_, err := s.ListExecutions(ctx, other, longrun.ListQuery{Limit: 1, NextToken: token})
				if !longrun.IsCode(err, longrun.EINVALID) {
					t.Errorf("%s: error = %v, want code %s", name, err, longrun.EINVALID)
				}
			}
			// The owner's own token keeps working.
			if _, err := s.ListExecutions(ctx, tenant, longrun.ListQuery{Limit: 1, NextToken: page.NextToken}); err != nil {
				t.Errorf("owner's token: %v", err)
			}
		})
	}
}

// The idempotency key item carries the TTL attribute in epoch seconds, never
// before the key's window ends.
func TestIdempotencyKeyTTL(t *testing.T) {
	t.Parallel()
	s, client := minidynStore(t)
	ctx := context.Background()
	e := newExecution("tenant-" + longrun.NewExecutionID())
	e.IdempotencyKey, e.RequestHash = "key-1", "hash"
	e.StartDate = time.Date(2026, 11, 25, 9, 0, 0, 500_000_000, time.UTC)
	if _, _, err := s.CreateExecution(ctx, e); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("longrun"), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "IDEM#" + e.Tenant + "#key-1"}, "sk": &types.AttributeValueMemberS{Value: "IDEM"},
	}})
	if err != nil || out.Item == nil {
		t.Fatalf("GetItem(key): %v, %v", out, err)
	}
	ttl, _ := out.Item[dynamostore.DefaultTTLAttribute].(*types.AttributeValueMemberN)
	want := fmt.Sprint(e.StartDate.Add(longrun.IdempotencyWindow).Unix() + 1) // rounded up
	if ttl == nil || ttl.Value != want {
		t.Errorf("ttl = %v, want %s", out.Item[dynamostore.DefaultTTLAttribute], want)
	}
}

// template.yaml must declare the table CreateTable makes.
func TestTemplateDeclaresTheTable(t *testing.T) {
	t.Parallel()
	tpl, err := template.Load("../../template.yaml")
	if err != nil {
		t.Fatalf("load template: %v", err)
	}
	ids := tpl.ResourcesOfType("AWS::DynamoDB::Table")
	if len(ids) != 1 {
		t.Fatalf("template has tables %v, want exactly one", ids)
	}
	props := tpl.Resources[ids[0]].Properties
	want := dynamostore.TableInput("x")

	var wantAttrs, gotAttrs []string
	for _, a := range want.AttributeDefinitions {
		wantAttrs = append(wantAttrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	for _, a := range list(props["AttributeDefinitions"]) {
		gotAttrs = append(gotAttrs, fmt.Sprint(a["AttributeName"])+":"+fmt.Sprint(a["AttributeType"]))
	}
	sort.Strings(wantAttrs)
	sort.Strings(gotAttrs)
	if !reflect.DeepEqual(gotAttrs, wantAttrs) {
		t.Errorf("AttributeDefinitions = %v, want %v", gotAttrs, wantAttrs)
	}
	if got, want := keySchema(list(props["KeySchema"])), wantKeySchema(want.KeySchema); got != want {
		t.Errorf("KeySchema = %s, want %s", got, want)
	}
	gsis := list(props["GlobalSecondaryIndexes"])
	if len(gsis) != len(want.GlobalSecondaryIndexes) {
		t.Fatalf("%d global secondary indexes, want %d", len(gsis), len(want.GlobalSecondaryIndexes))
	}
	for i, g := range gsis {
		w := want.GlobalSecondaryIndexes[i]
		proj, _ := g["Projection"].(map[string]any)
		if g["IndexName"] != aws.ToString(w.IndexName) || keySchema(list(g["KeySchema"])) != wantKeySchema(w.KeySchema) ||
			proj["ProjectionType"] != string(w.Projection.ProjectionType) {
			t.Errorf("index %v, want %s %s projection %s", g, aws.ToString(w.IndexName), wantKeySchema(w.KeySchema), w.Projection.ProjectionType)
		}
	}
	ttl, _ := props["TimeToLiveSpecification"].(map[string]any)
	if ttl["AttributeName"] != dynamostore.DefaultTTLAttribute || ttl["Enabled"] != true {
		t.Errorf("TimeToLiveSpecification = %v, want %s enabled", ttl, dynamostore.DefaultTTLAttribute)
	}
	if props["BillingMode"] != string(want.BillingMode) {
		t.Errorf("BillingMode = %v, want %s", props["BillingMode"], want.BillingMode)
	}
}

func list(v any) []map[string]any {
	var out []map[string]any
	items, _ := v.([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		out = append(out, m)
	}
	return out
}

func keySchema(ks []map[string]any) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprint(k["AttributeName"])+" "+fmt.Sprint(k["KeyType"]))
	}
	return strings.Join(parts, ", ")
}

func wantKeySchema(ks []types.KeySchemaElement) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return strings.Join(parts, ", ")
}

// Concurrent starts with one Idempotency-Key and body (a client retrying
// while the first request is still in flight) make one execution; every
// other call replays it.
func TestConcurrentIdempotentCreates(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, _ := b.setup(t)
			tenant := "tenant-" + longrun.NewExecutionID()
			const n = 8
			type result struct {
				id       string
				replayed bool
				err      error
			}
			results := make([]result, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					e := newExecution(tenant)
					e.IdempotencyKey, e.RequestHash = "retry-key", "same-body"
					got, replayed, err := s.CreateExecution(context.Background(), e)
					if err == nil {
						results[i] = result{got.ID, replayed, nil}
					} else {
						results[i] = result{err: err}
					}
				})
			}
			wg.Wait()
			created := map[string]bool{}
			ids := map[string]bool{}
			for i, r := range results {
				if r.err != nil {
					t.Fatalf("call %d: %v", i, r.err)
				}
				ids[r.id] = true
				if !r.replayed {
					created[r.id] = true
				}
			}
			if len(created) != 1 || len(ids) != 1 {
				t.Errorf("created %v, returned %v; want one execution created and replayed to all", created, ids)
			}
			page, err := s.ListExecutions(context.Background(), tenant, longrun.ListQuery{Limit: 10})
			if err != nil || len(page.Executions) != 1 {
				t.Errorf("tenant has %d executions (%v), want 1", len(page.Executions), err)
			}
		})
	}
}

func TestTenantWithHashRefused(t *testing.T) {
	t.Parallel()
	s, _ := minidynStore(t)
	_, _, err := s.CreateExecution(context.Background(), newExecution("a#b"))
	if !longrun.IsCode(err, longrun.EINVALID) {
		t.Errorf("CreateExecution(tenant a#b) = %v, want %s", err, longrun.EINVALID)
	}
}

// A key left behind by a DeleteExecution that stopped between its two
// deletes must not block the key for the rest of its window.
func TestOrphanedKeyFreed(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, client := b.setup(t)
			ctx := context.Background()
			tenant := "tenant-" + longrun.NewExecutionID()
			first := newExecution(tenant)
			first.IdempotencyKey, first.RequestHash = "k", "hash-a"
			if _, _, err := s.CreateExecution(ctx, first); err != nil {
				t.Fatal(err)
			}
			// Only the execution item goes, as if the process died there.
			if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tableOf(t, b.name)), Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "EXEC#" + first.ID}, "sk": &types.AttributeValueMemberS{Value: "EXEC"},
			}}); err != nil {
				t.Fatal(err)
			}
			retry := newExecution(tenant)
			retry.IdempotencyKey, retry.RequestHash = "k", "hash-b"
			got, replayed, err := s.CreateExecution(ctx, retry)
			if err != nil || replayed || got.ID != retry.ID {
				t.Fatalf("CreateExecution over an orphaned key = %v, replayed %v, %v; want the new execution", got, replayed, err)
			}
			again := newExecution(tenant)
			again.IdempotencyKey, again.RequestHash = "k", "hash-b"
			got, replayed, err = s.CreateExecution(ctx, again)
			if err != nil || !replayed || got.ID != retry.ID {
				t.Fatalf("then a retry = %v, replayed %v, %v; want a replay of %s", got, replayed, err, retry.ID)
			}
		})
	}
}

// A status filter that matches little cannot make one list request read the
// tenant's whole history: past a bounded number of queries the page comes
// back short, with a token that goes on, and paging still finds every match
// exactly once.
func TestFilteredListIsBounded(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, _ := b.setup(t)
			ctx := context.Background()
			tenant := "tenant-" + longrun.NewExecutionID()
			var want string
			for i := range 30 {
				e := newExecution(tenant)
				if _, _, err := s.CreateExecution(ctx, e); err != nil {
					t.Fatal(err)
				}
				if i == 0 { // the oldest: last in newest-first order
					want = e.ID
					if _, _, err := s.FinishExecution(ctx, e.ID, longrun.Outcome{Status: longrun.StatusSucceeded, StopDate: time.Now()}); err != nil {
						t.Fatal(err)
					}
				}
			}
			var found []string
			pages, token := 0, ""
			for {
				page, err := s.ListExecutions(ctx, tenant, longrun.ListQuery{Status: longrun.StatusSucceeded, Limit: 1, NextToken: token})
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, e := range page.Executions {
					found = append(found, e.ID)
				}
				if token = page.NextToken; token == "" {
					break
				}
				if pages > 30 {
					t.Fatal("paging does not end")
				}
			}
			if len(found) != 1 || found[0] != want {
				t.Fatalf("found %v, want exactly %s", found, want)
			}
			if pages < 2 {
				t.Fatalf("one request read all 30 executions (2 per query) to find one match; want it bounded")
			}
		})
	}
}

// A finished execution's record expires Retention after its stop date; a
// running one, and any record of a store without Retention, never does.
func TestFinishedExecutionTTL(t *testing.T) {
	t.Parallel()
	_, client := minidynStore(t)
	ctx := context.Background()
	const retention = 90 * 24 * time.Hour
	ttlOf := func(id string) types.AttributeValue {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("longrun"), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "EXEC#" + id}, "sk": &types.AttributeValueMemberS{Value: "EXEC"},
		}})
		if err != nil || out.Item == nil {
			t.Fatalf("GetItem(%s): %v, %v", id, out, err)
		}
		return out.Item[dynamostore.DefaultTTLAttribute]
	}
	stop := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		retention time.Duration
		want      string // "" for no ttl
	}{
		{"with retention", retention, fmt.Sprint(stop.Add(retention).Unix())},
		{"kept for ever", 0, ""},
	} {
		s := dynamostore.New(client, dynamostore.Config{TableName: "longrun", Retention: tc.retention})
		e := newExecution("tenant-" + longrun.NewExecutionID())
		stored, _, err := s.CreateExecution(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if v := ttlOf(stored.ID); v != nil {
			t.Errorf("%s: a running execution has ttl %v", tc.name, v)
		}
		if _, _, err := s.FinishExecution(ctx, stored.ID, longrun.Outcome{Status: longrun.StatusSucceeded, StopDate: stop, Output: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		got, _ := ttlOf(stored.ID).(*types.AttributeValueMemberN)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s: ttl %s, want none", tc.name, got.Value)
		case tc.want != "" && (got == nil || got.Value != tc.want):
			t.Errorf("%s: ttl %v, want %s (the stop date + %s)", tc.name, got, tc.want, retention)
		}
	}
}

// The SDK retries a write whose answer it lost although DynamoDB may have
// made it; the retry then fails its own condition. CreateExecution sent
// again with the very same execution (what the retry sends) must succeed,
// with or without an Idempotency-Key, while another execution under the
// same id is still a duplicate.
func TestCreateRetriedAfterALostAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := minidynStore(t)
	for _, key := range []string{"", "k-1"} {
		e := newExecution("acme")
		e.IdempotencyKey, e.RequestHash = key, "h"
		if _, _, err := s.CreateExecution(ctx, e); err != nil {
			t.Fatalf("create (key %q): %v", key, err)
		}
		again := *e
		if got, replayed, err := s.CreateExecution(ctx, &again); err != nil || replayed || got.ID != e.ID {
			t.Errorf("the same create again (key %q) = %v, replayed %v, %v; want it to succeed as the first", key, got, replayed, err)
		}
		other := *e
		other.Name = "someone else"
		if _, _, err := s.CreateExecution(ctx, &other); !longrun.IsCode(err, longrun.EDUPLICATE) {
			t.Errorf("another execution under the same id (key %q) = %v, want %s", key, err, longrun.EDUPLICATE)
		}
	}
}
