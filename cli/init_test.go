package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"go/format"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun/cli"
	"github.com/longrun/longrun/client"
)

// TestInitUserPath does what a user does: `longrun init` into an empty
// directory, the generated go.mod pointed at this checkout, a second job kind
// with an input schema added, the project's own binary built and `dev` run
// from an empty directory on port 0, jobs started over HTTP.
func TestInitUserPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a generated project: not in -short")
	}
	t.Parallel()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "exports")
	var out bytes.Buffer
	if err := cli.Run(context.Background(), nil, []string{"longrun", "init", dir, "--module", "example.com/acme/exports"},
		func(string) string { return "" }, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatalf("longrun init: %v", err)
	}
	if !strings.Contains(out.String(), "make run") {
		t.Errorf("init's output does not say what to run next:\n%s", out.String())
	}
	checkGofmt(t, dir)
	goCmd(t, dir, nil, "mod", "edit", "-replace", "github.com/longrun/longrun="+repo)
	addResizeKind(t, dir)
	addReadmeKind(t, dir, repo)
	// -e: cmd/lambda imports github.com/longrun/longrun/awslambda, which
	// lands with branch issue7; TestInitUserPath/lambda checks it after that.
	goCmd(t, dir, nil, "mod", "tidy", "-e")
	goCmd(t, dir, nil, "vet", ".", "./jobs/...")
	goCmd(t, dir, nil, "test", "./jobs/...")
	bin := filepath.Join(t.TempDir(), "exports")
	goCmd(t, dir, nil, "build", "-o", bin, ".")

	t.Run("cross-compiles for linux/arm64 without cgo", func(t *testing.T) {
		goCmd(t, dir, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64"}, "build", "-o", os.DevNull, ".")
	})

	t.Run("cfn-lint is clean", func(t *testing.T) {
		if _, err := exec.LookPath("cfn-lint"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("cfn-lint is missing (make test needs it)")
			}
			t.Skip("cfn-lint is not installed")
		}
		lint := exec.Command("cfn-lint", "template.yaml")
		lint.Dir = dir
		if b, err := lint.CombinedOutput(); err != nil {
			t.Fatalf("cfn-lint template.yaml: %v\n%s", err, b)
		}
	})

	srv := startProjectDev(t, bin)

	t.Run("default kind runs when job is omitted", func(t *testing.T) {
		id := startHTTP(t, srv, `{"input": {"name": "Ada"}}`, http.StatusAccepted)
		got := waitDone(t, srv, id)
		if got.Status != "SUCCEEDED" || !jsonEqual(got.Output, `{"greeting": "Hello, Ada!"}`) {
			t.Fatalf("execution %s: %s %s %s %s, want SUCCEEDED with the greeting", id, got.Status, got.Output, got.Error, got.Cause)
		}
	})

	t.Run("kinds", func(t *testing.T) {
		id := startHTTP(t, srv, `{"job": "hello", "input": {"name": "Grace"}}`, http.StatusAccepted)
		if got := waitDone(t, srv, id); got.Status != "SUCCEEDED" || !jsonEqual(got.Output, `{"greeting": "Hello, Grace!"}`) {
			t.Errorf("hello: %s %s %s, want SUCCEEDED with the greeting", got.Status, got.Output, got.Cause)
		}
		id = startHTTP(t, srv, `{"job": "count", "input": {"text": "to be or not"}}`, http.StatusAccepted)
		if got := waitDone(t, srv, id); got.Status != "SUCCEEDED" || !jsonEqual(got.Output, `{"words": 4}`) {
			t.Errorf("count (README's example): %s %s %s, want SUCCEEDED with 4 words", got.Status, got.Output, got.Cause)
		}
		id = startHTTP(t, srv, `{"job": "resize", "input": {"width": 640}}`, http.StatusAccepted)
		if got := waitDone(t, srv, id); got.Status != "SUCCEEDED" || !jsonEqual(got.Output, `{"resized": 640}`) {
			t.Errorf("resize: %s %s %s, want SUCCEEDED with {\"resized\": 640}", got.Status, got.Output, got.Cause)
		}
		for _, tt := range []struct{ name, body, want string }{
			{"unknown kind", `{"job": "transcode", "input": {}}`, "resize"},
			{"missing required field", `{"job": "resize", "input": {}}`, "width"},
			{"field breaks its rule", `{"job": "resize", "input": {"width": 0}}`, "width"},
			{"default kind's schema", `{"input": {"name": 42}}`, "name"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				detail := startHTTP(t, srv, tt.body, http.StatusBadRequest)
				if !strings.Contains(detail, tt.want) {
					t.Errorf("400 for %s says %q, want it to name %q", tt.body, detail, tt.want)
				}
			})
		}
	})

	t.Run("lambda", func(t *testing.T) {
		goCmd(t, dir, nil, "mod", "tidy", "-diff")
		test := exec.Command("make", "test")
		test.Dir = dir
		if b, err := test.CombinedOutput(); err != nil {
			t.Fatalf("make test in the generated project: %v\n%s", err, b)
		}
		// As sam build runs it: linux/arm64, CGO_ENABLED=0, lambda.norpc.
		artifacts := t.TempDir()
		build := exec.Command("make", "build-WorkerFunction", "ARTIFACTS_DIR="+artifacts)
		build.Dir = dir
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("make build-WorkerFunction (as sam build runs it): %v\n%s", err, b)
		}
		if _, err := os.Stat(filepath.Join(artifacts, "bootstrap")); err != nil {
			t.Fatalf("make build-WorkerFunction made no bootstrap: %v", err)
		}
	})
}

