package raftgroup

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// withLog gives a test's mux its own logger.
func withLog(l *slog.Logger) MuxOption { return func(m *Mux) { m.log = l } }

// syncBuffer is a log a test reads while the mux writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitUntil polls cond every 10 ms for at most within.
func waitUntil(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

// settled waits until every replica has applied what the leader has.
func (rs *replicaSet) settled(tb testing.TB) {
	tb.Helper()
	waitUntil(tb, 10*time.Second, "the replicas to apply the leader's entries", func() bool {
		want := rs.leader(tb, 10*time.Second).Applied()
		for _, g := range rs.groups {
			if g.Applied() != want {
				return false
			}
		}
		return true
	})
}

func (rs *replicaSet) addr(i int) raft.ServerAddress {
	return raft.ServerAddress(rs.groups[i].mux.Addr().String())
}

// follower is the index of a replica that does not lead.
func (rs *replicaSet) follower(tb testing.TB) int {
	leader := rs.leader(tb, 10*time.Second)
	for i, g := range rs.groups {
		if g != leader {
			return i
		}
	}
	tb.Fatal("no follower")
	return -1
}

// TestForgedRaftMessagesReachAPlaintextGroup is the baseline the TLS tests refuse:
// on a plaintext cluster port the forger's AppendEntries writes a key no client
// proposed, and its RequestVote is granted and raises the term. It is what proves
// the forger speaks Raft's wire protocol for real.
func TestForgedRaftMessagesReachAPlaintextGroup(t *testing.T) {
	rs := startReplicaSet(t, Tuning{})
	rs.put(t, "k", "v", 10*time.Second)
	rs.settled(t)
	f := rs.follower(t)
	forger := newForger(t, 1, plainDial)

	idx, lastTerm := lastLog(t, rs.groups[f])
	term := rs.groups[f].Raft().CurrentTerm() + 100
	ok, err := forgeAppend(forger, rs.addr(f), term, idx, lastTerm, idx+1, []*raft.Log{forgedPut(idx+1, term, "forged", "by nobody")})
	if err != nil || !ok {
		t.Fatalf("forged AppendEntries on plaintext: success %v, %v", ok, err)
	}
	waitUntil(t, 10*time.Second, "the forged entry to be applied", func() bool { return rs.value(t, f, "forged") == "by nobody" })

	voter := (f + 1) % 3
	granted, err := forgeVote(forger, rs.addr(voter), term+100, "n1")
	if err != nil || !granted {
		t.Fatalf("forged RequestVote on plaintext: granted %v, %v", granted, err)
	}
	if got := rs.groups[voter].Raft().CurrentTerm(); got < term+100 {
		t.Fatalf("term %d after a granted vote at %d", got, term+100)
	}
}

// replicaState is what a forged message would change.
type replicaState struct{ term, applied, last uint64 }

func (rs *replicaSet) states() []replicaState {
	out := make([]replicaState, len(rs.groups))
	for i, g := range rs.groups {
		out[i] = replicaState{g.Raft().CurrentTerm(), g.Applied(), g.Raft().LastIndex()}
	}
	return out
}

// TestTLSMuxReplicatesAndRefusesForgers runs one group on three muxes with mutual
// TLS: it elects and replicates; then the forgers of the plaintext test, dialling in
// plaintext, with a node certificate of another CA, with a client certificate
// CN=admin of the cluster's CA, or with TLS and no certificate, are all refused at
// the handshake: their RPCs fail, no replica's term, applied or last index moves,
// the forged key is nowhere, and each refusal is counted, the first from a host
// logged at WARN with its reason.
func TestTLSMuxReplicatesAndRefusesForgers(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	logs := make([]*syncBuffer, 3)
	muxes := newMuxes(t, 3, func(i int) []MuxOption {
		logs[i] = &syncBuffer{}
		return []MuxOption{WithTLS(ca.muxTLS(ca.sign(t, "node"))), withLog(slog.New(slog.NewTextHandler(logs[i], nil)))}
	})
	// Long timeouts: no election may happen by itself while the test compares terms.
	rs := startReplicaSetOn(t, muxes, Tuning{HeartbeatTimeout: 2 * time.Second, ElectionTimeout: 2 * time.Second})
	rs.put(t, "k", "over TLS", 10*time.Second)
	waitUntil(t, 10*time.Second, "the write on every replica", func() bool {
		for i := range rs.groups {
			if rs.value(t, i, "k") != "over TLS" {
				return false
			}
		}
		return true
	})
	rs.settled(t)
	leader := rs.leader(t, time.Second)
	l, f := 0, rs.follower(t)
	for i, g := range rs.groups {
		if g == leader {
			l = i
		}
	}
	before := rs.states()

	otherNode, admin := other.sign(t, "node"), ca.sign(t, "admin")
	forgers := []struct {
		name string
		dial func(string, time.Duration) (net.Conn, error)
	}{
		{"plaintext", plainDial},
		{"node certificate of another CA", tlsDial(&otherNode)},
		{"client certificate CN=admin of the cluster's CA", tlsDial(&admin)},
		{"TLS without a certificate", tlsDial(nil)},
	}
	for _, fg := range forgers {
		forger := newForger(t, 1, fg.dial)
		idx, lastTerm := before[f].last, before[f].term
		term := before[f].term + 100
		if ok, err := forgeAppend(forger, rs.addr(f), term, idx, lastTerm, idx+1, []*raft.Log{forgedPut(idx+1, term, "forged", fg.name)}); err == nil {
			t.Errorf("%s: forged AppendEntries answered (success %v)", fg.name, ok)
		}
		if granted, err := forgeVote(forger, rs.addr(l), term, "n1"); err == nil {
			t.Errorf("%s: forged RequestVote answered (granted %v)", fg.name, granted)
		}
	}
	if after := rs.states(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("replica state (term, applied, last index) moved: before %v, after %v", before, after)
	}
	for i := range rs.groups {
		if v := rs.value(t, i, "forged"); v != "" {
			t.Fatalf("replica %d holds the forged key: %q", i, v)
		}
	}
	for _, i := range []int{f, l} {
		waitUntil(t, 5*time.Second, "the refusals to be counted", func() bool {
			return muxes[i].HandshakeFailures().Inbound == uint64(len(forgers))
		})
		out := logs[i].String()
		if n := strings.Count(out, "refused cluster connection"); n != 1 {
			t.Fatalf("mux %d logged %d refusals from one host in 10 s, want 1:\n%s", i, n, out)
		}
		for _, want := range []string{"level=WARN", "remote=127.0.0.1:", "first record does not look like a TLS handshake"} {
			if !strings.Contains(out, want) {
				t.Fatalf("mux %d's refusal line lacks %q:\n%s", i, want, out)
			}
		}
	}
	// The group still works, over TLS.
	rs.put(t, "k2", "still", 10*time.Second)
}

func TestRefusalLogIsRateLimitedPerHost(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var r refusalLog
	a1, a2 := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40001}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40002}
	b := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 40001}
	for _, a := range []net.Addr{a1, a2, a1, b} {
		r.refused(log, a, io.ErrUnexpectedEOF)
	}
	if got := strings.Count(buf.String(), "refused cluster connection"); got != 2 || r.count.Load() != 4 {
		t.Fatalf("%d lines, %d counted, want 2 and 4:\n%s", got, r.count.Load(), buf.String())
	}
	// Once the period has passed, the next line says how many were left out.
	r.mu.Lock()
	h := r.last["10.0.0.1"]
	h.at = h.at.Add(-refusalLogEvery)
	r.last["10.0.0.1"] = h
	r.mu.Unlock()
	r.refused(log, a1, io.ErrUnexpectedEOF)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if last := lines[len(lines)-1]; len(lines) != 3 || !strings.Contains(last, "remote=10.0.0.1:40001") || !strings.Contains(last, "suppressed=2") {
		t.Fatalf("want a third line for 10.0.0.1 with suppressed=2:\n%s", buf.String())
	}
}

