package dynamostore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/longrun/longrun/internal/awstest"
	"github.com/longrun/longrun/internal/dynamostore"
	"github.com/longrun/longrun/internal/storetest"
)

var (
	kumoTableOnce sync.Once
	kumoTable     string
	kumoTableErr  error
)

// kumoStore returns a store on the one table this test binary creates in
// kumo: the suite's cases use distinct tenants, so they can share it.
func kumoStore(t *testing.T) (*dynamostore.Store, *dynamodb.Client) {
	t.Helper()
	client := awstest.Kumo(t).DynamoDB()
	kumoTableOnce.Do(func() {
		kumoTable = awstest.UniqueName("longrun")
		kumoTableErr = dynamostore.CreateTable(context.Background(), client, kumoTable, "")
	})
	if kumoTableErr != nil {
		t.Fatalf("create table in kumo: %v", kumoTableErr)
	}
	return dynamostore.New(client, dynamostore.Config{TableName: kumoTable}), client
}

var (
	motoTableOnce sync.Once
	motoTable     string
	motoTableErr  error
)

// motoStore returns a store on the one table this test binary creates in
// moto, whose DynamoDB validates requests more strictly than kumo's.
func motoStore(t *testing.T) (*dynamostore.Store, *dynamodb.Client) {
	t.Helper()
	client := awstest.Moto(t).DynamoDB()
	motoTableOnce.Do(func() {
		motoTable = awstest.UniqueName("longrun")
		motoTableErr = dynamostore.CreateTable(context.Background(), client, motoTable, "")
	})
	if motoTableErr != nil {
		t.Fatalf("create table in moto: %v", motoTableErr)
	}
	return dynamostore.New(client, dynamostore.Config{TableName: motoTable}), client
}

// minidynStore returns a store on a fresh minidyn. minidyn has no
// UpdateTimeToLive, so the table is made from TableInput alone.
func minidynStore(t *testing.T) (*dynamostore.Store, *dynamodb.Client) {
	t.Helper()
	client := awstest.Minidyn(t)
	if _, err := client.CreateTable(context.Background(), dynamostore.TableInput("longrun")); err != nil {
		t.Fatalf("create table in minidyn: %v", err)
	}
	return dynamostore.New(client, dynamostore.Config{TableName: "longrun"}), client
}

func TestConformanceKumo(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s, _ := kumoStore(t)
		return storetest.Harness{Executions: s, Tenants: s}
	})
}

func TestConformanceMinidyn(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s, _ := minidynStore(t)
		return storetest.Harness{Executions: s, Tenants: s}
	})
}

func TestConformanceMoto(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s, _ := motoStore(t)
		return storetest.Harness{Executions: s, Tenants: s}
	})
}
