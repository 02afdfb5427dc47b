package local

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/longrun/longrun/internal/payload"
)

// Payloads written once.
//
// A payload (an execution's input or output, a state's input or output, a
// task's parameters or result) used to be copied into every history event
// and record that carries it: with 64 KiB in and out an execution wrote
// ~25 times its payload. Now a payload larger than inlineMax is stored as
// content-defined chunks (internal/payload) owned by the execution (a
// Parallel branch's or Map item's by its root execution), and
// what carries the payload stores a ref: the chunks' hashes. The chunks
// are shared with the execution's record and its task message in the same
// file. Reading joins them again, so GetExecutionHistory and describe
// return exactly the bytes of before.
//
// The engine holds (payload_holders, holder "engine") every execution it
// stored a ref for, in the transaction that stores it; retention releases
// the hold, and the chunks go with the last one.

const (
	inlineMax    = payload.Inline // payloads up to this size stay inline
	engineHolder = "engine"
)

// blobs collects the chunks of one batch.
type blobs struct {
	c *payload.Chunks
}

func (bs *blobs) reset() {
	if bs.c == nil {
		bs.c = payload.NewChunks(engineHolder)
	}
	bs.c.Reset()
}

// ref returns what to store for payload, owned by the execution arn: the
// payload itself if small, else its ref, its chunks queued for the
// transaction.
func (bs *blobs) ref(arn string, p []byte) string { return bs.c.Ref(arn, p) }

// refOrNil is ref for a payload that may be absent (NULL).
func (bs *blobs) refOrNil(arn string, p []byte) any {
	if p == nil {
		return nil
	}
	return bs.ref(arn, p)
}

// write inserts the batch's chunks; one already stored (a payload repeated
// in a later step) is left as it is.
func (bs *blobs) write(ctx context.Context, prepare func(query string) (*sql.Stmt, error)) error {
	return bs.c.Write(ctx, prepare)
}

func (bs *blobs) closeStmt() {
	if bs.c != nil {
		bs.c.Close()
	}
}

// blobReader reads payloads back within a read transaction.
type blobReader struct{ r *payload.Reader }

func newBlobReader(ctx context.Context, tx *sql.Tx) *blobReader {
	return &blobReader{payload.NewReader(ctx, tx)}
}

func (r *blobReader) close() { r.r.Close() }

// payload returns the stored value v of the execution arn as JSON: v
// itself, or the chunks its ref names joined.
func (r *blobReader) payload(arn, v string) (json.RawMessage, error) { return r.r.Payload(arn, v) }

// optional is payload for a nullable column.
func (r *blobReader) optional(arn string, v sql.NullString) (json.RawMessage, error) {
	return r.r.Optional(arn, v)
}
