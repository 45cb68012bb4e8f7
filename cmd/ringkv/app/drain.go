package app

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A node that stops gracefully hands its leaderships off, then goes on serving for a
// moment before its listener closes: other nodes that chose it as a group's leader
// just before the hand-off still send it requests (and keep idle keep-alive
// connections to it). Served, such a request is forwarded to the new leader, or
// refused as "not the leader" with nothing done, and its sender follows the leader.
// Closed under them, a forwarded write would get EOF and an unknown outcome.
const (
	drainQuiet = 250 * time.Millisecond // no request for this long: nobody still counts on this node
	drainMax   = 2 * time.Second        // the most a graceful stop spends draining
)

// drain tracks when the last HTTP request arrived (other than the placement service's
// probes), and while the node drains asks
// every client to close its connection after its answer (Connection: close), so the
// connections left when the listener closes are idle ones nobody is about to use.
type drain struct {
	last     atomic.Int64 // unix nanoseconds of the latest request's arrival
	draining atomic.Bool
	stopping atomic.Bool // a graceful stop has begun: said in the node's probe answers

	// fresh holds the connections that have not carried a request yet. Go's HTTP
	// clients open such connections ahead (a dial that lost the race to a connection
	// freed meanwhile goes to the idle pool unused), and http.Server.Shutdown counts
	// one as busy for its first 5 s: a graceful stop waited 5 s on one.
	mu    sync.Mutex
	fresh map[net.Conn]time.Time // when each was accepted
}

// connState is the server's http.Server.ConnState hook: it tracks fresh connections.
func (d *drain) connState(c net.Conn, st http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st != http.StateNew {
		delete(d.fresh, c)
		return
	}
	if d.fresh == nil {
		d.fresh = map[net.Conn]time.Time{}
	}
	d.fresh[c] = time.Now()
}

// freshFor is how long a connection must have carried nothing before closeFresh closes
// it: a connection stays "new" until its first request's header is read, so one just
// opened may have a request on its way, which closing it would lose.
const freshFor = time.Second

// closeFresh closes the connections that have carried no request for freshFor since
// they were accepted, as Shutdown closes idle ones: nothing was sent on them.
func (d *drain) closeFresh() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, accepted := range d.fresh {
		if time.Since(accepted) < freshFor {
			continue
		}
		_ = c.Close()
	}
}

func (d *drain) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/internal/") { // probes come every second whatever happens
			d.last.Store(time.Now().UnixNano())
		}
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// await starts draining and returns once no request has arrived for quiet, or after
// max, with how long it waited.
func (d *drain) await(quiet, max time.Duration) time.Duration {
	d.draining.Store(true)
	start := time.Now()
	t := time.NewTicker(quiet / 10)
	defer t.Stop()
	for {
		now := time.Now()
		if now.Sub(time.Unix(0, d.last.Load())) >= quiet || now.Sub(start) >= max {
			return now.Sub(start)
		}
		<-t.C
	}
}
