package awstest

import (
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	miniserver "github.com/truora/minidyn/server"
)

// Minidyn starts a fresh in-memory DynamoDB (minidyn's HTTP server on
// 127.0.0.1:0) for one test and returns a real DynamoDB client for it. The
// server stops when t ends. minidyn has no UpdateTimeToLive; tables with a
// TTL attribute are created without it (expiry is never emulated anyway).
func Minidyn(t testing.TB) *dynamodb.Client {
	t.Helper()
	srv := httptest.NewServer(miniserver.NewServer())
	t.Cleanup(srv.Close)
	return dynamodb.NewFromConfig(Config(srv.URL))
}
