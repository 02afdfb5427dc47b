package dynamostore

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/longrun/longrun"
)

// ListExecutions queries gsi1 for the tenant's executions, newest first. A
// status or job filter is applied by DynamoDB after reading, so one page may take
// several queries; the next token is the key of the last execution returned,
// so no execution is skipped or repeated whatever the filter left behind.
func (s *Store) ListExecutions(ctx context.Context, tenant string, q longrun.ListQuery) (*longrun.ExecutionPage, error) {
	limit := q.Limit
	if limit <= 0 || limit > longrun.MaxListLimit {
		limit = longrun.MaxListLimit
	}
	start, err := decodeToken(q.NextToken, tenant)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		TableName:                 s.table,
		IndexName:                 aws.String(indexGSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :tenant"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":tenant": &types.AttributeValueMemberS{Value: tenantGSI1PK(tenant)}},
		ScanIndexForward:          aws.Bool(false),
		ExclusiveStartKey:         start,
		// One more than a page: if it is there, there is a next page.
		Limit: aws.Int32(int32(limit) + 1),
	}
	var filters []string
	names := map[string]string{}
	if q.Status != "" {
		filters = append(filters, "#status = :status")
		names["#status"] = "status"
		in.ExpressionAttributeValues[":status"] = &types.AttributeValueMemberS{Value: string(q.Status)}
	}
	if q.Job != "" {
		filters = append(filters, "#job = :job")
		names["#job"] = "job"
		in.ExpressionAttributeValues[":job"] = &types.AttributeValueMemberS{Value: q.Job}
	}
	if len(filters) > 0 {
		in.FilterExpression = aws.String(strings.Join(filters, " AND "))
		in.ExpressionAttributeNames = names
	}

	page := &longrun.ExecutionPage{}
	var last map[string]types.AttributeValue
	for queries := 1; ; queries++ {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list executions of %s: %w", tenant, err)
		}
		for _, item := range out.Items {
			if len(page.Executions) == limit {
				page.NextToken = encodeToken(last, tenant)
				return page, nil
			}
			e, err := unmarshalExecution(item)
			if err != nil {
				return nil, err
			}
			// gsi1 projects only what a list returns (table.go); the tenant
			// is the one queried.
			e.Tenant = tenant
			page.Executions = append(page.Executions, *e)
			last = item
		}
		if out.LastEvaluatedKey == nil {
			return page, nil
		}
		if queries == maxQueriesPerPage {
			// A filter that matches little would otherwise read the
			// tenant's whole history in one request: answer with what was
			// found and where to go on, as DynamoDB itself does.
			page.NextToken = encodeToken(out.LastEvaluatedKey, tenant)
			return page, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// maxQueriesPerPage bounds the work of one ListExecutions: a page may then
// hold fewer executions than asked for, with a NextToken to go on.
const maxQueriesPerPage = 10

// pageKey is a next token's content: the table and index key of the last
// execution of a page.
type pageKey struct {
	PK     string `json:"pk"`
	SK     string `json:"sk"`
	GSI1PK string `json:"gsi1pk"`
	GSI1SK string `json:"gsi1sk"`
}

// encodeToken makes the next token from an item or a LastEvaluatedKey. An
// execution's four key attributes all follow from its id (pk = gsi1sk =
// EXEC#<id>, sk = EXEC, gsi1pk = TENANT#<tenant>), so the key is rebuilt from
// whichever of them the item carries: AWS returns all four in a GSI query's
// LastEvaluatedKey, emulators sometimes fewer.
func encodeToken(item map[string]types.AttributeValue, tenant string) string {
	str := func(name string) string {
		v, _ := item[name].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	pk := cmp.Or(str(attrPK), str(attrGSI1SK))
	b, _ := json.Marshal(pageKey{PK: pk, SK: skExec, GSI1PK: tenantGSI1PK(tenant), GSI1SK: pk})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken checks that token is one encodeToken made for tenant, so a
// forged or foreign token is a client error, never a DynamoDB one.
func decodeToken(token, tenant string) (map[string]types.AttributeValue, error) {
	if token == "" {
		return nil, nil
	}
	bad := longrun.Errorf(longrun.EINVALID, "nextToken is not one this API returned; start again without it")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, bad
	}
	var k pageKey
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, bad
	}
	id, ok := strings.CutPrefix(k.PK, prefixExec)
	if !ok || id == "" || k.SK != skExec || k.GSI1PK != tenantGSI1PK(tenant) || k.GSI1SK != k.PK {
		return nil, bad
	}
	return map[string]types.AttributeValue{
		attrPK:     &types.AttributeValueMemberS{Value: k.PK},
		attrSK:     &types.AttributeValueMemberS{Value: k.SK},
		attrGSI1PK: &types.AttributeValueMemberS{Value: k.GSI1PK},
		attrGSI1SK: &types.AttributeValueMemberS{Value: k.GSI1SK},
	}, nil
}
