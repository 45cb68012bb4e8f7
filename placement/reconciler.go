package placement

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/raftgroup"
)

// Reconciler runs on every node and moves it toward the table, level-triggered: it
// starts the replicas the table gives the node, and for every group this node leads it
// steps the group's Raft configuration toward the table's replicas.
type Reconciler struct {
	Self     string
	Host     *raftgroup.Host
	Meta     *Meta
	Prober   Prober
	Log      *slog.Logger
	Interval time.Duration
	// NewStateMachine builds the state machine of data group id.
	NewStateMachine func(id uint32) raftgroup.StateMachine
}

// Run works until ctx ends, on every table change and every Interval.
func (r *Reconciler) Run(ctx context.Context) {
	interval := r.Interval
	if interval == 0 {
		interval = 500 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		changed := r.Meta.Changed()
		r.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

func (r *Reconciler) pass(ctx context.Context) {
	t := r.Meta.Table()
	if !t.Initialized() {
		return
	}
	for _, id := range t.GroupsOf(r.Self) {
		if r.Host.Group(id) != nil {
			continue
		}
		g, _ := t.Group(id)
		var boot *raft.Configuration
		if g.Bootstrap == r.Self && len(g.Replicas) == 1 {
			self, _ := t.Node(r.Self)
			boot = &raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(r.Self), Address: raft.ServerAddress(self.RaftAddr)}}}
		}
		if _, err := r.Host.Start(id, r.NewStateMachine(id), boot); err != nil {
			r.Log.Error("start replica", "group", id, "err", err)
		} else {
			r.Log.Info("started replica", "group", id, "bootstrap", boot != nil)
		}
	}
	r.discardStale(ctx, t)
	for _, g := range r.Host.Groups() {
		if g.ID() == MetaGroup || !g.IsLeader() {
			continue
		}
		tg, ok := t.Group(g.ID())
		if !ok {
			continue
		}
		want := make([]member, 0, len(tg.Replicas))
		for _, id := range tg.Replicas {
			n, ok := t.Node(id)
			if !ok {
				continue
			}
			want = append(want, member{id: n.ID, addr: n.RaftAddr, httpAddr: n.HTTPAddr, voter: true})
		}
		reconcileConfig(ctx, g, want, r.Prober, r.Log)
	}
}

// discardStale stops and deletes every local replica the table no longer gives this
// node, once the group's leader reports a configuration without it: until then the
// replica may still count towards the group's quorum (a move in progress). A node that
// comes back after its replicas were re-created elsewhere thus drops its stale copies;
// they are never merged.
func (r *Reconciler) discardStale(ctx context.Context, t *Table) {
	mine := map[uint32]bool{MetaGroup: true}
	for _, id := range t.GroupsOf(r.Self) {
		mine[id] = true
	}
	var stale []Group
	for _, g := range r.Host.Groups() {
		if tg, ok := t.Group(g.ID()); ok && !mine[g.ID()] {
			stale = append(stale, tg)
		}
	}
	if len(stale) == 0 {
		return
	}
	reports := r.probeReplicaNodes(ctx, t, stale)
	for _, g := range stale {
		if !r.removedFromGroup(g, reports) {
			continue
		}
		if err := r.Host.Remove(g.ID); err != nil {
			r.Log.Error("discard replica", "group", g.ID, "err", err)
			continue
		}
		r.Log.Info("discarded replica no longer in the group", "group", g.ID)
	}
}

// probeReplicaNodes asks every other node holding a replica of one of groups for its
// report, once each and all at once: a node back from the dead with many stale
// replicas would otherwise wait one probe per group and replica in turn. A node that
// does not answer within a second is left out.
func (r *Reconciler) probeReplicaNodes(ctx context.Context, t *Table, groups []Group) map[string]NodeReport {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		reports = map[string]NodeReport{}
		asked   = map[string]bool{r.Self: true}
	)
	for _, g := range groups {
		for _, id := range g.Replicas {
			n, ok := t.Node(id)
			if !ok || asked[id] {
				continue
			}
			asked[id] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				if rep, err := r.Prober.Probe(ctx, n.HTTPAddr); err == nil {
					mu.Lock()
					reports[id] = rep
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return reports
}

// removedFromGroup finds g's leader among the table's replicas' reports, and whether
// the leader's configuration still names this node.
func (r *Reconciler) removedFromGroup(g Group, reports map[string]NodeReport) bool {
	for _, id := range g.Replicas {
		rep, ok := reports[id]
		if !ok {
			continue
		}
		rr, ok := rep.Replica(g.ID)
		if !ok || rr.State != raft.Leader.String() {
			continue
		}
		return rr.ConfigCommitted() && !slices.Contains(rr.Voters, r.Self) && !slices.Contains(rr.NonVoters, r.Self)
	}
	return false
}
