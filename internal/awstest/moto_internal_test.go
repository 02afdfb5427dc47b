package awstest

import (
	"os"
	"strings"
	"testing"
)

// Without moto, Moto fails (in CI) with a message that says what was tried
// and how to fix it.
func TestStartMotoWithoutMotoSaysWhy(t *testing.T) {
	t.Setenv(MotoPythonEnv, "/nonexistent/python3")
	_, err := startMoto()
	if err == nil {
		t.Fatal("startMoto with no usable Python succeeded")
	}
	for _, want := range []string{"/nonexistent/python3", "moto 5.2.1", MotoPythonEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestScriptInterpreter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct{ name, script, want string }{
		{"pip script", "#!/opt/py/bin/python3.11\nimport sys\n", "/opt/py/bin/python3.11"},
		{"pyenv shim", "#!/usr/bin/env bash\nset -e\n", ""},
		{"no shebang", "print(1)\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "-")
			if err := os.WriteFile(path, []byte(tt.script), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := scriptInterpreter(path); got != tt.want {
				t.Errorf("scriptInterpreter = %q, want %q", got, tt.want)
			}
		})
	}
}
