// Package payload stores large JSON payloads once per SQLite file, shared
// by everything in it that carries them (docs/local-engine.md, "Payloads
// written once"): the local engine's history and executions, the execution
// records and the task messages of the SQLite queue.
//
// A payload larger than Inline is cut into content-defined chunks, stored
// in payload_chunks under an owner (the execution's ARN) and keyed by their
// hash; what carries the payload stores a ref instead — '@' (which no
// JSON value starts with), then the chunks' hashes in hex and, in between,
// the few bytes of JSON around large values as they are. The same bytes
// give the same chunks wherever they sit, so an execution's input stored
// by its record, inside the engine's state input and inside the task
// message is stored once.
//
// Each carrier that stores refs to an owner's chunks holds the owner: a row
// in payload_holders (the engine, a record, a message), written in the same
// transaction as its refs and its chunks. Release drops a hold, and the
// owner's chunks go with its last one, in the same transaction: nothing
// refers to a chunk that is not there, and nothing is left when the last
// carrier is gone. The tables are created by internal/sqlite's migrations.
package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

const (
	// Inline is the largest payload stored as it is, not as chunks.
	Inline    = 2 << 10
	chunkMin  = 2 << 10
	chunkMax  = 32 << 10
	chunkMask = 1<<13 - 1 // about 8 KiB between cut points on average
	hashLen   = 16        // bytes of SHA-256 kept: chunks are compared within one owner
	refPrefix = '@'       // a stored value starting with it is a ref, not JSON
	// tinyGap is the longest piece between two forced cut points (see
	// bounds) kept in the ref itself rather than as a chunk: the JSON
	// around a large value, the commas of an array of large values.
	tinyGap    = 64
	inlineItem = '.' // in a ref: '.', the length in decimal, '.', the bytes
)

// The statements on the tables (internal/sqlite migration 005).
const (
	InsertChunkSQL = `INSERT OR IGNORE INTO payload_chunks (owner, hash, data) VALUES (?, ?, ?)`
	HoldSQL        = `INSERT OR IGNORE INTO payload_holders (owner, holder) VALUES (?, ?)`
	// ReadChunkSQL reads the chunks of an owner named by a JSON array of
	// hashes in hex, with their index in it, in one statement. CROSS JOIN
	// keeps the array the outer loop, so rows come in its order.
	ReadChunkSQL = `SELECT j.key, c.data FROM json_each(?1) j
		CROSS JOIN payload_chunks c ON c.owner = ?2 AND c.hash = unhex(j.value)`
	UnholdSQL     = `DELETE FROM payload_holders WHERE owner = ? AND holder = ?`
	DropChunksSQL = `DELETE FROM payload_chunks WHERE owner = ?
		AND NOT EXISTS (SELECT 1 FROM payload_holders WHERE owner = ?)`
)

// IsRef reports whether a stored value is a ref rather than the payload.
func IsRef(v string) bool { return v != "" && v[0] == refPrefix }

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

// cut returns the length of the first chunk of data, a content-defined
// cut point: the rolling hash depends on the last 64 bytes only.
func cut(data []byte) int {
	if len(data) <= chunkMin {
		return len(data)
	}
	end := min(len(data), chunkMax)
	var h uint64
	// A range over the slice: no bounds check per byte, the hot loop of
	// storing a payload.
	for i, c := range data[chunkMin:end] {
		h = h<<1 + gear[c]
		if h&chunkMask == 0 {
			return chunkMin + i + 1
		}
	}
	return end
}

// bounds returns forced cut points of doc, a JSON document: the start and
// the end of every value (string, object or array) of at least chunkMin
// bytes, so a large value is cut the same way wherever it is embedded —
// an execution's input alone, inside the engine's state input, inside a
// task message — and its chunks are stored once. Without them only the
// chunks after the first content-defined cut point inside the value would
// be shared, and each document holding it would add about two chunks of
// its own. Not JSON (never expected): no forced cuts. spans are those
// values, [start, end).
func bounds(doc []byte, dst []int, spans [][2]int) ([]int, [][2]int) {
	dst, spans = dst[:0], spans[:0]
	var open []int // starts of the objects and arrays not yet closed
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '"':
			start, j := i, i+1
			for {
				k := bytes.IndexByte(doc[j:], '"')
				if k < 0 {
					return dst[:0], spans[:0]
				}
				j += k
				esc := 0
				for m := j - 1; m > start && doc[m] == '\\'; m-- {
					esc++
				}
				if esc%2 == 0 {
					break
				}
				j++
			}
			if j+1-start >= chunkMin {
				dst = append(dst, start, j+1)
				spans = append(spans, [2]int{start, j + 1})
			}
			i = j
		case '{', '[':
			open = append(open, i)
		case '}', ']':
			if len(open) == 0 {
				return dst[:0], spans[:0]
			}
			start := open[len(open)-1]
			open = open[:len(open)-1]
			if i+1-start >= chunkMin {
				dst = append(dst, start, i+1)
				spans = append(spans, [2]int{start, i + 1})
			}
		}
	}
	slices.Sort(dst)
	// Each once, inside doc.
	kept, last := dst[:0], 0
	for _, c := range dst {
		if c > last && c < len(doc) {
			kept = append(kept, c)
			last = c
		}
	}
	return kept, spans
}

