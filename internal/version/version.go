// Package version says which longrun this is, from what the Go toolchain
// records in the binary: the module version for `go install …@v1.2.3`, the
// VCS revision for a build from a checkout.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// String is the version line `longrun version` prints, e.g.
// "longrun v0.3.0 (go1.26.6 linux/amd64)" or
// "longrun (devel) 1a2b3c4d5e6f, modified (go1.26.6 linux/amd64)".
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Sprintf("longrun (unknown) (%s %s/%s)", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	return format(info)
}

func format(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	out := "longrun " + v
	if rev != "" {
		out += " " + rev + modified
	}
	return fmt.Sprintf("%s (%s %s/%s)", out, info.GoVersion, runtime.GOOS, runtime.GOARCH)
}
