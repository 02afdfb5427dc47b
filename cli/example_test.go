package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/cli"
)

// A project's main registers its jobs and hands them to cli.Main, which is
// the whole longrun command line with them compiled in:
//
//	func main() { cli.Main(reg) }
//
// cli.Run is the same without the process around it (exit codes, signals),
// for tests; here it runs `longrun init`, which generates such a project.
func Example() {
	reg := longrun.NewRegistry()
	reg.Handle("greet", func(ctx context.Context, input json.RawMessage, report func(longrun.Progress)) (json.RawMessage, error) {
		return json.RawMessage(`{"greeting": "hello"}`), nil
	}, longrun.JobOptions{})

	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	project := filepath.Join(dir, "exports")
	err = cli.Run(context.Background(), reg, []string{"longrun", "init", project, "--module", "example.com/exports"},
		os.Getenv, strings.NewReader(""), io.Discard, os.Stderr)
	if err != nil {
		panic(err)
	}
	_ = fs.WalkDir(os.DirFS(project), ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fmt.Println(name)
		}
		return err
	})
	// Output:
	// .gitignore
	// Makefile
	// README.md
	// cmd/lambda/main.go
	// go.mod
	// jobs/hello/hello.go
	// jobs/hello/hello_test.go
	// jobs/registry.go
	// main.go
	// samconfig.toml
	// statemachine/deliver.asl.json
	// statemachine/longrun.asl.json
	// template.yaml
}