// addResizeKind adds a job kind with an input schema, as a user would: a
// package of its own and one Handle call in jobs.Registry.
func addResizeKind(t *testing.T, dir string) {
	t.Helper()
	pkg := filepath.Join(dir, "jobs", "resize")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `// Package resize is a second kind of job.
package resize

import (
	"context"
	"encoding/json"

	"github.com/longrun/longrun"
)

// InputSchema requires a positive width.
var InputSchema = json.RawMessage(` + "`" + `{"type": "object", "required": ["width"], "properties": {"width": {"type": "integer", "minimum": 1}}}` + "`" + `)

// Run pretends to resize to input.width.
func Run(ctx context.Context, raw json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
	var in struct{ Width int }
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	report(longrun.Progress{Percent: 100, Message: "resized"})
	return json.Marshal(map[string]int{"resized": in.Width})
}
`
	if err := os.WriteFile(filepath.Join(pkg, "resize.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	editRegistry(t, dir, "resize", `reg.Handle("resize", resize.Run, longrun.JobOptions{InputSchema: resize.InputSchema})`)
}

// editRegistry adds a Handle call and the import of jobs/pkg to the
// generated jobs.Registry, where a user adds them.
func editRegistry(t *testing.T, dir, pkg, handle string) {
	t.Helper()
	reg := filepath.Join(dir, "jobs", "registry.go")
	b, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "\treturn reg\n", "\t"+handle+"\n\treturn reg\n", 1)
	s = strings.Replace(s, "\"example.com/acme/exports/jobs/hello\"", "\"example.com/acme/exports/jobs/hello\"\n\t\"example.com/acme/exports/jobs/"+pkg+"\"", 1)
	if !strings.Contains(s, handle) || !strings.Contains(s, "jobs/"+pkg+"\"") {
		t.Fatalf("jobs/registry.go is not shaped as expected:\n%s", b)
	}
	if err := os.WriteFile(reg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addReadmeKind adds the job of README's "Write your own job" exactly as
// written there, so the example a reader copies is known to build.
func addReadmeKind(t *testing.T, dir, repo string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)cat > jobs/count/count.go <<'GO'\n(.*?)\nGO\n.*?#   (reg\.Handle\("count".*?)\n`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md: no count job in \"Write your own job\"")
	}
	if err := os.MkdirAll(filepath.Join(dir, "jobs", "count"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jobs", "count", "count.go"), m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	editRegistry(t, dir, "count", string(m[2]))
}

// checkGofmt: the generated Go files are as gofmt writes them.
func checkGofmt(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if got, err := format.Source(src); err != nil || !bytes.Equal(got, src) {
			t.Errorf("%s is not gofmt-clean (%v)", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func goCmd(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

type projectServer struct {
	url, key string
	client   *client.Client
}

var (
	bannerURLLine = regexp.MustCompile(`LONGRUN_URL=(\S+)`)
	bannerKeyLine = regexp.MustCompile(`LONGRUN_API_KEY=(\S+)`)
)

// startProjectDev runs the project's binary as `dev` in an empty directory:
// the template and state machines it follows are the ones built into it.
func startProjectDev(t *testing.T, bin string) *projectServer {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "LONGRUN_DATA_DIR=") // the default data dir, in the empty directory
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("dev did not stop cleanly: %v\n%s", err, stderr.String())
		}
	})
	srv := &projectServer{}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := bannerURLLine.FindStringSubmatch(sc.Text()); m != nil {
				srv.url = m[1]
			}
			if m := bannerKeyLine.FindStringSubmatch(sc.Text()); m != nil {
				srv.key = m[1]
				close(found)
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(60 * time.Second):
		t.Fatalf("no banner from the project's dev within 60 s\n%s", stderr.String())
	}
	srv.client = client.New(srv.url, srv.key)
	return srv
}

// startHTTP POSTs body to /start-execution and checks the status: it
// returns the execution id of a 202, the problem's detail otherwise.
func startHTTP(t *testing.T, srv *projectServer, body string, want int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.url+"/start-execution", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST /start-execution %s: %d %s, want %d", body, resp.StatusCode, b, want)
	}
	var r struct {
		ExecutionID string `json:"executionId"`
		Detail      string `json:"detail"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("start answer %s: %v", b, err)
	}
	if want == http.StatusAccepted {
		return r.ExecutionID
	}
	return r.Detail
}

func waitDone(t *testing.T, srv *projectServer, id string) *client.Execution {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := srv.client.Wait(ctx, id, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("wait for %s: %v", id, err)
	}
	return e
}

func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && jsonString(a) == jsonString(b)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
