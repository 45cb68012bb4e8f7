package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"golang.org/x/net/netutil"
)

// DefaultMaxConnections is how many client connections a node holds open at most.
// Beyond it, connections wait in the kernel's accept queue instead of taking file
// descriptors the node needs for its Raft traffic, data files and replies; 20,000
// idle keep-alive connections once took every descriptor a node had, and it answered
// nothing, not even /readyz, until they closed.
const DefaultMaxConnections = 8192

// LimitConnections makes srv hold at most maxConns connections from ln (hard cap,
// golang.org/x/net/netutil.LimitListener), and shed idle keep-alive connections when
// the count passes 7/8 of it: keep-alives are turned off, which closes the idle ones
// and every connection after its answer, and back on once the count is down to half.
// So idle connections cannot keep out the requests that would use them. It returns
// the listener to serve.
func LimitConnections(srv *http.Server, ln net.Listener, maxConns int, log *slog.Logger) net.Listener {
	g := &connGuard{srv: srv, high: int64(maxConns) * 7 / 8, low: int64(maxConns) / 2, log: log}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		g.state(st)
		if prev != nil {
			prev(c, st)
		}
	}
	return netutil.LimitListener(ln, maxConns)
}

type connGuard struct {
	srv       *http.Server
	open      atomic.Int64
	high, low int64
	shedding  atomic.Bool
	log       *slog.Logger
}

func (g *connGuard) state(st http.ConnState) {
	switch st {
	case http.StateNew:
		if n := g.open.Add(1); n >= g.high && g.shedding.CompareAndSwap(false, true) {
			g.log.Warn("too many client connections: closing idle keep-alive connections", "open", n)
			// No lock of the server's is held during this callback (net/http calls it
			// after tracking the connection), and closing idle connections takes one.
			g.srv.SetKeepAlivesEnabled(false)
		}
	case http.StateClosed, http.StateHijacked:
		if n := g.open.Add(-1); n <= g.low && g.shedding.CompareAndSwap(true, false) {
			g.log.Info("client connections back to normal: keep-alive on again", "open", n)
			g.srv.SetKeepAlivesEnabled(true)
		}
	}
}