// Chunks collects the chunks and holds of one transaction.
type Chunks struct {
	holder string // who holds the owners refs are made for
	rows   []chunkRow
	seen   map[chunkKey]bool
	memo   map[memoKey]string // payloads already cut, and the large values inside them
	holds  map[holdKey]bool
	cuts   []int
	spans  [][2]int
	marks  []mark
	ins    *sql.Stmt
	hold   *sql.Stmt
}

type chunkRow struct {
	owner string
	hash  []byte
	data  []byte
}

type chunkKey struct {
	owner string
	hash  [hashLen]byte
}

type holdKey struct{ owner, holder string }

// memoKey is a payload already cut, by its content (a view of the
// caller's bytes, which are not changed until Reset).
type memoKey struct {
	owner, content string
}

// mark is where a piece starts in the payload and in its ref.
type mark struct{ at, ref int }

// NewChunks returns a collector whose refs are held by holder (one per
// carrier: "engine", a record's or a message's own name).
func NewChunks(holder string) *Chunks { return &Chunks{holder: holder} }

// Reset empties c for the next transaction.
func (c *Chunks) Reset() {
	clear(c.rows)
	c.rows = c.rows[:0]
	clear(c.seen)
	clear(c.memo)
	clear(c.holds)
}

// Ref returns what to store for payload, a JSON value of owner's: the
// payload itself if small, else its ref, its chunks and owner's hold
// queued for Write.
func (c *Chunks) Ref(owner string, payload []byte) string {
	if len(payload) <= Inline {
		return string(payload)
	}
	return c.RefHeld(owner, c.holder, payload)
}

// RefHeld is Ref with a holder of its own (a message: one per message).
func (c *Chunks) RefHeld(owner, holder string, payload []byte) string {
	if len(payload) <= Inline {
		return string(payload)
	}
	if c.holds == nil { // most payloads are small: no maps for them
		c.seen, c.memo, c.holds = map[chunkKey]bool{}, map[memoKey]string{}, map[holdKey]bool{}
	}
	c.holds[holdKey{owner, holder}] = true
	// By content, not identity: the same bytes come in copies (a task
	// message's body is the MessageBody inside the task's parameters,
	// which were cut already), and a map hashes them far faster than cut
	// and SHA-256.
	mk := memoKey{owner, unsafe.String(unsafe.SliceData(payload), len(payload))}
	if r, ok := c.memo[mk]; ok {
		return r
	}
	ref := make([]byte, 1, 1+(len(payload)/chunkMin+4)*hashLen*2)
	ref[0] = refPrefix
	c.cuts, c.spans = bounds(payload, c.cuts, c.spans)
	c.marks = c.marks[:0]
	known := c.knownSpans(owner, payload)
	cuts, at := c.cuts, 0
	for at < len(payload) {
		c.marks = append(c.marks, mark{at, len(ref)})
		for len(known) > 0 && known[0].start < at {
			known = known[1:] // not at a piece's start: cut as usual
		}
		if len(known) > 0 && known[0].start == at {
			// A large value this transaction cut already (the same output
			// in a task's result, the state's output and the next state's
			// input): its pieces again, without cutting and hashing it.
			ref = append(ref, known[0].ref[1:]...)
			at = known[0].end
			known = known[1:]
			for len(cuts) > 0 && cuts[0] <= at {
				cuts = cuts[1:]
			}
			continue
		}
		end := len(payload)
		if len(cuts) > 0 {
			end = cuts[0]
		}
		// Inline pieces are JSON text in refs that history events encode
		// as JSON strings: only valid UTF-8 goes there unchanged.
		if end-at <= tinyGap && utf8.Valid(payload[at:end]) {
			ref = append(ref, inlineItem)
			ref = strconv.AppendInt(ref, int64(end-at), 10)
			ref = append(ref, inlineItem)
			ref = append(ref, payload[at:end]...)
			at = end
			if len(cuts) > 0 {
				cuts = cuts[1:]
			}
			continue
		}
		n := cut(payload[at:end])
		if at+n == end && len(cuts) > 0 {
			cuts = cuts[1:]
		}
		chunk := payload[at : at+n]
		sum := sha256.Sum256(chunk)
		k := chunkKey{owner: owner}
		copy(k.hash[:], sum[:hashLen])
		if !c.seen[k] {
			c.seen[k] = true
			c.rows = append(c.rows, chunkRow{owner: owner, hash: k.hash[:], data: chunk})
		}
		ref = hex.AppendEncode(ref, k.hash[:])
		at += n
	}
	c.marks = append(c.marks, mark{at, len(ref)})
	r := string(ref)
	c.memo[mk] = r
	// A large value inside is its pieces between its two cut points: a
	// later Ref of the same bytes alone is a lookup.
	for _, sp := range c.spans {
		if sp[1]-sp[0] <= Inline || sp[1]-sp[0] == len(payload) {
			continue
		}
		i, ok := slices.BinarySearchFunc(c.marks, sp[0], func(m mark, at int) int { return m.at - at })
		j, ok2 := slices.BinarySearchFunc(c.marks, sp[1], func(m mark, at int) int { return m.at - at })
		if ok && ok2 {
			k := memoKey{owner, unsafe.String(&payload[sp[0]], sp[1]-sp[0])}
			if _, dup := c.memo[k]; !dup {
				c.memo[k] = string(refPrefix) + r[c.marks[i].ref:c.marks[j].ref]
			}
		}
	}
	return r
}

