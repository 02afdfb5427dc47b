package awstest

import (
	"bufio"
	"context"
	"crypto/rand"
	_ "embed" // the moto launcher
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// motoLauncher is the Python program that runs moto's server for the tests
// (see motoserver.py for what it adds to `moto_server`).
//
//go:embed motoserver.py
var motoLauncher string

// MotoPythonEnv names an environment variable that, when set, is the one
// Python interpreter tried for moto (see Moto).
const MotoPythonEnv = "AWSTEST_MOTO_PYTHON"

// motoStartTimeout bounds moto's start (importing moto takes seconds on a
// busy machine).
const motoStartTimeout = 60 * time.Second

// motoRole is the IAM role every Lambda function in moto runs as: moto
// refuses a function whose role does not exist.
const motoRole = "awstest-lambda"

// MotoServer is the process-wide moto server (see Moto).
type MotoServer struct {
	// URL is moto's base URL, http://127.0.0.1:<port>.
	URL string
	// Version is moto's version, e.g. "5.2.1".
	Version string

	lambdaURL string // where moto forwards Lambda invocations
	stdin     io.WriteCloser
	log       *tail // moto's stderr, for failure messages

	mu        sync.Mutex
	functions map[string]*motoFunction
}

type motoFunction struct {
	fn      Function
	timeout time.Duration
	h       lambda.Handler
	ctx     context.Context // ends when the test that served it ends
}

var (
	motoOnce   sync.Once
	motoServer *MotoServer
	motoErr    error
)

// Moto returns the moto server of this test binary, starting it on first
// use: a Python process (moto 5.2.1 in this machine image's Python) on
// 127.0.0.1 port 0 running Step Functions with its definitions executed and
// Lambda without Docker, its Lambda invocations answered in this process
// (ServeFunction). The process ends when the test binary does: it exits when
// its stdin, a pipe from this process, closes.
//
// moto is looked for in the interpreter named by $AWSTEST_MOTO_PYTHON alone
// if set; else in python3 and python on PATH, the interpreter of a
// moto_server script on PATH, and every pyenv Python under $PYENV_ROOT and
// ~/.pyenv (where the image installs it, even when pyenv's shims are not on
// PATH). If none has moto, the test fails when CI is set (make test sets
// it) and is skipped, saying so, otherwise.
func Moto(t testing.TB) *MotoServer {
	t.Helper()
	motoOnce.Do(func() { motoServer, motoErr = startMoto() })
	if motoErr != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("awstest: moto is not available, so this test cannot run (CI=true makes this a failure): %v", motoErr)
		}
		t.Fatalf("awstest: %v", motoErr)
	}
	return motoServer
}

func startMoto() (*MotoServer, error) {
	m := &MotoServer{functions: map[string]*motoFunction{}, log: &tail{max: 64 << 10}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for moto's Lambda invocations: %w", err)
	}
	m.lambdaURL = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(m.serveInvocation), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // lives as long as the process, like moto

	pythons := motoPythons()
	if len(pythons) == 0 {
		return nil, errors.New("no Python interpreter found for moto (python3 on PATH, $PYENV_ROOT or ~/.pyenv); moto 5.2.1 ships in this machine image's Python")
	}
	var tried []string
	for _, py := range pythons {
		err := m.start(py)
		if err == nil {
			return m, m.createRole()
		}
		tried = append(tried, fmt.Sprintf("%s: %v", py, err))
	}
	return nil, fmt.Errorf("cannot start moto with any Python here; moto 5.2.1 ships in this machine image's Python "+
		"(pip install 'moto[server]' where PyPI is reachable, or set %s to the interpreter that has it):\n\t%s",
		MotoPythonEnv, strings.Join(tried, "\n\t"))
}

// start runs the launcher with python and waits for its port.
func (m *MotoServer) start(python string) error {
	cmd := exec.Command(python, "-c", motoLauncher)
	cmd.Env = append(os.Environ(),
		"AWSTEST_LAMBDA_URL="+m.lambdaURL,
		"MOTO_ACCOUNT_ID="+AccountID, // the account kumo uses too
		"PYTHONUNBUFFERED=1",
	)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = m.log
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case line, ok := <-lines:
		var port int
		if ok {
			if _, err := fmt.Sscanf(line, "awstest-moto-port %d %s", &port, &m.Version); err == nil {
				m.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
				m.stdin = stdin // held open: moto exits when it closes
				return nil
			}
		}
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		return fmt.Errorf("moto did not start: %q %s", line, m.log.String())
	case <-time.After(motoStartTimeout):
		_ = cmd.Process.Kill()
		return fmt.Errorf("moto did not start within %s: %s", motoStartTimeout, m.log.String())
	case err := <-exited:
		return fmt.Errorf("moto exited at start (%v): %s", err, m.log.String())
	}
}

// motoPythons lists the interpreters to try, in order, without repeats.
func motoPythons() []string {
	if py := os.Getenv(MotoPythonEnv); py != "" {
		return []string{py}
	}
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, name := range []string{"python3", "python"} {
		if p, err := exec.LookPath(name); err == nil {
			add(p)
		}
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		add(scriptInterpreter(p)) // pip's script names its Python; pyenv's shim does not
	}
	var roots []string
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		roots = append(roots, r)
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, ".pyenv"))
	}
	for _, r := range roots {
		matches, _ := filepath.Glob(filepath.Join(r, "versions", "*", "bin", "python3"))
		for _, p := range matches {
			add(p)
		}
	}
	return out
}

