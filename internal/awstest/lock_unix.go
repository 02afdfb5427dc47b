//go:build unix

package awstest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockIntegrations takes the machine-wide lock on port 4566, waiting up to
// wait for another test binary to exit. The caller keeps the file open for
// the life of the process (a collected *os.File would close it and drop the
// lock); the kernel releases the lock when the process exits, however it
// exits.
func lockIntegrations(wait time.Duration) (*os.File, error) {
	path := filepath.Join(os.TempDir(), "longrun-awstest-4566.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != syscall.EWOULDBLOCK {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("another test binary has held %s (port 4566 for kumo's Step Functions integrations) for over %s; "+
				"run fewer packages at once (go test -p 1) or find the stuck process", path, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
