package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/longrun/longrun"
)

// PutTenant creates or replaces the tenant item.
func (s *Store) PutTenant(ctx context.Context, t *longrun.Tenant) error {
	it := tenantItem{PK: prefixTenant + t.ID, SK: skTenant, ID: t.ID, Secrets: []secretItem{}}
	for _, sec := range t.Secrets {
		it.Secrets = append(it.Secrets, secretItem{Value: sec.Value, CreatedAt: millis(sec.CreatedAt), ExpiresAt: millis(sec.ExpiresAt)})
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("marshal tenant %s: %w", t.ID, err)
	}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table, Item: item}); err != nil {
		return fmt.Errorf("put tenant %s: %w", t.ID, err)
	}
	return nil
}

// GetTenant reads the tenant item.
func (s *Store) GetTenant(ctx context.Context, id string) (*longrun.Tenant, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: itemKey(prefixTenant+id, skTenant), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "tenant %s not found", id)
	}
	var it tenantItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return nil, fmt.Errorf("unmarshal tenant %s: %w", id, err)
	}
	t := &longrun.Tenant{ID: it.ID}
	for _, sec := range it.Secrets {
		t.Secrets = append(t.Secrets, longrun.WebhookSecret{
			Value: sec.Value, CreatedAt: fromMillis(sec.CreatedAt), ExpiresAt: fromMillis(sec.ExpiresAt),
		})
	}
	return t, nil
}

// PutAPIKey maps keyHash to tenant.
func (s *Store) PutAPIKey(ctx context.Context, keyHash, tenant string) error {
	item, err := attributevalue.MarshalMap(keyItem{PK: prefixKey + keyHash, SK: skKey, Tenant: tenant})
	if err != nil {
		return fmt.Errorf("marshal API key of %s: %w", tenant, err)
	}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table, Item: item}); err != nil {
		return fmt.Errorf("put API key of %s: %w", tenant, err)
	}
	return nil
}

// DeleteAPIKey revokes keyHash; an unknown one gives ENOTFOUND.
func (s *Store) DeleteAPIKey(ctx context.Context, keyHash string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table, Key: itemKey(prefixKey+keyHash, skKey),
		ConditionExpression: aws.String("attribute_exists(pk)"),
	})
	if isConditionFailed(err) {
		return longrun.Errorf(longrun.ENOTFOUND, "unknown API key")
	}
	if err != nil {
		return fmt.Errorf("delete API key: %w", err)
	}
	return nil
}

// TenantForKey returns the tenant that owns keyHash. The read is strongly
// consistent, so a key works the moment `longrun keys create` returns.
func (s *Store) TenantForKey(ctx context.Context, keyHash string) (string, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: itemKey(prefixKey+keyHash, skKey), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("get API key: %w", err)
	}
	if out.Item == nil {
		return "", longrun.Errorf(longrun.ENOTFOUND, "unknown API key")
	}
	var it keyItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return "", fmt.Errorf("unmarshal API key: %w", err)
	}
	return it.Tenant, nil
}
