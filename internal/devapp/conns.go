package devapp

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/longrun/longrun"
)

// DefaultMaxConnections bounds the HTTP connections longrun dev keeps open,
// well under the usual 1,024-descriptor limit (the SQLite file, the
// webhook client and the process need some too).
const DefaultMaxConnections = 512

// connLimiter bounds the open connections of an http.Server. At the bound,
// a new connection takes the place of the oldest one doing nothing — idle
// between keep-alive requests, or open without having sent a request — so
// clients holding connections they do not use (a thousand idle keep-alives,
// or slowloris) never keep new requests out, as a listener that merely
// waits for a free slot (netutil.LimitListener) would. Only when every
// connection is in the middle of a request is the new one refused, with a
// 503 and Retry-After.
type connLimiter struct {
	net.Listener
	max   int
	clock longrun.Clock // real time: it only orders idle connections, which a fake clock would tie

	mu    sync.Mutex
	conns map[net.Conn]*connState
}

type connState struct {
	idle  bool      // new or idle: it may be closed to make room
	since time.Time // when it became so
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, clock: longrun.SystemClock{}, conns: map[net.Conn]*connState{}}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.admit(c) {
			return c, nil
		}
		go refuse(c)
	}
}

// admit makes room for c if it can, and tracks it.
func (l *connLimiter) admit(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= l.max {
		var oldest net.Conn
		for cc, s := range l.conns {
			if s.idle && (oldest == nil || s.since.Before(l.conns[oldest].since)) {
				oldest = cc
			}
		}
		if oldest == nil {
			return false
		}
		delete(l.conns, oldest)
		_ = oldest.Close() // its server goroutine ends on the read error
	}
	l.conns[c] = &connState{idle: true, since: l.clock.Now()}
	return true
}

// track is the http.Server's ConnState hook.
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.conns[c]
	if !ok {
		return
	}
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	case http.StateActive:
		s.idle = false
	case http.StateIdle, http.StateNew:
		s.idle, s.since = true, l.clock.Now()
	}
}

// refuse answers a connection over the bound with 503 and closes it.
func refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}
