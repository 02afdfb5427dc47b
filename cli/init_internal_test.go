package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/template"
)

func runInit(t *testing.T, args ...string) error {
	t.Helper()
	return run(context.Background(), append([]string{"longrun", "init"}, args...), func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard)
}

// TestInitNeverOverwrites: a non-empty directory needs --force, and even
// then an existing file is never replaced and a refusal writes nothing.
func TestInitNeverOverwrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing map[string]string // files in DIR before init
		force    bool
		wantErr  string // "" for success
	}{
		{name: "missing dir"},
		{name: "empty dir", existing: map[string]string{}},
		{name: "non-empty without --force", existing: map[string]string{"notes.txt": "mine"}, wantErr: "not empty"},
		{name: "non-empty with --force", existing: map[string]string{"notes.txt": "mine", ".git/HEAD": "ref"}, force: true},
		{name: "--force never overwrites", existing: map[string]string{"README.md": "mine", "jobs/registry.go": "mine"}, force: true, wantErr: "README.md, jobs/registry.go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "proj")
			for name, body := range tt.existing {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.existing != nil {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{dir, "--module", "example.com/proj"}
			if tt.force {
				args = append(args, "--force")
			}
			err := runInit(t, args...)
			for name, body := range tt.existing {
				if got, rerr := os.ReadFile(filepath.Join(dir, name)); rerr != nil || string(got) != body {
					t.Errorf("%s changed: %q, %v", name, got, rerr)
				}
			}
			_, statErr := os.Stat(filepath.Join(dir, "main.go"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("init = %v, want an error naming %q", err, tt.wantErr)
				}
				if statErr == nil {
					t.Error("a refused init wrote main.go")
				}
				return
			}
			if err != nil {
				t.Fatalf("init: %v", err)
			}
			if statErr != nil {
				t.Errorf("init wrote no main.go: %v", statErr)
			}
		})
	}
}

func TestInitArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no dir", args: []string{"--module", "example.com/x"}, wantErr: "one DIR"},
		{name: "no module", args: []string{t.TempDir()}, wantErr: "module"},
		{name: "bad module", args: []string{t.TempDir(), "--module", "Not A Path"}, wantErr: "--module"},
		{name: "replace without go.mod", args: []string{filepath.Join(t.TempDir(), "p"), "--module", "example.com/x", "--replace", t.TempDir()}, wantErr: "--replace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := runInit(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("init %v = %v, want an error naming %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// TestDeriveTemplate: the project's template has longrun's resources and
// parameters but the example's, and every function says which it is.
func TestDeriveTemplate(t *testing.T) {
	t.Parallel()
	src, err := template.LoadFS(longrun.SAMFiles, "template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := longrun.SAMFiles.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := deriveTemplate(data, "exports")
	if err != nil {
		t.Fatal(err)
	}
	got, err := template.Parse(out)
	if err != nil {
		t.Fatalf("the derived template does not parse: %v\n%s", err, out)
	}
	if len(got.Resources) != len(src.Resources) {
		t.Errorf("derived template has %d resources, longrun's %d", len(got.Resources), len(src.Resources))
	}
	for id, r := range src.Resources {
		if got.Resources[id].Type != r.Type {
			t.Errorf("resource %s: type %q, want %q", id, got.Resources[id].Type, r.Type)
		}
	}
	if _, ok := got.Parameters["RamenTimerSeconds"]; ok {
		t.Error("the derived template keeps the example's RamenTimerSeconds")
	}
	if len(got.Parameters) != len(src.Parameters)-1 {
		t.Errorf("derived template has %d parameters, want longrun's %d but one", len(got.Parameters), len(src.Parameters))
	}
	for _, id := range got.ResourcesOfType("AWS::Serverless::Function") {
		vars := got.Resources[id].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		want := strings.ToLower(strings.TrimSuffix(id, "Function"))
		if vars["LONGRUN_FUNCTION"] != want {
			t.Errorf("%s: LONGRUN_FUNCTION = %v, want %s", id, vars["LONGRUN_FUNCTION"], want)
		}
		if _, ok := vars["LONGRUN_RAMEN_TIMER_SECONDS"]; ok {
			t.Errorf("%s keeps LONGRUN_RAMEN_TIMER_SECONDS", id)
		}
	}
	if !bytes.Contains(out, []byte("!GetAtt Table.Arn")) {
		t.Error("CloudFormation tags did not survive")
	}
}

// TestDevDataDirFromAnywhere: keys create makes a missing data dir; dev
// without --template runs the built-in app and prints its data dir; a key
// made in another data dir gets a 401 that says where the server looks.
func TestDevDataDirFromAnywhere(t *testing.T) {
	t.Parallel()
	other := filepath.Join(t.TempDir(), "not", "yet")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"longrun", "keys", "create", "--tenant", "acme"},
		func(k string) string { return map[string]string{"LONGRUN_DATA_DIR": other}[k] }, nil, &out, io.Discard); err != nil {
		t.Fatalf("keys create in a missing data dir: %v", err)
	}
	var k struct{ APIKey string }
	if err := json.Unmarshal(out.Bytes(), &k); err != nil {
		t.Fatal(err)
	}

	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"longrun", "dev", "--addr", "127.0.0.1:0", "--data-dir", data, "--log-level", "warn"},
			func(string) string { return "" }, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	var banner strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() && !strings.Contains(sc.Text(), "curl") {
		banner.WriteString(sc.Text() + "\n")
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	for _, want := range []string{"data dir: " + data, "template: built into this binary", "jobs:     ramen"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	url := bannerURL.FindStringSubmatch(banner.String())
	if url == nil {
		t.Fatalf("no URL in the banner:\n%s", banner.String())
	}
	req, _ := http.NewRequest(http.MethodGet, url[1]+"/executions", nil)
	req.Header.Set("Authorization", "Bearer "+k.APIKey)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), data) || !strings.Contains(string(body), "keys create") {
		t.Fatalf("a key of another data dir: %d %s, want a 401 naming %s", resp.StatusCode, body, data)
	}
}

func TestProjectName(t *testing.T) {
	t.Parallel()
	for module, want := range map[string]string{
		"example.com/exports":            "exports",
		"github.com/acme/Video_Tools/v2": "video-tools",
		"example.com/9lives":             "jobs-9lives",
		"exports":                        "exports",
	} {
		if got := projectName(module); got != want {
			t.Errorf("projectName(%q) = %q, want %q", module, got, want)
		}
	}
}