// scriptInterpreter returns the Python named by path's #! line, or "".
func scriptInterpreter(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 512)).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 || !strings.HasPrefix(filepath.Base(fields[0]), "python") {
		return ""
	}
	return fields[0]
}

// Config returns an aws.Config for moto (see Config).
func (m *MotoServer) Config() aws.Config { return Config(m.URL) }

// SQS returns an SQS client for moto.
func (m *MotoServer) SQS() *sqs.Client { return sqs.NewFromConfig(m.Config()) }

// DynamoDB returns a DynamoDB client for moto.
func (m *MotoServer) DynamoDB() *dynamodb.Client { return dynamodb.NewFromConfig(m.Config()) }

// SFN returns a Step Functions client for moto.
func (m *MotoServer) SFN() *sfn.Client { return sfn.NewFromConfig(m.Config()) }

// Name is "moto".
func (m *MotoServer) Name() string { return "moto" }

// ServeIntegrations does nothing: moto's Step Functions calls SQS and Lambda
// at its own port.
func (m *MotoServer) ServeIntegrations(testing.TB) {}

// AdaptDefinition returns definition unchanged: moto runs
// statemachine/*.asl.json as they are.
func (m *MotoServer) AdaptDefinition(definition string, _ int) (string, error) {
	return definition, nil
}

// CreateQueue creates an SQS queue in moto (see KumoServer.CreateQueue).
func (m *MotoServer) CreateQueue(t testing.TB, name string, attributes map[string]string) Queue {
	t.Helper()
	return createQueue(t, m.SQS(), name, attributes)
}

// CreateStateMachine creates a STANDARD state machine in moto and returns
// its ARN; it is deleted when t ends.
func (m *MotoServer) CreateStateMachine(t testing.TB, name, definition string) string {
	t.Helper()
	return createStateMachine(t, m.SFN(), name, definition)
}

// ServeFunction creates the Lambda function name in moto and answers its
// invocations with h until t ends: moto forwards each invocation to this
// process (see motoserver.py), which runs h with a deadline of timeout and
// a lambdacontext.LambdaContext, as KumoServer.ServeFunction does. An error
// from h reaches the caller as a function error (X-Amz-Function-Error).
func (m *MotoServer) ServeFunction(t testing.TB, name string, timeout time.Duration, h lambda.Handler) Function {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"FunctionName": name,
		"Runtime":      "provided.al2023",
		"Handler":      "bootstrap",
		"Role":         "arn:aws:iam::" + AccountID + ":role/" + motoRole,
		"Code":         map[string]any{"ZipFile": []byte("moto runs no code; awstest answers its invocations")},
		"Timeout":      int(timeout / time.Second),
	})
	resp, err := m.request(context.Background(), "lambda", http.MethodPost, "/2015-03-31/functions", "application/json", body)
	if err != nil {
		t.Fatalf("awstest: create function %s in moto: %v", name, err)
	}
	var out struct{ FunctionArn string }
	if err := json.Unmarshal(resp, &out); err != nil || out.FunctionArn == "" {
		t.Fatalf("awstest: create function %s in moto: unexpected answer %s (%v)", name, resp, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &motoFunction{fn: Function{Name: name, ARN: out.FunctionArn}, timeout: timeout, h: h, ctx: ctx}
	m.mu.Lock()
	m.functions[name] = f
	m.mu.Unlock()
	t.Cleanup(func() {
		cancel()
		m.mu.Lock()
		delete(m.functions, name)
		m.mu.Unlock()
		_, _ = m.request(context.Background(), "lambda", http.MethodDelete, "/2015-03-31/functions/"+name, "application/json", nil)
	})
	return f.fn
}

// serveInvocation answers one Lambda invocation forwarded by moto.
func (m *MotoServer) serveInvocation(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	m.mu.Lock()
	f := m.functions[name]
	m.mu.Unlock()
	payload, err := io.ReadAll(r.Body)
	if f == nil || err != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_ = json.NewEncoder(w).Encode(map[string]string{"errorType": "ResourceNotFoundException", "errorMessage": "awstest serves no function " + name})
		return
	}
	id := newRequestID()
	run := func() ([]byte, error) {
		return invoke(f.ctx, f.fn, id, time.Now().Add(f.timeout), payload, f.h)
	}
	if r.Header.Get("X-Amz-Invocation-Type") == "Event" {
		go func() { _, _ = run() }()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	out, err := run()
	if err != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_ = json.NewEncoder(w).Encode(map[string]string{"errorMessage": err.Error(), "errorType": errorType(err)})
		return
	}
	_, _ = w.Write(out)
}

// createRole creates motoRole, which every function runs as.
func (m *MotoServer) createRole() error {
	form := url.Values{
		"Action":                   {"CreateRole"},
		"Version":                  {"2010-05-08"},
		"RoleName":                 {motoRole},
		"AssumeRolePolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`},
	}
	_, err := m.request(context.Background(), "iam", http.MethodPost, "/", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		return fmt.Errorf("create IAM role %s in moto: %w", motoRole, err)
	}
	return nil
}

// request sends one request to moto's service API (see serviceRequest).
func (m *MotoServer) request(ctx context.Context, service, method, path, contentType string, body []byte) ([]byte, error) {
	return serviceRequest(ctx, m.URL, service, method, path, contentType, body)
}

// Log returns the end of moto's stderr (tracebacks of its 500s).
func (m *MotoServer) Log() string { return m.log.String() }

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