// TestTLSDialToAPlaintextPortFails: a TLS mux dialling a plaintext one fails in the
// handshake and counts it; the plaintext side drops the bytes as a bad header.
func TestTLSDialToAPlaintextPortFails(t *testing.T) {
	ca := newTestCA(t)
	plain := newMuxes(t, 1, nil)[0]
	plain.Layer(1)
	secure := newMuxes(t, 1, func(int) []MuxOption { return []MuxOption{WithTLS(ca.muxTLS(ca.sign(t, "node")))} })[0]
	if c, err := secure.Layer(1).Dial(raft.ServerAddress(plain.Addr().String()), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("a TLS dial to a plaintext port succeeded")
	}
	if got := secure.HandshakeFailures().Outbound; got != 1 {
		t.Fatalf("outbound handshake failures %d, want 1", got)
	}
}

// TestClosingStopsHandshakesInProgress: a dial whose peer never answers the handshake
// returns when its layer closes, and an accepted connection that never starts one is
// dropped when the mux closes, without waiting out their timeouts or counting them.
func TestClosingStopsHandshakesInProgress(t *testing.T) {
	ca := newTestCA(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never read
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMux(ln, "", quiet, WithTLS(ca.muxTLS(ca.sign(t, "node"))))
	if err != nil {
		t.Fatal(err)
	}
	layer := m.Layer(1)
	dialed := make(chan error, 1)
	go func() {
		_, err := layer.Dial(raft.ServerAddress(silent.Addr().String()), time.Minute)
		dialed <- err
	}()
	idle, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// Connections are accepted in order: once a later one has reached its layer, the
	// idle one has been accepted and is in its handshake.
	peer := newMuxes(t, 1, func(int) []MuxOption { return []MuxOption{WithTLS(ca.muxTLS(ca.sign(t, "node")))} })[0]
	c, err := peer.Layer(1).Dial(raft.ServerAddress(m.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accept(t, layer).Close()
	start := time.Now()
	m.Close()
	select {
	case err := <-dialed:
		if err == nil {
			t.Fatal("the dial succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dial went on after its layer closed")
	}
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the idle connection was kept after the mux closed: %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("closing took %v", time.Since(start))
	}
	if got := m.HandshakeFailures(); got != (HandshakeFailures{}) {
		t.Fatalf("handshakes stopped by Close were counted: %+v", got)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestNewMuxNeedsBothTLSConfigs: half a TLS setup is refused, not run as plaintext.
func TestNewMuxNeedsBothTLSConfigs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := NewMux(ln, "", quiet, WithTLS(MuxTLS{Server: &tls.Config{}})); err == nil {
		t.Fatal("NewMux took a MuxTLS without Client")
	}
}
