package devapp_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/longrun/longrun/internal/devapp"
	"github.com/longrun/longrun/internal/tenant"
	"github.com/longrun/longrun/jobs/noop"
)

// hostEnv makes the test binary a `longrun dev` host instead of running
// tests: TestKilledStartsLeaveNoOrphans re-executes itself with it and kills
// the child with SIGKILL while starts are in flight.
const hostEnv = "LONGRUN_DEVAPP_HOST"

func TestMain(m *testing.M) {
	if dir := os.Getenv(hostEnv); dir != "" {
		if err := host(dir); err != nil {
			fmt.Fprintln(os.Stderr, "devapp host:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// host serves the app on dir until it is killed, after printing its URL and
// an API key.
func host(dir string) error {
	ctx := context.Background()
	app, err := devapp.Open(ctx, devapp.Config{DataDir: dir, TemplatePath: filepath.Join("..", "..", "template.yaml"), Jobs: registryOf(noop.Job)})
	if err != nil {
		return err
	}
	key, err := tenant.CreateKey(ctx, app.Tenants, "acme", time.Now())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ready http://%s %s\n", ln.Addr(), key.APIKey)
	return app.Serve(ctx, ln)
}

// A start is the record and the engine's start in one commit, so a kill at
// any instant of a start leaves both or neither: no RUNNING record without
// an execution behind it, no execution without its record.
func TestKilledStartsLeaveNoOrphans(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills a child process several times")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var accepted, cut atomic.Int64
	const kills = 6
	for round := range kills {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), hostEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: host did not start: %v", round, err)
		}
		var url, key string
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "ready %s %s", &url, &key); err != nil {
			t.Fatalf("host said %q", line)
		}
		hc := &http.Client{Timeout: 10 * time.Second}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					body, _ := json.Marshal(map[string]any{"input": map[string]int{"round": round, "client": c, "i": i}})
					req, _ := http.NewRequest(http.MethodPost, url+"/start-execution", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+key)
					resp, err := hc.Do(req)
					if err != nil {
						cut.Add(1) // the kill cut this start short
						return
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						accepted.Add(1)
					}
				}
			})
		}
		time.Sleep(time.Duration(150+50*round) * time.Millisecond) // let starts pile up, then kill mid-flight
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		close(stop)
		wg.Wait()
	}
	if accepted.Load() == 0 || cut.Load() == 0 {
		t.Fatalf("%d starts accepted, %d cut by kills: the test did not kill starts in flight", accepted.Load(), cut.Load())
	}

	db, err := devapp.OpenDB(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var records, orphans, unrecorded int
	q := func(query string, dst *int) {
		if err := db.Read(context.Background(), func(tx *sql.Tx) error { return tx.QueryRow(query).Scan(dst) }); err != nil {
			t.Fatal(err)
		}
	}
	q(`SELECT count(*) FROM executions`, &records)
	q(`SELECT count(*) FROM executions e WHERE NOT EXISTS (SELECT 1 FROM local_executions l WHERE l.arn = e.arn)`, &orphans)
	q(`SELECT count(*) FROM local_executions l WHERE machine = 'LongrunStateMachine'
		AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.arn = l.arn)`, &unrecorded)
	t.Logf("%d kills, %d starts accepted, %d cut short, %d records", kills, accepted.Load(), cut.Load(), records)
	if records < int(accepted.Load()) {
		t.Errorf("%d records, fewer than the %d starts accepted", records, accepted.Load())
	}
	if orphans != 0 || unrecorded != 0 {
		t.Errorf("%d records with no execution behind them, %d executions with no record; want 0 and 0", orphans, unrecorded)
	}
}
