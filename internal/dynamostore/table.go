// Package dynamostore keeps longrun's executions, idempotency keys, tenants
// and API key hashes in ONE DynamoDB table: longrun.ExecutionStore and
// longrun.TenantStore for the Lambda functions on AWS.
//
// # Table design
//
// Key schema: pk (S, HASH), sk (S, RANGE). Global secondary index gsi1:
// gsi1pk (S, HASH), gsi1sk (S, RANGE), projection INCLUDE of only what a
// list returns (listAttributes): a record may be ~400 KB of input, output and
// webhook attempts. Global secondary index gsi2, sparse, KEYS_ONLY: pendpk
// (S, HASH), pendsk (S, RANGE), the start-pending marker of executions whose
// StartExecution is not yet known to have run (pending.go). Time to live on the attribute "ttl" (configurable), which
// idempotency keys and, with Config.Retention, finished executions carry. Billing PAY_PER_REQUEST. CreateTable
// creates exactly this; template.yaml declares the same.
//
//	item             pk                      sk       gsi1pk            gsi1sk        other
//	execution        EXEC#<id>               EXEC     TENANT#<tenant>   EXEC#<id>     the record (see record.go); while start-pending also
//	                                                                                    pendpk PENDING#<0-15>, pendsk <start ms>#<id> (gsi2)
//	idempotency key  IDEM#<tenant>#<key>     IDEM     -                 -             executionId, requestHash, expiresAt (unix ms), ttl (unix s)
//	tenant           TENANT#<id>             TENANT   -                 -             secrets
//	API key          KEY#<sha256 hash>       KEY      -                 -             tenant
//
// Only executions carry gsi1 attributes, so the index is sparse: a Query on
// gsi1pk = TENANT#<tenant>, newest first (ScanIndexForward false), lists one
// tenant's executions; execution ids are UUIDv7, so sorting by id sorts by
// creation time. A status filter is a FilterExpression on that Query.
//
// An idempotency key is valid until expiresAt = the execution's StartDate +
// longrun.IdempotencyWindow. The comparison is made in the write's condition,
// not left to TTL: DynamoDB deletes expired items only eventually (typically
// within days), so ttl only keeps the table small.
//
// Tenant ids must not contain '#' (internal/auth makes them); an
// Idempotency-Key may, because it comes last in its pk.
//
// Times are stored as unix milliseconds (N), so they round-trip at
// millisecond precision. Input and output above compressAbove bytes are
// stored gzip-compressed (B): the item limit is 400 KB and each may be up to
// 256 KiB.
package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/longrun/longrun"
)

// Attribute and index names of the table. template.yaml must declare the
// same (see the package doc).
const (
	attrPK     = "pk"
	attrSK     = "sk"
	attrGSI1PK = "gsi1pk"
	attrGSI1SK = "gsi1sk"
	indexGSI1  = "gsi1"

	// DefaultTTLAttribute is the TTL attribute when Config.TTLAttribute is empty.
	DefaultTTLAttribute = "ttl"
)

// ListAttributes are the non-key attributes gsi1 projects: what
// ListExecutions returns of each execution.
func ListAttributes() []string {
	return []string{"id", "arn", "name", "job", "status", "startDate", "stopDate"}
}

// TableAPI is what CreateTable needs of a DynamoDB client.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// TableInput is the CreateTable request for a longrun table named name: the
// key schema and index of the package doc.
func TableInput(name string) *dynamodb.CreateTableInput {
	s := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{s(attrPK), s(attrSK), s(attrGSI1PK), s(attrGSI1SK), s(attrPendPK), s(attrPendSK)},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(indexGSI1),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrGSI1PK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrGSI1SK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: ListAttributes()},
		}, {
			IndexName: aws.String(indexPending),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPendPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrPendSK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	}
}

// CreateTable creates a longrun table named name, waits until it is ACTIVE
// and turns on TTL for ttlAttribute ("" for DefaultTTLAttribute). It is for
// tests and local set-ups; on AWS template.yaml declares the table.
func CreateTable(ctx context.Context, client TableAPI, name, ttlAttribute string) error {
	if ttlAttribute == "" {
		ttlAttribute = DefaultTTLAttribute
	}
	if _, err := client.CreateTable(ctx, TableInput(name)); err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if err := waitActive(ctx, client, name); err != nil {
		return err
	}
	_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(ttlAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s.%s: %w", name, ttlAttribute, err)
	}
	return nil
}

// waitActive polls DescribeTable until the table is ACTIVE, for at most a
// minute (emulators are ACTIVE at once; DynamoDB takes seconds).
func waitActive(ctx context.Context, client TableAPI, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		var clock longrun.SystemClock
		if serr := longrun.SleepUntil(ctx, clock, clock.Now().Add(200*time.Millisecond)); serr != nil {
			return fmt.Errorf("table %s is not ACTIVE: %v (last error %v)", name, serr, err)
		}
	}
}
