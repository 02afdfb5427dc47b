package longrun_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/longrun/longrun"
)

func TestTruncateCountsCharacters(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"cut here", 3, "cut"},
		{"ééé", 2, "éé"}, // 6 bytes, 3 characters: cut at a character, never inside one
		{"", 0, ""},
	} {
		if got := longrun.Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("get execution x: %w", longrun.Errorf(longrun.ENOTFOUND, "execution %s does not exist", "x"))
	if longrun.ErrorCode(wrapped) != longrun.ENOTFOUND || longrun.ErrorMessage(wrapped) != "execution x does not exist" {
		t.Fatalf("a wrapped domain error keeps its code and message: %q %q", longrun.ErrorCode(wrapped), longrun.ErrorMessage(wrapped))
	}
	plain := errors.New("dial tcp 10.0.0.1:5432: refused")
	if longrun.ErrorCode(plain) != longrun.EINTERNAL || longrun.ErrorMessage(plain) != "internal error" {
		t.Fatal("any other error is internal and its text is not shown")
	}
	if longrun.ErrorCode(nil) != "" || longrun.IsCode(nil, longrun.EINTERNAL) {
		t.Fatal("nil has no code")
	}
}

func TestStatusAndEventType(t *testing.T) {
	t.Parallel()
	for s, want := range map[longrun.Status]longrun.EventType{
		longrun.StatusSucceeded: longrun.EventSucceeded, longrun.StatusFailed: longrun.EventFailed,
		longrun.StatusTimedOut: longrun.EventTimedOut, longrun.StatusAborted: longrun.EventAborted,
	} {
		if !s.Terminal() || longrun.EventTypeFor(s) != want {
			t.Errorf("%s: terminal %v, event %q; want terminal, %q", s, s.Terminal(), longrun.EventTypeFor(s), want)
		}
	}
	if longrun.StatusRunning.Terminal() || longrun.Status("DONE").Valid() || longrun.EventTypeFor(longrun.StatusRunning) != "" {
		t.Fatal("RUNNING is not terminal and has no event; unknown statuses are invalid")
	}
}

func TestActiveSecrets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tn := longrun.Tenant{ID: "acme", Secrets: []longrun.WebhookSecret{
		{Value: "new"},
		{Value: "rotated", ExpiresAt: now.Add(time.Hour)},
		{Value: "expired", ExpiresAt: now},
	}}
	got := tn.ActiveSecrets(now)
	if len(got) != 2 || got[0] != "new" || got[1] != "rotated" {
		t.Fatalf("ActiveSecrets = %v, want the current and the one still in its overlap", got)
	}
}
