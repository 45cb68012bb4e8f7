package raftgroup

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// electionCounter counts the elections a replica started: each time hashicorp/raft
// moves it to candidate (its election timeout passed without a leader's heartbeat, or
// a leader handed it the leadership with TimeoutNow). Summed over a cluster's nodes it
// is the number of elections held: what client load must never cause (issue #13).
type electionCounter struct {
	n   atomic.Uint64
	obs *raft.Observer
	ch  chan raft.Observation
}

// watchElections registers the counter as an observer of r's state changes; stop
// deregisters it. Observations are not waited for (a full channel drops one), so a
// slow reader never holds Raft up; 64 pending state changes is far more than occur.
func watchElections(r *raft.Raft, stopped <-chan struct{}) *electionCounter {
	c := &electionCounter{ch: make(chan raft.Observation, 64)}
	c.obs = raft.NewObserver(c.ch, false, func(o *raft.Observation) bool {
		st, ok := o.Data.(raft.RaftState)
		return ok && st == raft.Candidate
	})
	r.RegisterObserver(c.obs)
	go func() {
		for {
			select {
			case <-c.ch:
				c.n.Add(1)
			case <-stopped:
				r.DeregisterObserver(c.obs)
				return
			}
		}
	}()
	return c
}

// follow counts the elections of r too: a replica's new Raft instance after a
// restart (transferwatch.go).
func (c *electionCounter) follow(r *raft.Raft) { r.RegisterObserver(c.obs) }

// Elections is how many elections this replica started since it started.
func (g *Group) Elections() uint64 { return g.elections.n.Load() }
