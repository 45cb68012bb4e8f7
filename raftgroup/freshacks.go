package raftgroup

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// freshAcks records, per follower, the latest AppendEntries it accepted, on a clock
// that read rounds share, so a read can be confirmed only by followers that accepted
// this leader's term after the read began.
//
// hashicorp/raft's VerifyLeader is not enough on its own: a follower's answer counts
// towards every VerifyLeader open when the leader reads it, however old the request it
// answers. A leader paused (SIGSTOP, a long GC or VM stall) with answers unread in its
// sockets wakes, takes a queued read, and has it confirmed by answers given before the
// pause, though a newer leader was elected and acknowledged writes meanwhile. etcd's
// ReadIndex avoids this by echoing a per-read context in heartbeats; this is the same
// rule, kept at the transport.
type freshAcks struct {
	clock atomic.Uint64

	mu      sync.Mutex
	acked   map[raft.ServerID]uint64 // the clock when the newest accepted request was sent
	changed chan struct{}            // closed, and replaced, when acked moves
}

func newFreshAcks() *freshAcks {
	return &freshAcks{acked: map[raft.ServerID]uint64{}, changed: make(chan struct{})}
}

// tick returns the next clock value: later calls return larger values.
func (a *freshAcks) tick() uint64 { return a.clock.Add(1) }

// accepted notes that follower id accepted a request sent at clock value sent.
func (a *freshAcks) accepted(id raft.ServerID, sent uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if sent > a.acked[id] {
		a.acked[id] = sent
		close(a.changed)
		a.changed = make(chan struct{})
	}
}

// quorumSince reports whether self and the voters that accepted a request sent after
// since make a majority of voters, and returns a channel closed at the next change.
func (a *freshAcks) quorumSince(self raft.ServerID, voters []raft.ServerID, since uint64) (bool, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, id := range voters {
		if id == self || a.acked[id] > since {
			n++
		}
	}
	return n > len(voters)/2, a.changed
}

// waitQuorum waits until quorumSince holds, for at most wait.
func (a *freshAcks) waitQuorum(self raft.ServerID, voters []raft.ServerID, since uint64, wait time.Duration) bool {
	var timeout <-chan time.Time
	for {
		ok, changed := a.quorumSince(self, voters, since)
		if ok {
			return true
		}
		if timeout == nil { // the common case, a quorum at once, needs no timer
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return false
		}
	}
}

// ackingTransport is a group's NetworkTransport that tells freshAcks which follower
// accepted which AppendEntries. Heartbeats (and so VerifyLeader's) and, pipelining
// being off (transport.go), every append go through AppendEntries. Embedding keeps the
// optional interfaces (WithClose, WithPreVote) hashicorp/raft looks for.
type ackingTransport struct {
	*raft.NetworkTransport
	acks *freshAcks
	// timeoutNowWait bounds a TimeoutNow call (transport.go); afterTimeoutNow, when
	// set (tests), runs after the request was answered, before the call returns.
	timeoutNowWait  time.Duration
	afterTimeoutNow func()
}

func (t *ackingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := t.acks.tick()
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Success && resp.Term == args.Term {
		t.acks.accepted(id, sent)
	}
	return err
}
