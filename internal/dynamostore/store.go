package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/longrun/longrun"
)

// API is the part of the DynamoDB client the store uses. *dynamodb.Client
// implements it.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Config names the table.
type Config struct {
	TableName string
	// TTLAttribute is the table's TTL attribute; "" for DefaultTTLAttribute.
	TTLAttribute string
	// Retention is how long a finished execution's record is kept: its TTL
	// attribute is set to the stop date plus Retention when it finishes. 0
	// keeps records for ever.
	Retention time.Duration
}

// Store is longrun.ExecutionStore and longrun.TenantStore on one table.
type Store struct {
	client    API
	table     *string
	ttl       string
	retention time.Duration
}

var (
	_ longrun.ExecutionStore = (*Store)(nil)
	_ longrun.TenantStore    = (*Store)(nil)
)

// New returns a Store on the table cfg names.
func New(client API, cfg Config) *Store {
	ttl := cfg.TTLAttribute
	if ttl == "" {
		ttl = DefaultTTLAttribute
	}
	return &Store{client: client, table: aws.String(cfg.TableName), ttl: ttl, retention: cfg.Retention}
}

// createAttempts bounds CreateExecution's retries when the idempotency key it
// collided with vanished (expired or deleted) before it could be read.
const createAttempts = 3

// CreateExecution writes the execution and, with an Idempotency-Key, the key
// in one transaction: the execution must not exist, the key must not exist
// or have expired. When the key holds, the key item decides replay or
// conflict.
func (s *Store) CreateExecution(ctx context.Context, e *longrun.Execution) (*longrun.Execution, bool, error) {
	if strings.Contains(e.Tenant, "#") {
		// It would make IDEM#<tenant>#<key> ambiguous.
		return nil, false, longrun.Errorf(longrun.EINVALID, "tenant id %q contains '#'", e.Tenant)
	}
	item, err := attributevalue.MarshalMap(toExecItem(e))
	if err != nil {
		return nil, false, fmt.Errorf("marshal execution %s: %w", e.ID, err)
	}
	putExec := &types.Put{
		TableName:           s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}
	if e.IdempotencyKey == "" {
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: s.table, Item: item, ConditionExpression: putExec.ConditionExpression,
		})
		if isConditionFailed(err) {
			return s.existing(ctx, e)
		}
		if err != nil {
			return nil, false, fmt.Errorf("put execution %s: %w", e.ID, err)
		}
		return copyExecution(e), false, nil
	}

	start := millis(e.StartDate)
	expires := e.StartDate.Add(longrun.IdempotencyWindow)
	key, err := attributevalue.MarshalMap(idemItem{
		PK: idemPK(e.Tenant, e.IdempotencyKey), SK: skIdem, Tenant: e.Tenant,
		ExecutionID: e.ID, RequestHash: e.RequestHash, ExpiresAt: millis(expires),
	})
	if err != nil {
		return nil, false, fmt.Errorf("marshal idempotency key of %s: %w", e.ID, err)
	}
	// TTL is in seconds; round up so the item is never deleted while valid.
	key[s.ttl] = &types.AttributeValueMemberN{Value: strconv.FormatInt((millis(expires)+999)/1000, 10)}
	putKey := &types.Put{
		TableName:                 s.table,
		Item:                      key,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #expiresAt <= :start"),
		ExpressionAttributeNames:  map[string]string{"#expiresAt": "expiresAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":start": numberAV(start)},
	}

	for range createAttempts {
		_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: []types.TransactWriteItem{{Put: putExec}, {Put: putKey}},
		})
		if err == nil {
			return copyExecution(e), false, nil
		}
		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			return nil, false, fmt.Errorf("create execution %s: %w", e.ID, err)
		}
		if reasonIs(canceled, 0, "ConditionalCheckFailed") {
			return s.existing(ctx, e)
		}
		if len(canceled.CancellationReasons) == 0 {
			// An emulator that gives no reasons: find out which item held.
			if _, err := s.GetExecution(ctx, "", e.ID); err == nil {
				return nil, false, longrun.Errorf(longrun.EDUPLICATE, "execution %s already exists", e.ID)
			}
		}
		stored, replayed, retry, err := s.resolveKey(ctx, e)
		if !retry {
			return stored, replayed, err
		}
		// The key vanished (expired, or its execution deleted) or a
		// concurrent transaction held it: write again.
	}
	return nil, false, longrun.Errorf(longrun.EUNAVAILABLE,
		"idempotency key %q is changing concurrently; retry the request", e.IdempotencyKey)
}

// existing answers a create whose execution item already exists. The SDK
// retries a PutItem whose answer it did not get (a timeout, a dropped
// connection) although DynamoDB may have written it, and the retry then fails
// its own condition: if the item is this very execution (ids are random, so
// nothing else writes one with the same id, tenant and start), the create
// succeeded. Anything else is a duplicate.
func (s *Store) existing(ctx context.Context, e *longrun.Execution) (*longrun.Execution, bool, error) {
	stored, err := s.GetExecution(ctx, "", e.ID)
	switch {
	case longrun.IsCode(err, longrun.ENOTFOUND):
	case err != nil:
		// Not a 409: the item may well be this execution's own.
		return nil, false, fmt.Errorf("create execution %s: read what holds its id: %w", e.ID, err)
	case stored.Tenant == e.Tenant && stored.StartDate.Equal(e.StartDate.Truncate(time.Millisecond)) &&
		stored.Name == e.Name && stored.RequestHash == e.RequestHash:
		return copyExecution(e), false, nil
	}
	return nil, false, longrun.Errorf(longrun.EDUPLICATE, "execution %s already exists", e.ID)
}

