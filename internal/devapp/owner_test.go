package devapp_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/sqlite"
)

// One owner per data directory; the next owner finds the leases of the one
// before dead and hands their jobs back at once.
func TestOwnerOfTheDataDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	open := func(owner string) (*devapp.App, error) {
		return devapp.Open(ctx, devapp.Config{DataDir: dir, TemplatePath: filepath.Join("..", "..", "template.yaml"), Owner: owner})
	}
	first, err := open("http://127.0.0.1:3001")
	if err != nil {
		t.Fatal(err)
	}
	jobs := sqlite.NewQueue(first.DB, devapp.JobsQueue, sqlite.QueueConfig{})
	if err := jobs.Send(ctx, `{"job":"held"}`); err != nil {
		t.Fatal(err)
	}
	if msgs, err := jobs.Receive(ctx, 1, 0, time.Hour); err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %v", msgs, err)
	}

	_, err = open("http://127.0.0.1:3002")
	if !errors.Is(err, devapp.ErrDataDirInUse) || !strings.Contains(err.Error(), "http://127.0.0.1:3001") || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("a second owner: %v, want ErrDataDirInUse naming the first (pid and URL)", err)
	}
	reader, err := open("") // longrun history: no ownership, no release
	if err != nil {
		t.Fatalf("a reader beside the owner: %v", err)
	}
	if msgs, err := sqlite.NewQueue(reader.DB, devapp.JobsQueue, sqlite.QueueConfig{}).Receive(ctx, 1, 0, time.Hour); err != nil || len(msgs) != 0 {
		t.Fatalf("a reader released the owner's job: %v %v", msgs, err)
	}
	reader.Close()

	if err := first.Close(); err != nil { // as the process's death drops the lock
		t.Fatal(err)
	}
	second, err := open("http://127.0.0.1:3002")
	if err != nil {
		t.Fatalf("the next owner: %v", err)
	}
	defer second.Close()
	msgs, err := sqlite.NewQueue(second.DB, devapp.JobsQueue, sqlite.QueueConfig{}).Receive(ctx, 1, 0, time.Hour)
	if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != 2 {
		t.Fatalf("after the restart: %+v %v, want the held job back at once, on its second receive", msgs, err)
	}
}
