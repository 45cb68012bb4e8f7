package raftgroup

import (
	"crypto/tls"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A forger speaks hashicorp/raft's wire protocol to one group on a cluster port, as
// the attacker of issue #14 did: raft's own NetworkTransport (so the bytes are exactly
// what a peer sends) over a stream layer that dials with dial, plaintext or TLS, and
// writes the mux header. It never listens.
type forgeLayer struct {
	group uint32
	dial  func(addr string, timeout time.Duration) (net.Conn, error)
	once  sync.Once
	done  chan struct{}
}

func (l *forgeLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.dial(string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(encodeMuxHeader(l.group)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (l *forgeLayer) Accept() (net.Conn, error) { <-l.done; return nil, ErrMuxClosed }
func (l *forgeLayer) Close() error              { l.once.Do(func() { close(l.done) }); return nil }
func (l *forgeLayer) Addr() net.Addr            { return advertisedAddr("192.0.2.66:7000") }

// plainDial dials TCP: a client that knows nothing of TLS.
func plainDial(addr string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, timeout)
}

// tlsDial dials with TLS and cfg, not checking the server (an attacker does not care
// who answers); cert, when given, is presented as client certificate.
func tlsDial(cert *tls.Certificate) func(addr string, timeout time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		cfg := &tls.Config{InsecureSkipVerify: true}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, cfg)
	}
}

// newForger returns a transport that sends RPCs to group over dial.
func newForger(tb testing.TB, group uint32, dial func(string, time.Duration) (net.Conn, error)) *raft.NetworkTransport {
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &forgeLayer{group: group, dial: dial, done: make(chan struct{})},
		MaxPool: 1, Timeout: 5 * time.Second, Logger: hclog.NewNullLogger(),
	})
	tb.Cleanup(func() { trans.Close() })
	return trans
}

// forgeVote asks target for its vote at term for candidate (a voter's ID), as a
// leadership transfer would (so a replica that knows a leader votes anyway), with a
// log that looks newer than anyone's.
func forgeVote(trans *raft.NetworkTransport, target raft.ServerAddress, term uint64, candidate string) (bool, error) {
	var resp raft.RequestVoteResponse
	err := trans.RequestVote(raft.ServerID(candidate), target, &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(candidate), Addr: []byte(trans.LocalAddr())},
		Term:      term, LastLogIndex: 1 << 40, LastLogTerm: term, LeadershipTransfer: true,
	}, &resp)
	return resp.Granted, err
}

// forgeAppend sends target an AppendEntries from a leader of term that does not
// exist: entries after (prevIndex, prevTerm), committed up to commit.
func forgeAppend(trans *raft.NetworkTransport, target raft.ServerAddress, term, prevIndex, prevTerm, commit uint64, entries []*raft.Log) (bool, error) {
	var resp raft.AppendEntriesResponse
	err := trans.AppendEntries("forger", target, &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("forger"), Addr: []byte(trans.LocalAddr())},
		Term:      term, PrevLogEntry: prevIndex, PrevLogTerm: prevTerm, Entries: entries, LeaderCommitIndex: commit,
	}, &resp)
	return resp.Success, err
}

// forgedPut is a log entry at index and term putting key=value in partition 2 (which
// the test groups own), encoded as this package's proposals are.
func forgedPut(index, term uint64, key, value string) *raft.Log {
	cmd := KVCommand{Op: OpPut, Partition: 2, Key: []byte(key), Value: []byte(value)}
	return &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: encodeBatch([][]byte{cmd.Encode()})}
}

// lastLog is replica g's last log index and that entry's term.
func lastLog(tb testing.TB, g *Group) (uint64, uint64) {
	tb.Helper()
	st := g.Raft().Stats()
	idx, err1 := strconv.ParseUint(st["last_log_index"], 10, 64)
	term, err2 := strconv.ParseUint(st["last_log_term"], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("stats %v", st)
	}
	return idx, term
}