// resolveKey reads the key that blocked e's transaction and returns the
// replay or the conflict, or retry when there is no valid key to decide by.
func (s *Store) resolveKey(ctx context.Context, e *longrun.Execution) (stored *longrun.Execution, replayed, retry bool, err error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table,
		Key:            itemKey(idemPK(e.Tenant, e.IdempotencyKey), skIdem),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, false, false, fmt.Errorf("read idempotency key of %s: %w", e.ID, err)
	}
	if out.Item == nil {
		return nil, false, true, nil
	}
	var k idemItem
	if err := attributevalue.UnmarshalMap(out.Item, &k); err != nil {
		return nil, false, false, fmt.Errorf("unmarshal idempotency key of %s: %w", e.ID, err)
	}
	if k.ExpiresAt <= millis(e.StartDate) {
		return nil, false, true, nil
	}
	first, err := s.GetExecution(ctx, "", k.ExecutionID)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		// The key outlived its execution (a DeleteExecution that stopped
		// between its two deletes): free it, then write again.
		if err := s.deleteKey(ctx, e.Tenant, e.IdempotencyKey, k.ExecutionID); err != nil {
			return nil, false, false, err
		}
		return nil, false, true, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	if k.RequestHash != e.RequestHash {
		return nil, false, false, longrun.Errorf(longrun.ECONFLICT,
			"Idempotency-Key %q was used with a different request in the last %s", e.IdempotencyKey, longrun.IdempotencyWindow)
	}
	return first, true, false, nil
}

// DeleteExecution removes the execution and, if it still points at it, its
// idempotency key. Deleting an unknown id does nothing.
func (s *Store) DeleteExecution(ctx context.Context, id string) error {
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    s.table,
		Key:          itemKey(execPK(id), skExec),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return fmt.Errorf("delete execution %s: %w", id, err)
	}
	var old execItem
	if out.Attributes == nil {
		return nil
	}
	if err := attributevalue.UnmarshalMap(out.Attributes, &old); err != nil {
		return fmt.Errorf("unmarshal deleted execution %s: %w", id, err)
	}
	if old.IdempotencyKey == "" {
		return nil
	}
	return s.deleteKey(ctx, old.Tenant, old.IdempotencyKey, id)
}

// deleteKey deletes the idempotency key if it still points at execution id:
// by now it may belong to a newer execution.
func (s *Store) deleteKey(ctx context.Context, tenant, key, id string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 s.table,
		Key:                       itemKey(idemPK(tenant, key), skIdem),
		ConditionExpression:       aws.String("#executionId = :id"),
		ExpressionAttributeNames:  map[string]string{"#executionId": "executionId"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("delete idempotency key of %s: %w", id, err)
	}
	return nil
}

// GetExecution reads the execution with a strongly consistent read, so a
// describe right after start or finish sees it.
func (s *Store) GetExecution(ctx context.Context, tenant, id string) (*longrun.Execution, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table,
		Key:            itemKey(execPK(id), skExec),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get execution %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, notFound(id)
	}
	e, err := unmarshalExecution(out.Item)
	if err != nil {
		return nil, err
	}
	if tenant != "" && e.Tenant != tenant {
		return nil, notFound(id)
	}
	return e, nil
}

// FinishExecution records o on a RUNNING execution; the condition makes
// exactly one of concurrent callers win.
func (s *Store) FinishExecution(ctx context.Context, id string, o longrun.Outcome) (*longrun.Execution, bool, error) {
	u := update{names: map[string]string{"#status": "status"}, values: map[string]types.AttributeValue{}}
	u.set("status", &types.AttributeValueMemberS{Value: string(o.Status)})
	u.set("stopDate", numberAV(millis(o.StopDate)))
	plain, zipped := packJSON(o.Output)
	if plain != "" {
		u.set("output", &types.AttributeValueMemberS{Value: plain})
	}
	if zipped != nil {
		u.set("outputZ", &types.AttributeValueMemberB{Value: zipped})
	}
	if o.Error != "" {
		u.set("error", &types.AttributeValueMemberS{Value: o.Error})
	}
	if o.Cause != "" {
		u.set("cause", &types.AttributeValueMemberS{Value: o.Cause})
	}
	if s.retention > 0 {
		// TTL is in unix seconds; DynamoDB deletes the item some time after.
		u.set(s.ttl, numberAV(o.StopDate.Add(s.retention).Unix()))
	}
	u.values[":running"] = &types.AttributeValueMemberS{Value: string(longrun.StatusRunning)}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           s.table,
		Key:                                 itemKey(execPK(id), skExec),
		UpdateExpression:                    aws.String(u.expression()),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND #status = :running"),
		ExpressionAttributeNames:            u.names,
		ExpressionAttributeValues:           u.values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if isConditionFailed(err) {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) && ccf.Item != nil {
			e, err := unmarshalExecution(ccf.Item)
			return e, false, err
		}
		// Emulators that do not return the old item: read it.
		e, err := s.GetExecution(ctx, "", id)
		return e, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("finish execution %s: %w", id, err)
	}
	e, err := unmarshalExecution(out.Attributes)
	return e, err == nil, err
}

