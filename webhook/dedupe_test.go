package webhook_test

import (
	"testing"
	"time"

	"github.com/longrun/longrun/webhook"
)

func TestDeduper(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	type step struct {
		id     string
		at     time.Duration // after t0
		forget bool
		seen   bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"first time is new", []step{{id: "a", seen: false}}},
		{"repeat within window", []step{{id: "a"}, {id: "a", at: time.Hour, seen: true}}},
		{"other id is new", []step{{id: "a"}, {id: "b", at: time.Minute}}},
		{"repeat after window is new", []step{{id: "a"}, {id: "a", at: 25 * time.Hour}}},
		{"sweep keeps recent ids", []step{{id: "a"}, {id: "b", at: 23 * time.Hour}, {id: "c", at: 25 * time.Hour}, {id: "b", at: 25*time.Hour + time.Minute, seen: true}}},
		{"forget lets a retry through", []step{{id: "a"}, {id: "a", forget: true}, {id: "a", at: time.Minute}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := webhook.NewDeduper(24 * time.Hour)
			for i, s := range tc.steps {
				if s.forget {
					d.Forget(s.id)
					continue
				}
				if got := d.Seen(s.id, t0.Add(s.at)); got != s.seen {
					t.Fatalf("step %d: Seen(%q, +%s) = %v, want %v", i, s.id, s.at, got, s.seen)
				}
			}
		})
	}
}
