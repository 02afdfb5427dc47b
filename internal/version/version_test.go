package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tt := range []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"released", debug.BuildInfo{GoVersion: "go1.26.6", Main: debug.Module{Version: "v0.3.0"}}, "longrun v0.3.0 (go1.26.6 " + platform + ")"},
		{"checkout", debug.BuildInfo{GoVersion: "go1.26.6", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c"}, {Key: "vcs.modified", Value: "true"},
		}}, "longrun (devel) 1a2b3c4d5e6f, modified (go1.26.6 " + platform + ")"},
	} {
		if got := format(&tt.info); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if !strings.HasPrefix(String(), "longrun ") {
		t.Errorf("String() = %q", String())
	}
}
