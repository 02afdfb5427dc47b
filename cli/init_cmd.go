package cli

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/template"

	"github.com/longrun/longrun"
	"github.com/urfave/cli/v3"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// skeleton holds the files of a new project as text/template files; a name
// ends in .tmpl so that Go never compiles or treats as a module what is only
// a template (a go.mod would cut the directory out of this package).
//
//go:embed all:skeleton
var skeleton embed.FS

const longrunModule = "github.com/longrun/longrun"

// project is what the skeleton's templates are filled with.
type project struct {
	Module string // the new module's path
	Name   string // its last element: the command's and the stack's name
	// LongrunVersion is the version of longrun go.mod requires; Published
	// says whether the Go module proxy can be expected to have it.
	LongrunVersion string
	Published      bool
	Replace        string // a replace directive's target, or ""
	GoVersion      string
}

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "create a project of your own jobs in DIR (like sam init): go.mod, main.go, an example job, template.yaml, Makefile, …",
		ArgsUsage: "DIR",
		Description: "DIR must be empty or missing. --force also writes into a non-empty DIR, but init never\n" +
			"overwrites a file: if any file it would write exists, it writes nothing and names them.\n" +
			"Then: cd DIR && make run (longrun dev with your jobs) and make test; sam build && sam deploy --guided.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "module", Required: true, Usage: "the new Go module's path, e.g. example.com/exports"},
			&cli.BoolFlag{Name: "force", Usage: "write into a non-empty DIR (existing files are still never overwritten)"},
			&cli.StringFlag{Name: "replace", Usage: "a local checkout of longrun for go.mod's replace directive (until you depend on a published version)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			dir := cmd.Args().First()
			if dir == "" || cmd.Args().Len() > 1 {
				return errors.New("init takes one DIR: longrun init DIR --module PATH")
			}
			p, err := newProject(cmd.String("module"), cmd.String("replace"))
			if err != nil {
				return err
			}
			files, err := p.files()
			if err != nil {
				return err
			}
			if err := writeProject(dir, files, cmd.Bool("force")); err != nil {
				return err
			}
			w := cmd.Root().Writer
			fmt.Fprintf(w, "created %s (module %s):\n", dir, p.Module)
			for _, name := range slices.Sorted(maps.Keys(files)) {
				fmt.Fprintf(w, "  %s\n", name)
			}
			fmt.Fprintf(w, "\nnext:\n  cd %s\n", dir)
			if !p.Published && p.Replace == "" {
				fmt.Fprintf(w, "  go mod edit -replace %s=<your longrun checkout>   # no published longrun version is known to this binary\n", longrunModule)
			}
			fmt.Fprintf(w, "  make run     # your jobs on http://127.0.0.1:3000\n  make test\n")
			return nil
		},
	}
}

func newProject(modulePath, replace string) (*project, error) {
	if err := module.CheckPath(modulePath); err != nil {
		return nil, fmt.Errorf("--module %q: %w (a Go module path, e.g. example.com/exports)", modulePath, err)
	}
	p := &project{
		Module:    modulePath,
		Name:      projectName(modulePath),
		GoVersion: goVersion(),
	}
	p.LongrunVersion, p.Published = longrunVersion()
	if replace != "" {
		abs, err := filepath.Abs(replace)
		if err != nil {
			return nil, fmt.Errorf("--replace %q: %w", replace, err)
		}
		if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
			return nil, fmt.Errorf("--replace %q: want a checkout of %s (a directory with its go.mod): %w", replace, longrunModule, err)
		}
		p.Replace = filepath.ToSlash(abs)
	}
	return p, nil
}

// projectName is the module path's last element without a major version
// suffix, made fit for a stack name (letters, digits, '-').
func projectName(modulePath string) string {
	prefix, _, _ := module.SplitPathVersion(modulePath)
	name := strings.ToLower(path.Base(prefix))
	name = regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(name, "-")
	name = strings.Trim(name, "-")
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		name = "jobs-" + name
	}
	return strings.TrimSuffix(name, "-")
}

// longrunVersion is the longrun version this binary was built from, as go.mod
// should require it: the binary's own module version, or the dependency's in
// a project's binary. A build from a checkout has none the proxy knows
// ("(devel)", or a +dirty VCS stamp): then v0.0.0, for a replace directive.
func longrunVersion() (string, bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "v0.0.0", false
	}
	v := ""
	if bi.Main.Path == longrunModule {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == longrunModule && d.Replace == nil {
			v = d.Version
		}
	}
	if !semver.IsValid(v) || semver.Build(v) != "" {
		return "v0.0.0", false
	}
	return v, true
}

// goVersion is the go directive of the new module: the toolchain that built
// this binary, which built longrun; `go mod tidy` raises it if longrun needs more.
func goVersion() string {
	v := strings.TrimPrefix(runtime.Version(), "go")
	if regexp.MustCompile(`^1\.[0-9]+(\.[0-9]+)?$`).MatchString(v) {
		return v
	}
	return "1.26"
}

// files renders the project: the skeleton's templates, longrun's state
// machines as they are, and a template.yaml derived from longrun's own.
func (p *project) files() (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := fs.WalkDir(skeleton, "skeleton", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(name, "skeleton/"), ".tmpl")
		if rel == "gitignore" {
			rel = ".gitignore"
		}
		src, err := fs.ReadFile(skeleton, name)
		if err != nil {
			return err
		}
		t, err := template.New(rel).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("skeleton %s: %w", rel, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, p); err != nil {
			return fmt.Errorf("skeleton %s: %w", rel, err)
		}
		out[rel] = b.Bytes()
		return nil
	})
	if err != nil {
		return nil, err
	}
	sms, err := fs.Glob(longrun.SAMFiles, "statemachine/*.asl.json")
	if err != nil {
		return nil, err
	}
	for _, name := range sms {
		if out[name], err = fs.ReadFile(longrun.SAMFiles, name); err != nil {
			return nil, err
		}
	}
	src, err := fs.ReadFile(longrun.SAMFiles, "template.yaml")
	if err != nil {
		return nil, err
	}
	if out["template.yaml"], err = deriveTemplate(src, p.Name); err != nil {
		return nil, fmt.Errorf("derive template.yaml: %w", err)
	}
	return out, nil
}

// writeProject writes files under dir. A non-empty dir needs force, and an
// existing file is never replaced: init checks every path before it writes
// anything, so a refusal leaves dir as it was.
func writeProject(dir string, files map[string][]byte, force bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if len(entries) > 0 && !force {
		return fmt.Errorf("%s is not empty: init writes a new project into an empty or missing directory (--force writes beside the files there, never over them)", dir)
	}
	var clash []string
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name))); err == nil {
			clash = append(clash, name)
		}
	}
	if len(clash) > 0 {
		slices.Sort(clash)
		return fmt.Errorf("init never overwrites a file, and these exist in %s: %s; move them away or pick another directory (nothing was written)", dir, strings.Join(clash, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		// O_EXCL: a file created since the check above is not overwritten either.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		_, werr := f.Write(files[name])
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}
