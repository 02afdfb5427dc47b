package noop

import (
	"context"
	"encoding/json"
	"testing"

	longrun "github.com/longrun/longrun"
)

func TestJob(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"a":[1,2]}`, `{"a":[1,2]}`},
		{`"x"`, `"x"`},
		{``, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			out, err := Job(context.Background(), json.RawMessage(tt.in), func(longrun.Progress) {})
			if err != nil || string(out) != tt.want {
				t.Fatalf("Job(%s) = %s, %v; want %s", tt.in, out, err, tt.want)
			}
		})
	}
}

func BenchmarkJob(b *testing.B) {
	in := json.RawMessage(`{"seconds":0}`)
	for b.Loop() {
		_, _ = Job(context.Background(), in, nil)
	}
}