// SetProgress stores p on a RUNNING execution.
func (s *Store) SetProgress(ctx context.Context, id string, p longrun.Progress) error {
	av, err := attributevalue.Marshal(toProgressItem(&p))
	if err != nil {
		return fmt.Errorf("marshal progress of %s: %w", id, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                s.table,
		Key:                      itemKey(execPK(id), skExec),
		UpdateExpression:         aws.String("SET #progress = :p"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND #status = :running"),
		ExpressionAttributeNames: map[string]string{"#status": "status", "#progress": "progress"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": av, ":running": &types.AttributeValueMemberS{Value: string(longrun.StatusRunning)},
		},
	})
	if isConditionFailed(err) {
		if _, err := s.GetExecution(ctx, "", id); err != nil {
			return err
		}
		return longrun.Errorf(longrun.ENOTRUNNING, "execution %s has ended", id)
	}
	if err != nil {
		return fmt.Errorf("set progress of %s: %w", id, err)
	}
	return nil
}

// SaveDelivery replaces the execution's webhook record.
func (s *Store) SaveDelivery(ctx context.Context, id string, d longrun.Delivery) error {
	av, err := attributevalue.Marshal(toDeliveryItem(&d))
	if err != nil {
		return fmt.Errorf("marshal delivery of %s: %w", id, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table,
		Key:                       itemKey(execPK(id), skExec),
		UpdateExpression:          aws.String("SET #webhook = :w"),
		ExpressionAttributeNames:  map[string]string{"#webhook": "webhook"},
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":w": av},
	})
	if isConditionFailed(err) {
		return notFound(id)
	}
	if err != nil {
		return fmt.Errorf("save delivery of %s: %w", id, err)
	}
	return nil
}

// SaveDeliveryIf saves d only if the stored delivery is still in prev's
// round and state, and gives ECONFLICT otherwise (ENOTFOUND for an unknown
// execution): a redeliver claims its round this way, so of concurrent
// redelivers of one execution exactly one starts a round. Round 0 is stored
// as an absent attribute (omitempty), so it matches either.
func (s *Store) SaveDeliveryIf(ctx context.Context, id string, prev, d longrun.Delivery) error {
	av, err := attributevalue.Marshal(toDeliveryItem(&d))
	if err != nil {
		return fmt.Errorf("marshal delivery of %s: %w", id, err)
	}
	round := "#webhook.#round = :round"
	if prev.Round == 0 {
		round = "(attribute_not_exists(#webhook.#round) OR " + round + ")"
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                s.table,
		Key:                      itemKey(execPK(id), skExec),
		UpdateExpression:         aws.String("SET #webhook = :w"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND #webhook.#state = :state AND " + round),
		ExpressionAttributeNames: map[string]string{"#webhook": "webhook", "#state": "state", "#round": "round"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":w": av, ":state": &types.AttributeValueMemberS{Value: string(prev.State)}, ":round": numberAV(int64(prev.Round)),
		},
	})
	if isConditionFailed(err) {
		if _, err := s.GetExecution(ctx, "", id); err != nil {
			return err
		}
		return longrun.Errorf(longrun.ECONFLICT, "the delivery of execution %s changed meanwhile", id)
	}
	if err != nil {
		return fmt.Errorf("save delivery of %s: %w", id, err)
	}
	return nil
}

// update builds a SET expression. Every attribute goes through a name
// placeholder: status, output, error and name are DynamoDB reserved words.
type update struct {
	sets   []string
	names  map[string]string
	values map[string]types.AttributeValue
}

func (u *update) set(attr string, av types.AttributeValue) {
	n := strconv.Itoa(len(u.sets))
	u.sets = append(u.sets, "#a"+n+" = :a"+n)
	u.names["#a"+n] = attr
	u.values[":a"+n] = av
}

func (u *update) expression() string {
	return "SET " + strings.Join(u.sets, ", ")
}

func unmarshalExecution(item map[string]types.AttributeValue) (*longrun.Execution, error) {
	var it execItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, fmt.Errorf("unmarshal execution: %w", err)
	}
	return it.execution()
}

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func numberAV(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func notFound(id string) error {
	return longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// reasonIs reports whether the transaction's i-th item failed with code.
func reasonIs(e *types.TransactionCanceledException, i int, code string) bool {
	return i < len(e.CancellationReasons) && aws.ToString(e.CancellationReasons[i].Code) == code
}

func copyExecution(e *longrun.Execution) *longrun.Execution {
	c := *e
	return &c
}
