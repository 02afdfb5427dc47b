package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
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
// pages). Closing the last connection checkpoints and removes the WAL.
//
// # A WAL that stays bounded
//
// A PASSIVE checkpoint copies frames into the file but never makes the WAL
// start over: SQLite rewinds the WAL only when a writer begins while every
// frame has been copied and no reader still reads from the WAL. Under
// steady load some reader always does (API lookups, long polls, the engine's
// reads), so with PASSIVE checkpoints alone the WAL grew without end (2.8 GB
// after 60 s at 300 starts/s, issue 11) and every read walked a longer WAL
// index. So once the WAL passes the WAL limit (WithWALLimit) the checkpointer runs a
// TRUNCATE checkpoint: it waits (busy timeout checkpointBusyTimeout) for
// the readers to move onto the latest snapshot, copies what is left, and
// truncates the WAL to zero bytes. A reader that does not move within the
// wait only postpones it to the next commit's checkpoint; it never holds
// the writer for longer than that wait. journal_size_limit on the writer is
// the second bound: whenever the WAL is rewound, the file is cut back to it.
//
// # Rewinding the WAL without stopping the writer for long
//
// The TRUNCATE checkpoint bounds the WAL, but it held the writer for 17-29
// ms each time (measured at 500 starts/s, about once a second): it copies
// everything the PASSIVE checkpoint had not, waits for readers through
// SQLite's sleeping busy handler, and truncates the file. That pause was
// most of the start p99. SQLite rewinds the WAL by itself, for free, when
// a write transaction begins on a WAL whose every frame is in the file and
// no reader reads from it; the background PASSIVE checkpoint never gets
// there because the writer appends while it copies. So after each one the
// checkpointer catches up on the writer's connection, between two of its
// transactions: a second PASSIVE checkpoint that copies only the frames
// written during the first (with its two fsyncs, a pause of milliseconds
// every round instead of tens of them every second) and never waits for
// anyone. The writer's next transaction
// then finds the WAL fully copied and starts it over, unless a reader is
// still in an older snapshot (then the next round does). Under steady load
// the WAL stays at a few MB (5 MB at 500 starts/s, where it went to the
// 32 MB limit every second before) and the TRUNCATE checkpoint is the rare
// fallback it was meant to be.
//
// Readers cannot pin the WAL forever either: every read in this package is
// one short transaction (Read, prepared single statements), and long polls
// wait outside any transaction.

// checkpointDelay is how long the checkpointer lets commits gather after the
// first one it sees, so one checkpoint (two fsyncs) covers many commits.
const checkpointDelay = 100 * time.Millisecond

// defaultWALLimit is the WAL size past which a checkpoint truncates it
// (WithWALLimit changes it).
const defaultWALLimit = 32 << 20

// hardLimitFactor times the WAL limit is the size at which writers stop to
// let the checkpoint catch up (see committed).
const hardLimitFactor = 4

// checkpointBusyTimeout bounds how long a TRUNCATE checkpoint waits for
// readers (and, meanwhile, holds up the writer).
const checkpointBusyTimeout = 200 * time.Millisecond

// journalSizeLimit is the writer's journal_size_limit: the size the WAL file
// is cut back to when SQLite rewinds it.
const journalSizeLimit = 16 << 20

type checkpointer struct {
	conn *sql.DB // one connection, not query-only (a checkpoint writes the file)
	log  *slog.Logger

	kick    chan struct{} // capacity 1: a commit since the last checkpoint
	stop    chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once

	limit      int64   // WAL bytes past which a checkpoint truncates
	writer     *sql.DB // the writer's pool, where truncating checkpoints run
	walPath    string
	writerBusy time.Duration                // the writer's busy timeout, restored after them
	page       int                          // the file's page size; used by run's goroutine only
	truncates  atomic.Int64                 // TRUNCATE checkpoints run (tests read it)
	catchUps   atomic.Int64                 // catch-up checkpoints run on the writer
	pages      atomic.Pointer[pageProfiler] // see ProfilePages; nil when off
}

