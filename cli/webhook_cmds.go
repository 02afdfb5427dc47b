package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/webhook"
	"github.com/urfave/cli/v3"
)

// maxWebhookBody caps what the receiver reads: a thin event is small, a fat
// one carries at most the 256 KiB output limit.
const maxWebhookBody = 1 << 20

func webhookCommand(env envSource) *cli.Command {
	secretFlag := &cli.StringSliceFlag{Name: "secret", Usage: "the tenant's whsec_ secret (repeatable during a rotation)", Sources: env.vars("LONGRUN_WEBHOOK_SECRET")}
	return &cli.Command{
		Name:  "webhook",
		Usage: "receive and verify longrun webhooks (Standard Webhooks)",
		Commands: []*cli.Command{
			{
				Name:  "listen",
				Usage: "a local receiver: verifies every delivery, prints it, answers 204 (401 if the signature is wrong)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "addr", Value: "127.0.0.1:4000", Usage: "address to listen on"},
					secretFlag,
					&cli.IntFlag{Name: "fail-first", Usage: "answer 503 to the first N deliveries, to watch the retries"},
					&cli.StringFlag{Name: "save", Usage: "directory to save each request to (raw HTTP, for webhook verify)"},
				},
				Action: webhookListen,
			},
			{
				Name:      "verify",
				Usage:     "verify a saved webhook request (raw HTTP, as webhook listen --save writes it)",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					secretFlag,
					&cli.BoolFlag{Name: "ignore-time", Usage: "skip the 5-minute timestamp tolerance (for old saved requests)"},
				},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					data, err := os.ReadFile(cmd.Args().First())
					if err != nil {
						return fmt.Errorf("read saved request: %w", err)
					}
					req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
					if err != nil {
						return fmt.Errorf("parse saved request: %w", err)
					}
					body, err := io.ReadAll(io.LimitReader(req.Body, maxWebhookBody))
					if err != nil {
						return fmt.Errorf("read saved body: %w", err)
					}
					now := time.Now()
					if cmd.Bool("ignore-time") {
						// Verify as of the moment it was sent: the signature is still checked.
						if sec, err := strconv.ParseInt(req.Header.Get(webhook.HeaderTimestamp), 10, 64); err == nil {
							now = time.Unix(sec, 0)
						}
					}
					if err := webhook.Verify(cmd.StringSlice("secret"), req.Header, body, now); err != nil {
						return &exitError{code: 1, msg: "not verified: " + err.Error()}
					}
					fmt.Fprintf(cmd.Root().Writer, "verified: webhook-id %s\n", req.Header.Get(webhook.HeaderID))
					return nil
				},
			},
		},
	}
}

func webhookListen(ctx context.Context, cmd *cli.Command) error {
	secrets := cmd.StringSlice("secret")
	if len(secrets) == 0 {
		return errors.New("pass --secret whsec_… (longrun dev prints the tenant's secret) or set LONGRUN_WEBHOOK_SECRET")
	}
	if dir := cmd.String("save"); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("--save: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cmd.String("addr"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	out := cmd.Root().Writer
	fmt.Fprintf(out, "listening on http://%s — point callbackUrl here\n", ln.Addr())
	// Retries of one event span more than a day: remember ids for two.
	h := &receiver{secrets: secrets, out: out, failFirst: int(cmd.Int("fail-first")), saveDir: cmd.String("save"), dedupe: webhook.NewDeduper(48 * time.Hour), clock: longrun.SystemClock{}}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// receiver is `webhook listen`'s handler: verify, dedupe, print, answer fast.
type receiver struct {
	secrets   []string
	out       io.Writer
	saveDir   string
	dedupe    *webhook.Deduper
	clock     longrun.Clock // real time: signatures are checked against the sender's clock
	mu        sync.Mutex
	failFirst int
	received  int // requests, for the saved files' names
	verified  int // verified deliveries, for --fail-first
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxWebhookBody))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received++
	if r.saveDir != "" {
		req.Body = io.NopCloser(bytes.NewReader(body))
		if dump, err := httputil.DumpRequest(req, true); err == nil {
			name := filepath.Join(r.saveDir, fmt.Sprintf("%03d-%s.http", r.received, filepath.Base(req.Header.Get(webhook.HeaderID))))
			if err := os.WriteFile(name, dump, 0o600); err != nil {
				fmt.Fprintf(r.out, "save %s: %v\n", name, err)
			}
		}
	}
	id := req.Header.Get(webhook.HeaderID)
	if err := webhook.Verify(r.secrets, req.Header, body, r.clock.Now()); err != nil {
		fmt.Fprintf(r.out, "✗ %s rejected: %v\n", id, err)
		http.Error(w, "signature not verified", http.StatusUnauthorized)
		return
	}
	r.verified++
	if r.verified <= r.failFirst {
		fmt.Fprintf(r.out, "… %s verified, answering 503 on purpose (%d of --fail-first %d)\n", id, r.verified, r.failFirst)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	dup := r.dedupe.Seen(id, r.clock.Now())
	var ev webhook.Event
	_ = json.Unmarshal(body, &ev)
	note := ""
	if dup {
		note = " (duplicate webhook-id: already handled)"
	}
	fmt.Fprintf(r.out, "✓ %s %s %s %s%s\n", id, ev.Type, ev.Data.ExecutionID, ev.Data.Status, note)
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "  ", "  ") == nil {
		fmt.Fprintf(r.out, "  %s\n", pretty.String())
	}
	w.WriteHeader(http.StatusNoContent)
}
