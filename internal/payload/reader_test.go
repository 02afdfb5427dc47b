package payload_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/longrun/longrun/internal/payload"
	"github.com/longrun/longrun/internal/sqlite"
)

// reversed prepares the chunk read with its rows in reverse order, as
// another query plan could return them.
type reversed struct{ tx *sql.Tx }

func (r reversed) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if query == payload.ReadChunkSQL {
		query = `SELECT key, data FROM (` + query + `) ORDER BY key DESC`
	}
	return r.tx.PrepareContext(ctx, query)
}

// A payload written as chunks reads back exactly, whatever order the rows
// come in, and a chunk that is not there is an error, not a shorter payload.
func TestReadBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longrun.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := make([]byte, 48<<10)
	r := rand.New(rand.NewPCG(4, 4))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	text := base64.StdEncoding.EncodeToString(raw)
	doc := `{"a":"` + text + `","b":["` + text[:5000] + `","` + text[:5000] + `"],"c":1}`

	var ref string
	c := payload.NewChunks("test")
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		ref = c.Ref("owner", []byte(doc))
		defer c.Close()
		return c.Write(ctx, func(q string) (*sql.Stmt, error) { return tx.PrepareContext(ctx, q) })
	}); err != nil {
		t.Fatal(err)
	}
	if !payload.IsRef(ref) {
		t.Fatalf("a %d-byte payload stored as it is", len(doc))
	}
	read := func(q func(tx *sql.Tx) payload.Querier) (string, error) {
		var got []byte
		err := db.Read(ctx, func(tx *sql.Tx) error {
			rd := payload.NewReader(ctx, q(tx))
			defer rd.Close()
			var err error
			got, err = rd.Payload("owner", ref)
			return err
		})
		return string(got), err
	}
	for name, q := range map[string]func(tx *sql.Tx) payload.Querier{
		"in order": func(tx *sql.Tx) payload.Querier { return tx },
		"reversed": func(tx *sql.Tx) payload.Querier { return reversed{tx} },
	} {
		if got, err := read(q); err != nil || got != doc {
			t.Errorf("%s: %v, %d bytes read, want the %d written", name, err, len(got), len(doc))
		}
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM payload_chunks WHERE rowid = (SELECT max(rowid) FROM payload_chunks)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := read(func(tx *sql.Tx) payload.Querier { return tx }); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a chunk deleted: %v, %d bytes", err, len(got))
	}
}
