package raftgroup

import (
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// A leader of hashicorp/raft v1.7.3 refuses every Apply, configuration change and
// restore with ErrLeadershipTransferInProgress while a flag of its leaderState is set,
// and only the goroutine of the transfer that set it clears it, when that goroutine
// returns. setupLeaderState does not clear it, so a replica elected again keeps a flag
// its previous term left. That goroutine can block for good: leadershipTransfer sends
// on the follower's triggerDeferErrorCh (buffer 1) without a select, and an earlier
// transfer to the same follower can have left that buffer full while the follower's
// replication goroutine was busy in a long append or snapshot and then exited when the
// leader stepped down (hashicorp/raft#696). Such a replica, elected again, would refuse
// every write of its group for as long as the process lives. The flag is private to
// hashicorp/raft; the one way to clear it is a new Raft instance.
//
// transferWatch spots it: the replica's applies have been refused with
// ErrLeadershipTransferInProgress, and nothing else, for longer than a transfer can
// hold the flag, within one term. A transfer holds it for at most two election
// timeouts (one to catch the target up and send TimeoutNow, bounded by TimeoutNow's own
// wait in transport.go, one for the target to win), so the watch allows four. ringkv's
// own hand-off refuses proposals before they reach Raft (batcher.handingOff), so it is
// not counted; transfers started elsewhere (leader balancing, the admin API) are, and
// end within the bound.
type transferWatch struct {
	after time.Duration
	mu    sync.Mutex
	term  uint64    // the term of the refusals counted
	since time.Time // the first of them; zero when the last apply was not refused
}

func newTransferWatch(after time.Duration) *transferWatch {
	return &transferWatch{after: after}
}

// observe notes the outcome err of an apply proposed in term, at now, and says whether
// the applies of that term have been refused for a transfer for longer than after.
func (w *transferWatch) observe(term uint64, err error, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		w.since = time.Time{}
		return false
	}
	if w.since.IsZero() || w.term != term {
		w.term, w.since = term, now
		return false
	}
	return now.Sub(w.since) > w.after
}

// currentRaft is the replica's running Raft instance, looked up at each call, as the
// batcher and the read rounds use it; the outcome of each Apply goes to the watch.
type currentRaft struct{ g *Group }

func (c currentRaft) State() raft.RaftState     { return c.g.Raft().State() }
func (c currentRaft) CurrentTerm() uint64       { return c.g.Raft().CurrentTerm() }
func (c currentRaft) CommitIndex() uint64       { return c.g.Raft().CommitIndex() }
func (c currentRaft) VerifyLeader() raft.Future { return c.g.Raft().VerifyLeader() }
func (c currentRaft) GetConfiguration() raft.ConfigurationFuture {
	return c.g.Raft().GetConfiguration()
}

func (c currentRaft) Apply(cmd []byte, timeout time.Duration) raft.ApplyFuture {
	r := c.g.Raft()
	return watchedApply{ApplyFuture: r.Apply(cmd, timeout), g: c.g, r: r}
}

// watchedApply reports its outcome to the group's transfer watch when it is read.
type watchedApply struct {
	raft.ApplyFuture
	g *Group
	r *raft.Raft
}

func (f watchedApply) Error() error {
	err := f.ApplyFuture.Error()
	if f.g.watch.observe(f.r.CurrentTerm(), err, time.Now()) {
		f.g.restartWedged(f.r)
	}
	return err
}

// restartWedged replaces r, a Raft instance that refuses every apply for a transfer
// that cannot end, by a new one over the same stores, unless that was done already. The
// replica becomes a follower; its group elects a leader within an election timeout
// (possibly this replica again, now without the flag).
func (g *Group) restartWedged(r *raft.Raft) {
	if !g.restarting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer g.restarting.Store(false)
		g.life.Lock()
		defer g.life.Unlock()
		select {
		case <-g.stopped:
			return
		default:
		}
		old := g.cur.Load()
		if old.r != r {
			return
		}
		g.log.Error("leader refuses every write for a leadership transfer that never ends (hashicorp/raft#696); restarting the replica's Raft",
			"group", g.id, "term", r.CurrentTerm(), "refused_for_more_than", g.watch.after)
		select {
		case <-old.shutdown():
		case <-time.After(stopTimeout):
			g.log.Error("raft did not shut down in time; the replica stays down until the node restarts", "group", g.id, "waited", stopTimeout)
			return
		}
		inst, err := g.startInstance()
		if err != nil {
			g.log.Error("restarting the replica's Raft failed; it stays down until the node restarts", "group", g.id, "err", err)
			return
		}
		g.cur.Store(inst)
		g.elections.follow(inst.r)
		g.restarts.Add(1)
	}()
}

// RaftRestarts is how many times this replica replaced its Raft instance because it
// refused every write for a leadership transfer that could not end.
func (g *Group) RaftRestarts() uint64 { return g.restarts.Load() }
