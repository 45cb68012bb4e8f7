package raftgroup

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// HandOff is what a graceful stop did with the leaderships this node held.
type HandOff struct {
	Led         int           // groups this node led when the hand-off began
	Transferred int           // of those, led by another node when it ended
	Took        time.Duration // how long the hand-off took
}

// HandOffLeaderships transfers the leadership of every group this node leads and that
// has another voter to a caught-up follower (hashicorp/raft picks the most up-to-date
// one and sends it TimeoutNow, Raft thesis §3.10), all groups at once, waiting at most
// timeout. A node that stops while it leads leaves its groups without a leader for an
// election timeout and fails the requests in flight; handed off first, its groups
// change leader in about one round trip and requests follow the new leader.
func (h *Host) HandOffLeaderships(timeout time.Duration) HandOff {
	start := time.Now()
	var (
		out HandOff
		mu  sync.Mutex
		wg  sync.WaitGroup
	)
	for _, g := range h.Groups() {
		if !g.IsLeader() || !g.hasOtherVoter() {
			continue
		}
		out.Led++
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.TransferLeadership(timeout); err != nil {
				h.cfg.Log.Warn("leadership hand-off failed", "group", g.id, "err", err)
				return
			}
			mu.Lock()
			out.Transferred++
			mu.Unlock()
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		h.cfg.Log.Warn("leadership hand-off still running; stopping anyway", "waited", timeout)
	}
	mu.Lock()
	defer mu.Unlock()
	out.Took = time.Since(start)
	return out
}

// hasOtherVoter says whether the group's configuration has a voter besides this node.
func (g *Group) hasOtherVoter() bool {
	f := g.Raft().GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != g.nodeID {
			return true
		}
	}
	return false
}

// TransferLeadership hands this replica's leadership to the most up-to-date follower.
// New proposals are held back first and the entries in flight are let commit, so the
// transfer does not turn them into "leadership lost" (outcome unknown) answers; the
// proposals held back wait for the transfer to end (Propose) and then go to the new
// leader. The wait for the entries in flight is bounded by timeout.
func (g *Group) TransferLeadership(timeout time.Duration) error {
	return g.transferLeadership(timeout, func() raft.Future { return g.Raft().LeadershipTransfer() })
}

// TransferLeadershipTo hands this replica's leadership to the voter id at addr, as
// TransferLeadership does.
func (g *Group) TransferLeadershipTo(id, addr string, timeout time.Duration) error {
	return g.transferLeadership(timeout, func() raft.Future {
		return g.Raft().LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	})
}

func (g *Group) transferLeadership(timeout time.Duration, transfer func() raft.Future) error {
	// Entries in flight commit in a round trip; a leader that cannot commit them (cut
	// off from its followers) cannot hand off either, so it does not wait long.
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, time.Second))
	defer cancel()
	defer g.batch.resume()
	if err := g.batch.quiesce(ctx); err != nil {
		return fmt.Errorf("group %d: entries in flight did not commit: %w", g.id, err)
	}
	return transfer().Error()
}
