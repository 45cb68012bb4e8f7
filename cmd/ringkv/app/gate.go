package app

import (
	"net"
	"sync"
)

// gatedListener holds back the cluster port's connections until it is opened. A node
// started with --join from a data dir that never held the cluster's table keeps it
// shut until the cluster has accepted its join: were it reachable before, a node whose
// disk was wiped but whose id and addresses are a member's would be sent that member's
// Raft traffic (and vote and ack entries with an empty log) before its join is refused.
type gatedListener struct {
	net.Listener
	open, done         chan struct{}
	openOnce, doneOnce sync.Once
}

func newGatedListener(ln net.Listener, open bool) *gatedListener {
	g := &gatedListener{Listener: ln, open: make(chan struct{}), done: make(chan struct{})}
	if open {
		g.Open()
	}
	return g
}

// Open lets connections through; idempotent.
func (g *gatedListener) Open() { g.openOnce.Do(func() { close(g.open) }) }

// Accept waits until the gate is open, then accepts.
func (g *gatedListener) Accept() (net.Conn, error) {
	select {
	case <-g.open:
	case <-g.done:
		return nil, net.ErrClosed
	}
	return g.Listener.Accept()
}

// Close closes the listener and ends a waiting Accept.
func (g *gatedListener) Close() error {
	g.doneOnce.Do(func() { close(g.done) })
	return g.Listener.Close()
}
