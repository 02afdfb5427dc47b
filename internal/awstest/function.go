package awstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Function is a Lambda function in kumo answered in-process.
type Function struct {
	Name string
	ARN  string
}

// functionPollers is how many invocations of one function run at once, as
// concurrent Lambda instances would.
const functionPollers = 4

// pingPayload is answered by the poller itself: ServeFunction invokes it
// until it comes back, which proves kumo routes the function's invocations
// to the Runtime API pollers.
const pingPayload = `{"awstest":"ping"}`

// ServeFunction creates the Lambda function name in kumo and answers its
// invocations with h until t ends (see the package doc). timeout is the
// function's Timeout; kumo gives each invocation that long, and h gets it as
// its context deadline. The context h gets also carries a
// lambdacontext.LambdaContext with the request id and function ARN.
func (k *KumoServer) ServeFunction(t testing.TB, name string, timeout time.Duration, h lambda.Handler) Function {
	t.Helper()
	fn := Function{Name: name, ARN: k.CreateFunction(t, name, timeout)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range functionPollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.pollRuntime(ctx, t, fn, h)
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	if err := k.waitRouted(ctx, name); err != nil {
		t.Fatalf("awstest: function %s: %v", name, err)
	}
	return fn
}

// waitRouted invokes name with pingPayload until a poller answers it.
func (k *KumoServer) waitRouted(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	path := "/2015-03-31/functions/" + name + "/invocations"
	for {
		resp, err := k.lambdaRequest(ctx, http.MethodPost, path, []byte(pingPayload))
		if err == nil && string(resp) == pingPayload {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kumo did not route invocations to the Runtime API poller: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pollRuntime is one Lambda instance: next, invoke, respond, until ctx ends.
func (k *KumoServer) pollRuntime(ctx context.Context, t testing.TB, fn Function, h lambda.Handler) {
	base := k.URL + "/_runtime/" + fn.Name + "/2018-06-01/runtime/invocation/"
	for ctx.Err() == nil {
		id, deadline, payload, err := runtimeNext(ctx, base+"next")
		if err != nil {
			if ctx.Err() == nil {
				t.Logf("awstest: function %s: runtime next: %v", fn.Name, err)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			continue
		}
		var out []byte
		var invokeErr error
		if string(payload) == pingPayload {
			out = payload
		} else {
			out, invokeErr = invoke(ctx, fn, id, deadline, payload, h)
		}
		if invokeErr != nil {
			body, _ := json.Marshal(map[string]string{"errorMessage": invokeErr.Error(), "errorType": errorType(invokeErr)})
			err = runtimePost(ctx, base+id+"/error", body)
		} else {
			err = runtimePost(ctx, base+id+"/response", out)
		}
		if err != nil && ctx.Err() == nil {
			t.Logf("awstest: function %s: post result of %s: %v", fn.Name, id, err)
		}
	}
}

// invoke runs h for one invocation, turning a panic into an error as the
// Lambda runtime does.
func invoke(ctx context.Context, fn Function, id string, deadline time.Time, payload []byte, h lambda.Handler) (out []byte, err error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id, InvokedFunctionArn: fn.ARN})
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	out, err = h.Invoke(ctx, payload)
	// aws-lambda-go's handlers encode into a buffer they reuse on the next
	// invocation; the answer is posted after this returns, so it gets a copy.
	return bytes.Clone(out), err
}

// errorType names err's type the way aws-lambda-go reports errorType.
func errorType(err error) string {
	name := fmt.Sprintf("%T", err)
	name = strings.TrimPrefix(name, "*")
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[i+1:]
	}
	return name
}

func runtimeNext(ctx context.Context, url string) (id string, deadline time.Time, payload []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	defer resp.Body.Close()
	payload, err = io.ReadAll(resp.Body)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", time.Time{}, nil, fmt.Errorf("%s: %s", resp.Status, payload)
	}
	id = resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	ms, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	if err != nil || id == "" {
		return "", time.Time{}, nil, fmt.Errorf("runtime next answered without request id or deadline: %v", resp.Header)
	}
	return id, time.UnixMilli(ms), payload, nil
}

func runtimePost(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