func newCheckpointer(conn, writer *sql.DB, path string, writerBusy time.Duration, log *slog.Logger, limit int64) *checkpointer {
	return &checkpointer{conn: conn, writer: writer, walPath: path + "-wal", writerBusy: writerBusy, log: log, limit: limit, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// committed tells the checkpointer that the WAL has grown. Past
// hardLimitFactor times the limit — writes outrunning the checkpointer —
// the committing caller truncates the WAL itself before it returns, so
// writers wait for the checkpoint instead of growing the WAL further.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if fi, err := os.Stat(c.walPath); err == nil && fi.Size() > hardLimitFactor*c.limit {
		if err := c.truncate(); err != nil {
			c.log.Warn("sqlite truncating checkpoint failed; the next commit retries it", "error", err)
		}
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
	behind := false // the last checkpoint found the WAL past its limit
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		if !behind { // catching up does not wait for more commits
			delay.Reset(checkpointDelay)
			select {
			case <-c.stop:
				delay.Stop()
				return
			case <-delay.C:
			}
		}
		behind = c.checkpoint(behind)
	}
}

// checkpoint copies the WAL into the file and truncates the WAL once it
// has grown past the WAL limit. It reports whether it had. behind (the
// last one found the WAL past the limit) goes straight to truncating, on
// the writer's connection: while it copies, writes wait, so writes cannot
// outrun checkpoints for long.
func (c *checkpointer) checkpoint(behind bool) bool {
	if behind {
		if err := c.truncate(); err != nil {
			c.log.Warn("sqlite truncating checkpoint failed; the next commit retries it", "error", err)
		}
		return false
	}
	c.attributePages()
	var busy, frames, copied int
	if err := c.conn.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		c.log.Warn("sqlite checkpoint failed; the next commit retries it", "error", err)
		return false
	}
	if int64(frames)*int64(c.pageSize()) < c.limit {
		if copied == frames && frames > 0 {
			if err := c.catchUp(); err != nil {
				c.log.Warn("sqlite checkpoint on the writer failed; the next commit retries it", "error", err)
			}
		}
		return false
	}
	if err := c.truncate(); err != nil {
		c.log.Warn("sqlite truncating checkpoint failed; the next commit retries it", "error", err)
	}
	return true
}

// catchUp copies what the writer committed during the last background
// checkpoint, on the writer's connection between two of its transactions,
// so its next transaction can rewind the WAL (see "Rewinding the WAL"
// above). PASSIVE: it never waits for a reader or the busy handler.
func (c *checkpointer) catchUp() error {
	ctx := context.Background()
	conn, err := c.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("take the writer: %w", err)
	}
	defer conn.Close()
	var busy, frames, copied int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return fmt.Errorf("checkpoint on the writer: %w", err)
	}
	c.catchUps.Add(1)
	return nil
}

// truncate runs a TRUNCATE checkpoint on the writer's connection, between
// two of its transactions. On a connection of its own it starved: it must
// hold the write lock while it waits for readers, and the writer, busy all
// the time, took the lock back after every commit before SQLite's busy
// handler woke the checkpoint again. On the writer's one connection, the
// writes simply queue behind it, for at most checkpointBusyTimeout.
func (c *checkpointer) truncate() error {
	ctx := context.Background()
	conn, err := c.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("take the writer: %w", err)
	}
	defer conn.Close()
	c.attributePages() // holding the writer: no frame is added before the WAL is cut
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = `+strconv.FormatInt(checkpointBusyTimeout.Milliseconds(), 10)); err != nil {
		return fmt.Errorf("shorten busy timeout: %w", err)
	}
	var busy, frames, copied int
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied)
	if _, rerr := conn.ExecContext(ctx, `PRAGMA busy_timeout = `+strconv.FormatInt(c.writerBusy.Milliseconds(), 10)); rerr != nil && err == nil {
		err = fmt.Errorf("restore busy timeout: %w", rerr)
	}
	if err != nil {
		return err
	}
	if busy != 0 {
		c.log.Debug("sqlite truncating checkpoint waited for readers in vain; the next commit retries it", "wal_frames", frames)
		return nil
	}
	c.truncates.Add(1)
	return nil
}

// pageSize is the file's page size, read once.
func (c *checkpointer) pageSize() int {
	if c.page == 0 {
		if err := c.conn.QueryRowContext(context.Background(), `PRAGMA page_size`).Scan(&c.page); err != nil || c.page <= 0 {
			c.page = 4096
		}
	}
	return c.page
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
