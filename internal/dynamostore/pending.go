package dynamostore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A start is two steps on AWS: the record, then StartExecution. Until the
// second is known to have happened the record carries a start-pending
// marker: the attributes of the sparse index gsi2 (pendpk, pendsk), written
// with the record and removed by ConfirmStarted once StartExecution has
// succeeded (FinishExecution leaves it: a start the sweep fails keeps its
// marker until its webhook is under way, so a crash in between is settled
// again). A record still
// marked well after its start is one whose start Lambda may have died
// between the two steps: internal/settle finds it through PendingStarts and
// settles it.
const (
	attrPendPK   = "pendpk"
	attrPendSK   = "pendsk"
	indexPending = "gsi2"

	// pendingShards spreads the marked records over this many index
	// partitions (by the last hex digit of the id, which is random in a
	// UUIDv7), so the index takes as many writes per second as the table.
	pendingShards = 16
)

// pendingPK is the gsi2 partition of execution id's marker.
func pendingPK(id string) string {
	shard := 0
	if n := len(id); n > 0 {
		if v, err := strconv.ParseUint(id[n-1:], 16, 8); err == nil {
			shard = int(v)
		}
	}
	return pendingPKOf(shard)
}

func pendingPKOf(shard int) string { return "PENDING#" + strconv.Itoa(shard) }

// pendingSK sorts markers by start time: unix milliseconds, zero-padded so
// strings compare as numbers, then the id.
func pendingSK(start time.Time, id string) string {
	return fmt.Sprintf("%015d#%s", millis(start), id)
}

// ConfirmStarted removes execution id's start-pending marker: its state
// machine has started. An unknown id (the record was deleted) is no error.
func (s *Store) ConfirmStarted(ctx context.Context, id string) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                s.table,
		Key:                      itemKey(execPK(id), skExec),
		UpdateExpression:         aws.String("REMOVE #pendpk, #pendsk"),
		ConditionExpression:      aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames: map[string]string{"#pendpk": attrPendPK, "#pendsk": attrPendSK},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("confirm start of %s: %w", id, err)
	}
	return nil
}

// PendingStarts returns the ids of up to limit executions still marked
// start-pending that started before before, oldest first within each
// shard. The index is eventually consistent: a marker removed a moment ago
// may still be returned, so callers read the record before acting.
func (s *Store) PendingStarts(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	bound := &types.AttributeValueMemberS{Value: pendingSK(before, "")}
	for shard := 0; shard < pendingShards && len(ids) < limit; shard++ {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                s.table,
			IndexName:                aws.String(indexPending),
			KeyConditionExpression:   aws.String("#pk = :pk AND #sk < :before"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPendPK, "#sk": attrPendSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: pendingPKOf(shard)}, ":before": bound,
			},
			Limit: aws.Int32(int32(limit - len(ids))),
		})
		if err != nil {
			return nil, fmt.Errorf("query pending starts (shard %d): %w", shard, err)
		}
		for _, item := range out.Items {
			sk, ok := item[attrSK].(*types.AttributeValueMemberS)
			pk, ok2 := item[attrPK].(*types.AttributeValueMemberS)
			if !ok || !ok2 || sk.Value != skExec || len(pk.Value) <= len(prefixExec) {
				continue
			}
			ids = append(ids, pk.Value[len(prefixExec):])
		}
	}
	return ids, nil
}
