package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
)

var migrationName = regexp.MustCompile(`^(\d+)_[\w.-]+\.sql$`)

type migration struct {
	version int
	file    string
}

// Migrate applies the migrations of set name found at the top of fsys, files
// named NNN_description.sql, that schema_version does not yet record. Each
// runs in its own write transaction with its record, so a failed migration
// leaves the file at the previous version. A file already at a version newer
// than any in fsys is refused: an older binary must not write a schema it
// does not know.
func (db *DB) Migrate(ctx context.Context, name string, fsys fs.FS) error {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return fmt.Errorf("migrations %s: %w", name, err)
	}
	var list []migration
	seen := map[int]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v <= 0 {
			return fmt.Errorf("migrations %s: bad version in %s", name, e.Name())
		}
		if other, dup := seen[v]; dup {
			return fmt.Errorf("migrations %s: %s and %s share version %d", name, other, e.Name(), v)
		}
		seen[v] = e.Name()
		list = append(list, migration{v, e.Name()})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].version < list[j].version })

	current, err := db.schemaVersion(ctx, name)
	if err != nil {
		return err
	}
	if len(list) > 0 && current > list[len(list)-1].version {
		return fmt.Errorf("migrations %s: %s is at version %d, newer than this binary's %d", name, db.path, current, list[len(list)-1].version)
	}
	for _, m := range list {
		if m.version <= current {
			continue
		}
		body, err := fs.ReadFile(fsys, m.file)
		if err != nil {
			return fmt.Errorf("migration %s/%s: %w", name, m.file, err)
		}
		err = db.Write(ctx, func(tx *sql.Tx) error {
			// Another process may have migrated since we looked.
			var done int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_version WHERE name = ? AND version = ?`, name, m.version).Scan(&done); err != nil {
				return err
			}
			if done > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (name, version, applied_at) VALUES (?, ?, ?)`,
				name, m.version, toMillis(db.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s/%s: %w", name, m.file, err)
		}
		db.log.InfoContext(ctx, "sqlite migrated", "path", db.path, "set", name, "version", m.version)
	}
	return nil
}

// SchemaVersion returns the highest applied version of migration set name, 0 for none.
func (db *DB) SchemaVersion(ctx context.Context, name string) (int, error) {
	return db.schemaVersion(ctx, name)
}

func (db *DB) schemaVersion(ctx context.Context, name string) (int, error) {
	var v sql.NullInt64
	err := db.Read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT max(version) FROM schema_version WHERE name = ?`, name).Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("schema version of %s: %w", name, err)
	}
	return int(v.Int64), nil
}