// knownSpan is a large value inside a payload whose ref the memo has.
type knownSpan struct {
	start, end int
	ref        string
}

// knownSpans returns the large values of payload (c.spans, from bounds)
// already cut in this transaction, outermost only, by where they start.
func (c *Chunks) knownSpans(owner string, payload []byte) []knownSpan {
	var known []knownSpan
	for _, sp := range c.spans {
		if sp[1]-sp[0] <= Inline || sp[1]-sp[0] == len(payload) {
			continue
		}
		if r, ok := c.memo[memoKey{owner, unsafe.String(&payload[sp[0]], sp[1]-sp[0])}]; ok {
			known = append(known, knownSpan{sp[0], sp[1], r})
		}
	}
	if len(known) < 2 {
		return known
	}
	// bounds lists inner values before the ones around them: keep the
	// outer ones, in order.
	slices.SortFunc(known, func(a, b knownSpan) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	outer := known[:1]
	for _, k := range known[1:] {
		if k.start >= outer[len(outer)-1].end {
			outer = append(outer, k)
		}
	}
	return outer
}

// Write inserts the queued chunks (one already stored stays as it is) and
// holds, with statements from prepare, kept until Close.
func (c *Chunks) Write(ctx context.Context, prepare func(query string) (*sql.Stmt, error)) error {
	if len(c.rows) == 0 && len(c.holds) == 0 {
		return nil
	}
	var err error
	if c.ins == nil {
		if c.ins, err = prepare(InsertChunkSQL); err != nil {
			return fmt.Errorf("prepare payload chunk insert: %w", err)
		}
	}
	if c.hold == nil {
		if c.hold, err = prepare(HoldSQL); err != nil {
			return fmt.Errorf("prepare payload hold: %w", err)
		}
	}
	for _, r := range c.rows {
		if _, err := c.ins.ExecContext(ctx, r.owner, r.hash, r.data); err != nil {
			return fmt.Errorf("store payload chunk of %s: %w", r.owner, err)
		}
	}
	for k := range c.holds {
		if _, err := c.hold.ExecContext(ctx, k.owner, k.holder); err != nil {
			return fmt.Errorf("hold payloads of %s: %w", k.owner, err)
		}
	}
	return nil
}

// Close closes the statements of the last Write.
func (c *Chunks) Close() {
	for _, s := range []*sql.Stmt{c.ins, c.hold} {
		if s != nil {
			_ = s.Close() // closing a statement of a finished transaction reports nothing useful
		}
	}
	c.ins, c.hold = nil, nil
}

// Querier is a transaction (or a connection) to read chunks in.
type Querier interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// Reader reads payloads back within one read (or write) transaction.
type Reader struct {
	ctx  context.Context
	q    Querier
	stmt *sql.Stmt
}

// NewReader returns a Reader on q.
func NewReader(ctx context.Context, q Querier) *Reader { return &Reader{ctx: ctx, q: q} }

// Close closes the Reader's statement.
func (r *Reader) Close() {
	if r.stmt != nil {
		_ = r.stmt.Close() // a read statement: nothing to report
	}
}

// Payload returns the stored value v of owner's as JSON: v itself, or the
// chunks its ref names joined.
func (r *Reader) Payload(owner, v string) (json.RawMessage, error) {
	if !IsRef(v) {
		return json.RawMessage(v), nil
	}
	// The ref's pieces: inline bytes as they are, chunks by their hash,
	// all read with one statement.
	type piece struct {
		inline string
		hash   string // hex
	}
	var (
		pieces  []piece
		nChunks int
		hexes   = []byte{'['}
	)
	for rest := v[1:]; rest != ""; {
		if rest[0] == inlineItem {
			num, after, ok := strings.Cut(rest[1:], string(inlineItem))
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 || n > len(after) {
				return nil, fmt.Errorf("payload ref of %s is malformed", owner)
			}
			pieces = append(pieces, piece{inline: after[:n]})
			rest = after[n:]
			continue
		}
		if len(rest) < hashLen*2 {
			return nil, fmt.Errorf("payload ref of %s is malformed", owner)
		}
		h := rest[:hashLen*2]
		if _, err := hex.DecodeString(h); err != nil {
			return nil, fmt.Errorf("payload ref of %s: %w", owner, err)
		}
		pieces = append(pieces, piece{hash: h})
		nChunks++
		if len(hexes) > 1 {
			hexes = append(hexes, ',')
		}
		hexes = append(hexes, '"')
		hexes = append(hexes, h...)
		hexes = append(hexes, '"')
		rest = rest[hashLen*2:]
	}
	hexes = append(hexes, ']')
	if r.stmt == nil {
		var err error
		if r.stmt, err = r.q.PrepareContext(r.ctx, ReadChunkSQL); err != nil {
			return nil, fmt.Errorf("prepare payload chunk read: %w", err)
		}
	}
	rows, err := r.stmt.QueryContext(r.ctx, string(hexes), owner)
	if err != nil {
		return nil, fmt.Errorf("read payload chunks of %s: %w", owner, err)
	}
	defer rows.Close()
	// The rows come in the ref's order (the array is the outer loop):
	// each is appended as it comes, with the inline pieces after it. Rows
	// out of order (another plan) are kept by index and joined at the end.
	var (
		out    = make([]byte, 0, nChunks*(chunkMask+1)+len(v))
		p      int      // next piece
		next   int      // next chunk, by its index in the array
		parts  [][]byte // by index, once a row came out of order
		inline = func() {
			for p < len(pieces) && pieces[p].hash == "" {
				out = append(out, pieces[p].inline...)
				p++
			}
		}
	)
	inline()
	for rows.Next() {
		var (
			k    int
			data sql.RawBytes
		)
		if err := rows.Scan(&k, &data); err != nil {
			return nil, fmt.Errorf("read payload chunks of %s: %w", owner, err)
		}
		if k < 0 || k >= nChunks {
			return nil, fmt.Errorf("read payload chunks of %s: chunk %d of %d", owner, k, nChunks)
		}
		if parts == nil && k == next {
			out = append(out, data...)
			p, next = p+1, next+1
			inline()
			continue
		}
		if parts == nil {
			parts = make([][]byte, nChunks)
		}
		parts[k] = bytes.Clone(data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read payload chunks of %s: %w", owner, err)
	}
	for ; next < nChunks && parts != nil && parts[next] != nil; next++ {
		out = append(out, parts[next]...)
		p++
		inline()
	}
	if next < nChunks {
		return nil, fmt.Errorf("payload chunk %s of %s is missing", pieces[p].hash, owner)
	}
	return out, nil
}

// Optional is Payload for a nullable column.
func (r *Reader) Optional(owner string, v sql.NullString) (json.RawMessage, error) {
	if !v.Valid {
		return nil, nil
	}
	return r.Payload(owner, v.String)
}

// Release drops holder's hold on owner's chunks in the transaction q, and
// deletes them if it was the last. q prepares UnholdSQL and DropChunksSQL
// (a transaction, or one that hands out statements prepared once).
func Release(ctx context.Context, q Querier, owner, holder string) error {
	for _, st := range []struct {
		query string
		args  []any
		what  string
	}{{UnholdSQL, []any{owner, holder}, "release"}, {DropChunksSQL, []any{owner, owner}, "delete"}} {
		stmt, err := q.PrepareContext(ctx, st.query)
		if err != nil {
			return fmt.Errorf("%s payloads of %s: %w", st.what, owner, err)
		}
		_, err = stmt.ExecContext(ctx, st.args...)
		_ = stmt.Close() // a statement of the caller's transaction: its outcome is err
		if err != nil {
			return fmt.Errorf("%s payloads of %s: %w", st.what, owner, err)
		}
	}
	return nil
}
