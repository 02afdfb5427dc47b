package sqlite

import (
	"cmp"
	"context"
	"encoding/binary"
	"io"
	"os"
	"slices"
	"sync"
)

// Page profile: which tables the bytes written to the disk belong to, for
// the benchmarks (docs/benchmarks.md). Off unless ProfilePages is called;
// on, every checkpoint first reads the WAL frames appended since the last
// one and names each frame's page by dbstat (a scan of the whole file, so
// only for measuring). A page's owner is the one at the checkpoint: a page
// freed and reused in between counts for its new owner, and a page freed
// and not yet reused shows as "(free or new)".

// PageProfile is what ProfilePages recorded, per table or index: the WAL
// frames written (each a page and its 24-byte header) and the pages the
// checkpoints copied into the file (each page once per checkpoint however
// many frames it had).
type PageProfile struct {
	PageSize int64
	Tables   []TablePages // most bytes first
}

// TablePages is one table's or index's share of a PageProfile.
type TablePages struct {
	Name         string
	WALFrames    int64
	Checkpointed int64
}

type pageProfiler struct {
	mu       sync.Mutex
	off      int64   // next frame to read in the WAL
	salt     [8]byte // the WAL's salts when off was set: a rewound WAL has new ones
	page     int64
	pending  map[uint32]int64 // frames per page since the last attribution
	frames   map[string]int64
	copied   map[string]int64
	pageSize int64
}

// ProfilePages starts (or restarts) the page profile.
func (db *DB) ProfilePages() {
	db.ckpt.pages.Store(&pageProfiler{pending: map[uint32]int64{}, frames: map[string]int64{}, copied: map[string]int64{}})
}

// PageProfile returns the page profile since ProfilePages, after
// attributing what the WAL holds now; zero if it was never called.
func (db *DB) PageProfile() PageProfile {
	pp := db.ckpt.pages.Load()
	if pp == nil {
		return PageProfile{}
	}
	db.ckpt.attributePages()
	pp.mu.Lock()
	defer pp.mu.Unlock()
	out := PageProfile{PageSize: pp.pageSize}
	for name, n := range pp.frames {
		out.Tables = append(out.Tables, TablePages{Name: name, WALFrames: n, Checkpointed: pp.copied[name]})
	}
	slices.SortFunc(out.Tables, func(a, b TablePages) int {
		return cmp.Compare(b.WALFrames+b.Checkpointed, a.WALFrames+a.Checkpointed)
	})
	return out
}

// attributePages reads the WAL frames appended since the last call and
// names their pages; each page counts once as checkpointed.
func (c *checkpointer) attributePages() {
	pp := c.pages.Load()
	if pp == nil {
		return
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.readFrames(c.walPath)
	if len(pp.pending) == 0 {
		return
	}
	owner := map[uint32]string{}
	rows, err := c.conn.QueryContext(context.Background(), `SELECT pageno, name FROM dbstat`)
	if err == nil {
		for rows.Next() {
			var p uint32
			var name string
			if rows.Scan(&p, &name) == nil {
				owner[p] = name
			}
		}
		rows.Close()
	}
	for p, n := range pp.pending {
		name, ok := owner[p]
		if !ok {
			name = "(free or new)"
		}
		pp.frames[name] += n
		pp.copied[name]++
	}
	clear(pp.pending)
}

// readFrames adds the frames of the WAL file at path past pp.off to
// pp.pending (WAL format: a 32-byte header, then frames of a 24-byte
// header and a page; a frame whose salts differ from the header's is left
// from before the WAL was rewound).
func (pp *pageProfiler) readFrames(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return
	}
	pp.page = int64(binary.BigEndian.Uint32(hdr[8:12]))
	pp.pageSize = pp.page
	var salt [8]byte
	copy(salt[:], hdr[16:24])
	if salt != pp.salt || pp.off < 32 {
		pp.salt, pp.off = salt, 32
	}
	fh := make([]byte, 24)
	for {
		if _, err := f.ReadAt(fh, pp.off); err != nil || [8]byte(fh[8:16]) != salt {
			return
		}
		pp.pending[binary.BigEndian.Uint32(fh[0:4])]++
		pp.off += 24 + pp.page
	}
}
