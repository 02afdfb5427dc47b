package awstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sivchari/kumo"
)

// IntegrationsAddr is where kumo's Step Functions engine sends its SQS and
// Lambda calls (it dials http://localhost:4566, fixed in kumo).
const IntegrationsAddr = "127.0.0.1:4566"

// IntegrationsLockWait bounds how long ServeIntegrations waits for another
// test binary to release port 4566.
var IntegrationsLockWait = 5 * time.Minute

// KumoServer is the process-wide kumo emulator.
type KumoServer struct {
	// URL is kumo's base URL, http://127.0.0.1:<port>.
	URL string

	integrations     sync.Once
	integrationsErr  error
	integrationsLock *os.File // held, never read: see lockIntegrations
}

var (
	kumoOnce   sync.Once
	kumoServer *KumoServer
)

// Kumo returns the kumo emulator of this test binary, starting it on first
// use. It is never closed: every test in the binary shares it, and it ends
// with the process.
func Kumo(t testing.TB) *KumoServer {
	t.Helper()
	kumoOnce.Do(func() {
		srv := kumo.NewServer()
		kumoServer = &KumoServer{URL: srv.URL}
	})
	return kumoServer
}

// Config returns an aws.Config for kumo: static credentials, Region, and the
// kumo URL as the base endpoint of every client built from it.
func (k *KumoServer) Config() aws.Config {
	return Config(k.URL)
}

// Config returns an aws.Config whose clients send every request to endpoint
// (an emulator on loopback) with static test credentials. It reads nothing
// from the environment or ~/.aws, so no real account can be reached.
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// SQS returns an SQS client for kumo.
func (k *KumoServer) SQS() *sqs.Client { return sqs.NewFromConfig(k.Config()) }

// DynamoDB returns a DynamoDB client for kumo.
func (k *KumoServer) DynamoDB() *dynamodb.Client { return dynamodb.NewFromConfig(k.Config()) }

// SFN returns a Step Functions client for kumo.
func (k *KumoServer) SFN() *sfn.Client { return sfn.NewFromConfig(k.Config()) }

// ServeIntegrations makes http://localhost:4566 reach this kumo, so state
// machine executions can call SQS and Lambda (see the package doc). It is
// idempotent within the binary; the first call may wait for another test
// binary to finish with the port. It fails t if the port cannot be had.
func (k *KumoServer) ServeIntegrations(t testing.TB) {
	t.Helper()
	k.integrations.Do(func() {
		k.integrationsErr = k.serveIntegrations()
	})
	if k.integrationsErr != nil {
		t.Fatalf("awstest: %v", k.integrationsErr)
	}
}

func (k *KumoServer) serveIntegrations() error {
	lock, err := lockIntegrations(IntegrationsLockWait)
	if err != nil {
		return err
	}
	k.integrationsLock = lock
	target, err := url.Parse(k.URL)
	if err != nil {
		return fmt.Errorf("parse kumo URL %q: %w", k.URL, err)
	}
	ln, err := net.Listen("tcp", IntegrationsAddr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("kumo's Step Functions engine calls %s, but that address is in use by a process outside awstest "+
				"(a kumo, LocalStack or SAM local started by hand?); stop it and run the tests again: %w", IntegrationsAddr, err)
		}
		return fmt.Errorf("listen on %s for kumo's Step Functions integrations: %w", IntegrationsAddr, err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// Long polls (ReceiveMessage, Runtime API next) must stream through.
	proxy.FlushInterval = -1
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	// The proxy lives as long as the process, like kumo itself.
	go func() { _ = srv.Serve(ln) }()
	return waitListening(context.Background(), IntegrationsAddr)
}

// waitListening returns once addr accepts connections.
func waitListening(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proxy on %s does not accept connections: %w", addr, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Name is "kumo".
func (k *KumoServer) Name() string { return "kumo" }

// AdaptDefinition is FixHeartbeatPath: kumo panics on a heartbeat for a
// task with HeartbeatSecondsPath.
func (k *KumoServer) AdaptDefinition(definition string, heartbeat int) (string, error) {
	return FixHeartbeatPath(definition, heartbeat)
}
