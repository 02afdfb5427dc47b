package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// Checkpoints.
//
// SQLite's automatic checkpoint runs inside the commit that takes the WAL
// past 1,000 pages, on the committing connection: here the one writer, so
// every write of the process waited for it. It syncs the WAL and the file
// (synchronous=NORMAL), and in the end-to-end benchmark those fsyncs were
// ~720 ms of ~2.7 s, most of the time the writer was held and idle. The
// writer's autocheckpoint is therefore off and a checkpointer does the same
// PASSIVE checkpoint on a connection of its own, which never blocks the
// writer or the readers: WAL mode lets a writer append while frames already
// committed are copied into the file.
//
// Durability is unchanged: a commit is in the WAL when Write returns, as
// before, and the checkpoint syncs exactly as SQLite's own would, only
// earlier (at most checkpointDelay after a commit rather than after 1,000
// pages). The WAL is reused from its start once a checkpoint has copied all
// of it and no reader still needs it, as with automatic checkpoints; closing
// the last connection checkpoints and removes it.

// checkpointDelay is how long the checkpointer lets commits gather after the
// first one it sees, so one checkpoint (two fsyncs) covers many commits.
const checkpointDelay = 100 * time.Millisecond

type checkpointer struct {
	conn *sql.DB // one connection, not query-only (a checkpoint writes the file)
	log  *slog.Logger

	kick    chan struct{} // capacity 1: a commit since the last checkpoint
	stop    chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once
}

func newCheckpointer(conn *sql.DB, log *slog.Logger) *checkpointer {
	return &checkpointer{conn: conn, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// committed tells the checkpointer that the WAL has grown.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// start runs the checkpointer until close. Open calls it once, last.
func (c *checkpointer) start() {
	c.started = true
	go c.run()
}

func (c *checkpointer) run() {
	defer close(c.done)
	// Real time, not the DB's clock: this is housekeeping of the file, not
	// behaviour a test drives.
	delay := time.NewTimer(checkpointDelay)
	delay.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		delay.Reset(checkpointDelay)
		select {
		case <-c.stop:
			delay.Stop()
			return
		case <-delay.C:
		}
		var busy, frames, copied int
		if err := c.conn.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
			c.log.Warn("sqlite checkpoint failed; the next commit retries it", "error", err)
		}
	}
}

// close stops the checkpointer (if it started) and closes its connection.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		if c.started {
			<-c.done
		}
	})
	return c.conn.Close()
}
