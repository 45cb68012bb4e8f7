package raftgroup

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Every connection on the cluster port starts with a fixed header naming the Raft group
// it carries, so that one TCP port serves every group of a node (rqlite's tcp/mux idea,
// with a group id instead of a single type byte).
const (
	muxMagic0     = 'R'
	muxMagic1     = 'K'
	muxVersion    = 1
	muxHeaderSize = 7 // magic(2) version(1) group(4)
	// headerTimeout bounds how long a peer may take to complete its TLS handshake (with
	// TLS) and send its header, so a silent or malformed connection cannot pin an
	// accept slot.
	headerTimeout = 5 * time.Second
)

// ErrMuxClosed is returned by Accept on a stream layer whose mux or group was closed.
var ErrMuxClosed = errors.New("raftgroup: mux closed")

// encodeMuxHeader returns the header that routes a connection to group.
func encodeMuxHeader(group uint32) []byte {
	h := make([]byte, muxHeaderSize)
	h[0], h[1], h[2] = muxMagic0, muxMagic1, muxVersion
	binary.BigEndian.PutUint32(h[3:], group)
	return h
}

// decodeMuxHeader parses a connection header; it rejects anything not written by
// encodeMuxHeader.
func decodeMuxHeader(h []byte) (uint32, error) {
	if len(h) != muxHeaderSize || h[0] != muxMagic0 || h[1] != muxMagic1 {
		return 0, errors.New("raftgroup: bad connection header")
	}
	if h[2] != muxVersion {
		return 0, fmt.Errorf("raftgroup: unsupported connection header version %d", h[2])
	}
	return binary.BigEndian.Uint32(h[3:]), nil
}

// Mux accepts connections on the node's cluster port and hands each to the stream
// layer of the group named in its header. Connections for unknown groups, or with a
// malformed header, are closed: the dialling peer's transport retries later. With
// TLS (WithTLS, muxtls.go) a connection is handed over only after a completed
// handshake, and a refused one is counted and logged.
type Mux struct {
	ln     net.Listener
	adv    net.Addr
	log    *slog.Logger
	tls    *MuxTLS // nil: plaintext
	ctx    context.Context
	cancel context.CancelFunc // on Close: handshakes in progress stop
	mu     sync.Mutex
	layers map[uint32]*streamLayer
	closed bool
	wg     sync.WaitGroup

	refusals     refusalLog
	dialFailures atomic.Uint64
}

// NewMux serves ln; call Close to stop it. advertise is the address peers dial (it is
// what Raft records as this node's address); empty means the listener's own address.
// Without options the port is plaintext; WithTLS makes it mutual TLS.
func NewMux(ln net.Listener, advertise string, log *slog.Logger, opts ...MuxOption) (*Mux, error) {
	var adv net.Addr = ln.Addr()
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err != nil {
			return nil, fmt.Errorf("advertise raft address %q: %w", advertise, err)
		}
		// Kept as written (a DNS name stays a name): Raft compares it with the
		// addresses in its configuration, and peers dial it.
		adv = advertisedAddr(advertise)
	}
	m := &Mux{ln: ln, adv: adv, log: log, layers: map[uint32]*streamLayer{}}
	for _, o := range opts {
		o(m)
	}
	if m.tls != nil {
		if err := m.tls.validate(); err != nil {
			return nil, err
		}
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

// Addr is the advertised address.
func (m *Mux) Addr() net.Addr { return m.adv }

func (m *Mux) serve() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if closed {
				return
			}
			m.log.Warn("cluster accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // back off on e.g. EMFILE, not a test sleep
			continue
		}
		go m.route(conn)
	}
}

