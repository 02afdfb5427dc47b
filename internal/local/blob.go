package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unsafe"
)

// Payloads written once.
//
// A payload (an execution's input or output, a state's input or output, a
// task's parameters or result) used to be copied into every history event
// and record that carries it: with 64 KiB in and out an execution wrote
// ~25 times its payload. Now a payload larger than inlineMax is cut into
// content-defined chunks (a gear rolling hash picks the cut points, so the
// same bytes inside a larger document — the input inside a state's output,
// inside a task's parameters — give the same chunks), each chunk is stored
// once per execution in local_blobs, keyed by its hash, and what carries
// the payload stores a ref: the chunks' hashes. Reading joins them again,
// so GetExecutionHistory and describe return exactly the bytes of before.
//
// Chunks belong to one execution (the arn in their key): retention deletes
// them with it, with no reference counts to keep.

const (
	inlineMax = 2 << 10 // payloads up to this size stay inline
	chunkMin  = 2 << 10
	chunkMax  = 32 << 10
	chunkMask = 1<<13 - 1 // about 8 KiB between cut points on average
	hashLen   = 16        // bytes of SHA-256 kept: chunks are compared within one execution
	refPrefix = '@'       // a stored column value starting with it is a ref, not JSON
)

// gear is the rolling hash's table: fixed pseudo-random values, so the same
// content is cut the same way in every process.
var gear = func() (g [256]uint64) {
	x := uint64(0x9E3779B97F4A7C15)
	for i := range g {
		// splitmix64
		x += 0x9E3779B97F4A7C15
		z := x
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		g[i] = z ^ (z >> 31)
	}
	return g
}()

// cut returns the length of the first chunk of data.
func cut(data []byte) int {
	if len(data) <= chunkMin {
		return len(data)
	}
	end := min(len(data), chunkMax)
	var h uint64
	for i := chunkMin; i < end; i++ {
		h = h<<1 + gear[data[i]]
		if h&chunkMask == 0 {
			return i + 1
		}
	}
	return end
}

// blobRow is a chunk to insert in the batch's transaction.
type blobRow struct {
	arn  string
	hash []byte
	data []byte
}

type blobKey struct {
	arn  string
	hash [hashLen]byte
}

type memoKey struct {
	arn string
	p   *byte
	n   int
}

// blobs collects the chunks of one batch.
type blobs struct {
	rows []blobRow
	seen map[blobKey]bool
	memo map[memoKey]string // payloads already cut in this batch, by identity
	ins  *sql.Stmt
}

func (bs *blobs) reset() {
	clear(bs.rows)
	bs.rows = bs.rows[:0]
	if bs.seen == nil {
		bs.seen, bs.memo = map[blobKey]bool{}, map[memoKey]string{}
	}
	clear(bs.seen)
	clear(bs.memo)
}

// ref returns what to store for payload, owned by the execution arn: the
// payload itself if small, else its ref, its chunks queued for the
// transaction.
func (bs *blobs) ref(arn string, payload []byte) string {
	if len(payload) <= inlineMax {
		return string(payload)
	}
	mk := memoKey{arn, unsafe.SliceData(payload), len(payload)}
	if r, ok := bs.memo[mk]; ok {
		return r
	}
	ref := make([]byte, 1, 1+(len(payload)/chunkMin+1)*hashLen*2)
	ref[0] = refPrefix
	for rest := payload; len(rest) > 0; {
		n := cut(rest)
		sum := sha256.Sum256(rest[:n])
		k := blobKey{arn: arn}
		copy(k.hash[:], sum[:hashLen])
		if !bs.seen[k] {
			bs.seen[k] = true
			bs.rows = append(bs.rows, blobRow{arn: arn, hash: k.hash[:], data: rest[:n]})
		}
		ref = hex.AppendEncode(ref, k.hash[:])
		rest = rest[n:]
	}
	r := string(ref)
	bs.memo[mk] = r
	return r
}

// refOrNil is ref for a payload that may be absent (NULL).
func (bs *blobs) refOrNil(arn string, payload []byte) any {
	if payload == nil {
		return nil
	}
	return bs.ref(arn, payload)
}

// write inserts the batch's chunks; one already stored (a payload repeated
// in a later step) is left as it is.
func (bs *blobs) write(ctx context.Context, prepare func(query string) (*sql.Stmt, error)) error {
	if len(bs.rows) == 0 {
		return nil
	}
	if bs.ins == nil {
		var err error
		if bs.ins, err = prepare(insertBlobSQL); err != nil {
			return fmt.Errorf("prepare blob insert: %w", err)
		}
	}
	for _, r := range bs.rows {
		if _, err := bs.ins.ExecContext(ctx, r.arn, r.hash, r.data); err != nil {
			return fmt.Errorf("store payload chunk of %s: %w", r.arn, err)
		}
	}
	return nil
}

func (bs *blobs) closeStmt() {
	if bs.ins != nil {
		_ = bs.ins.Close() // closing a statement of a finished transaction reports nothing useful
		bs.ins = nil
	}
}

// blobReader reads payloads back within a read transaction.
type blobReader struct {
	ctx  context.Context
	tx   *sql.Tx
	stmt *sql.Stmt
}

func newBlobReader(ctx context.Context, tx *sql.Tx) *blobReader {
	return &blobReader{ctx: ctx, tx: tx}
}

func (r *blobReader) close() {
	if r.stmt != nil {
		_ = r.stmt.Close() // a read statement: nothing to report
	}
}

// payload returns the stored value v of the execution arn as JSON: v
// itself, or the chunks its ref names joined.
func (r *blobReader) payload(arn, v string) (json.RawMessage, error) {
	if v == "" || v[0] != refPrefix {
		return json.RawMessage(v), nil
	}
	hexes := v[1:]
	if len(hexes)%(hashLen*2) != 0 {
		return nil, fmt.Errorf("payload ref of %s is malformed", arn)
	}
	if r.stmt == nil {
		var err error
		if r.stmt, err = r.tx.PrepareContext(r.ctx, `SELECT data FROM local_blobs WHERE arn = ? AND hash = ?`); err != nil {
			return nil, fmt.Errorf("prepare blob read: %w", err)
		}
	}
	var out bytes.Buffer
	hash := make([]byte, hashLen)
	for i := 0; i < len(hexes); i += hashLen * 2 {
		if _, err := hex.Decode(hash, []byte(hexes[i:i+hashLen*2])); err != nil {
			return nil, fmt.Errorf("payload ref of %s: %w", arn, err)
		}
		var data []byte
		if err := r.stmt.QueryRowContext(r.ctx, arn, hash).Scan(&data); err != nil {
			return nil, fmt.Errorf("payload chunk %x of %s: %w", hash, arn, err)
		}
		out.Write(data)
	}
	return out.Bytes(), nil
}

// optional is payload for a nullable column.
func (r *blobReader) optional(arn string, v sql.NullString) (json.RawMessage, error) {
	if !v.Valid {
		return nil, nil
	}
	return r.payload(arn, v.String)
}
