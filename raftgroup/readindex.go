package raftgroup

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// readIndex serves linearizable reads without writing to the log: the leader notes its
// commit index, confirms with a quorum that it still leads in the same term, and the
// reader then waits until the state machine has applied that index. The quorum is of
// followers that accepted a heartbeat sent after the read began (freshAcks):
// VerifyLeader sends those heartbeats, but its own answer may rest on older ones.
// Reads that arrive while a confirmation is running share the next one, so a burst of
// reads costs one heartbeat round. A leader first commits an empty entry of its own
// term: until then its commit index may lag what earlier leaders acknowledged.
type readIndex struct {
	r         raftLeader
	self      raft.ServerID
	acks      *freshAcks
	readyTerm atomic.Uint64

	mu      sync.Mutex
	waiting []chan readResult
	running bool
}

// raftLeader is what a read round asks of hashicorp/raft (a *raft.Raft; a fake in
// tests).
type raftLeader interface {
	State() raft.RaftState
	CurrentTerm() uint64
	CommitIndex() uint64
	Apply(cmd []byte, timeout time.Duration) raft.ApplyFuture
	VerifyLeader() raft.Future
	GetConfiguration() raft.ConfigurationFuture
}

// freshQuorumWait bounds the wait for followers' answers to the heartbeats
// VerifyLeader sent; they take a round trip, so only a leader that lost its quorum
// (or was deposed unawares) waits this long, and then the read fails.
const freshQuorumWait = time.Second

type readResult struct {
	index uint64
	err   error
}

// confirm returns an index such that, once applied locally, the state reflects every
// write acknowledged before confirm was called.
func (ri *readIndex) confirm(done <-chan struct{}) (uint64, error) {
	ch := make(chan readResult, 1)
	ri.mu.Lock()
	ri.waiting = append(ri.waiting, ch)
	if !ri.running {
		ri.running = true
		go ri.run()
	}
	ri.mu.Unlock()
	select {
	case res := <-ch:
		return res.index, res.err
	case <-done:
		return 0, ErrNotLeader
	}
}

func (ri *readIndex) run() {
	for {
		ri.mu.Lock()
		batch := ri.waiting
		ri.waiting = nil
		if len(batch) == 0 {
			ri.running = false
			ri.mu.Unlock()
			return
		}
		ri.mu.Unlock()
		idx, err := ri.round()
		for _, ch := range batch {
			ch <- readResult{index: idx, err: err}
		}
	}
}

func (ri *readIndex) round() (uint64, error) {
	if ri.r.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	term := ri.r.CurrentTerm()
	if ri.readyTerm.Load() != term {
		if err := ri.r.Apply(encodeBatch(nil), 5*time.Second).Error(); err != nil {
			return 0, ErrNotLeader
		}
		if ri.r.CurrentTerm() != term {
			return 0, ErrNotLeader
		}
		ri.readyTerm.Store(term)
	}
	since := ri.acks.tick()
	idx := ri.r.CommitIndex()
	if err := ri.r.VerifyLeader().Error(); err != nil {
		return 0, ErrNotLeader
	}
	voters, err := ri.voters()
	if err != nil || !ri.acks.waitQuorum(ri.self, voters, since, freshQuorumWait) {
		return 0, ErrNotLeader
	}
	if ri.r.CurrentTerm() != term {
		return 0, ErrNotLeader
	}
	return idx, nil
}

// voters lists the voting members of the latest configuration.
func (ri *readIndex) voters() ([]raft.ServerID, error) {
	f := ri.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var ids []raft.ServerID
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}
