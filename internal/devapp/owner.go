package devapp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFile is the file in a data directory that its owner holds locked.
const LockFile = "longrun.lock"

// ErrDataDirInUse is what Open returns (wrapped, naming the owner) when
// another live process owns the data directory.
var ErrDataDirInUse = errors.New("the data directory is in use")

// owner is this process's ownership of a data directory: an exclusive,
// non-blocking lock (flock) on LockFile, held as long as the file is open.
// The kernel drops it when the process dies, however it dies, so a lock
// that can be taken proves that no other process serves the directory and
// that every lease found in it belongs to a dead process.
type owner struct{ f *os.File }

// own takes dataDir's lock and writes who holds it (pid, URL, start time)
// into the file, for the next process that tries to read.
func own(dataDir, url string, now time.Time) (*owner, error) {
	path := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, errLocked) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "a process that is still starting"
			}
			return nil, fmt.Errorf("%w: %s is served by another longrun dev (%s); stop that one, or pass another --data-dir", ErrDataDirInUse, dataDir, who)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	who := "pid " + strconv.Itoa(os.Getpid()) + ", " + url + ", since " + now.UTC().Format(time.RFC3339)
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(who+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &owner{f: f}, nil
}

// release gives the directory up.
func (o *owner) release() error {
	if o == nil {
		return nil
	}
	return o.f.Close() // closing the last descriptor drops the flock
}
