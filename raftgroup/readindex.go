package raftgroup

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// readIndex serves linearizable reads without writing to the log: the leader notes its
// commit index, confirms with a quorum that it still leads (VerifyLeader) in the same
// term, and the reader then waits until the state machine has applied that index.
// Reads that arrive while a confirmation is running share the next one, so a burst of
// reads costs one heartbeat round. A leader first commits an empty entry of its own
// term: until then its commit index may lag what earlier leaders acknowledged.
type readIndex struct {
	r         *raft.Raft
	readyTerm atomic.Uint64

	mu      sync.Mutex
	waiting []chan readResult
	running bool
}

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
	idx := ri.r.CommitIndex()
	if err := ri.r.VerifyLeader().Error(); err != nil {
		return 0, ErrNotLeader
	}
	if ri.r.CurrentTerm() != term {
		return 0, ErrNotLeader
	}
	return idx, nil
}