// route runs in its own goroutine per accepted connection, never in the accept loop:
// a handshake or header that takes its time holds up no other connection.
func (m *Mux) route(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(headerTimeout))
	if m.tls != nil {
		tc := tls.Server(conn, m.tls.Server)
		if err := tc.HandshakeContext(m.ctx); err != nil {
			if m.ctx.Err() == nil {
				m.refusals.refused(m.log, conn.RemoteAddr(), err)
			}
			conn.Close()
			return
		}
		conn = tc
	}
	h := make([]byte, muxHeaderSize)
	if _, err := io.ReadFull(conn, h); err != nil {
		conn.Close()
		return
	}
	group, err := decodeMuxHeader(h)
	if err != nil {
		m.log.Warn("dropping cluster connection", "remote", conn.RemoteAddr(), "err", err)
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	m.mu.Lock()
	l := m.layers[group]
	m.mu.Unlock()
	if l == nil || !l.deliver(conn) {
		conn.Close()
	}
}

// Layer registers group and returns the raft.StreamLayer for it.
func (m *Mux) Layer(group uint32) raft.StreamLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &streamLayer{group: group, addr: m.adv, conns: make(chan net.Conn, 16), done: make(chan struct{}), mux: m,
		open: map[*trackedConn]struct{}{}}
	if old := m.layers[group]; old != nil {
		old.shut()
	}
	m.layers[group] = l
	return l
}

func (m *Mux) unregister(l *streamLayer) {
	m.mu.Lock()
	if m.layers[l.group] == l {
		delete(m.layers, l.group)
	}
	m.mu.Unlock()
}

// Close stops accepting and closes every stream layer.
func (m *Mux) Close() error {
	m.mu.Lock()
	m.closed = true
	for _, l := range m.layers {
		l.shut()
	}
	m.layers = map[uint32]*streamLayer{}
	m.mu.Unlock()
	m.cancel()
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// advertisedAddr is an address as configured, host name included.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// streamLayer is one group's view of the shared port. It keeps every connection it
// dialled or accepted, and Close closes them: an RPC blocked on a peer that stopped
// answering (a partition, a paused node) then fails at once instead of holding the
// replica's shutdown for the transport's timeout, or for good in a pipeline
// (hashicorp/raft#612, grafana/pyroscope#5518).
type streamLayer struct {
	group  uint32
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	done   chan struct{}
	mux    *Mux
	mu     sync.Mutex
	open   map[*trackedConn]struct{}
	closed bool
}

// track registers c, or closes it when the layer is closed already.
func (l *streamLayer) track(c net.Conn) (net.Conn, error) {
	t := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, ErrMuxClosed
	}
	l.open[t] = struct{}{}
	return t, nil
}

// trackedConn leaves its layer's set when closed.
type trackedConn struct {
	net.Conn
	l    *streamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func (l *streamLayer) deliver(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	case <-time.After(headerTimeout):
		return false
	}
}

func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return l.track(c)
	case <-l.done:
		return nil, ErrMuxClosed
	}
}

func (l *streamLayer) shut() { l.once.Do(func() { close(l.done) }) }

func (l *streamLayer) Close() error {
	l.shut()
	l.mux.unregister(l)
	l.mu.Lock()
	l.closed = true
	open := l.open
	l.open = map[*trackedConn]struct{}{}
	l.mu.Unlock()
	for c := range open {
		rawConn(c.Conn).Close()
	}
	return nil
}

func (l *streamLayer) Addr() net.Addr { return l.addr }

// Dial connects to a peer's cluster port: TCP, then (with TLS) the handshake, then the
// group header, all within timeout.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	// A dial to a peer whose packets are dropped waits out its timeout; closing the
	// layer cancels it, so a shutdown does not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	if t := l.mux.tls; t != nil {
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			conn.Close()
			return nil, err
		}
		cfg := t.Client(host)
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if !errors.Is(ctx.Err(), context.Canceled) {
				l.mux.dialFailures.Add(1) // not when the layer closed under it
			}
			return nil, fmt.Errorf("raftgroup: TLS handshake with %s: %w", address, err)
		}
		conn = tc
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetWriteDeadline(deadline)
	if _, err := conn.Write(encodeMuxHeader(l.group)); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return l.track(conn)
}
