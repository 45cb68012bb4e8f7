package placement

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The service's placement half: it turns the planner's moves into table changes,
// finishes drains, and evens out leaders. All of it waits until every group's Raft
// configuration equals the table (the previous moves are done), which paces the
// service at one pass of moves at a time and keeps its plans reproducible.

// groupView is what the leaders' reports say of one group.
type groupView struct {
	leader    string   // node id of the leader, "" when none reported
	members   []string // voters and non-voters, from the leader's report
	voters    []string
	committed bool   // that configuration has committed
	commit    uint64 // the leader's commit index
}

// views assembles each group's view from the latest probe reports.
func (s *Service) views() map[uint32]groupView {
	out := map[uint32]groupView{}
	terms := map[uint32]uint64{}
	for node, rep := range s.Reports() {
		for _, r := range rep.Replicas {
			if r.State != raft.Leader.String() || r.Term < terms[r.Group] {
				continue
			}
			terms[r.Group] = r.Term
			out[r.Group] = groupView{leader: node, voters: r.Voters, members: append(slices.Clone(r.Voters), r.NonVoters...),
				committed: r.ConfigCommitted(), commit: r.CommitIndex}
		}
	}
	return out
}

// settled says whether every data group with a leader has exactly the table's
// replicas as voters and no one else in its configuration. A group with no leader
// cannot move anyway and does not hold the others back.
func settled(t *Table, views map[uint32]groupView) bool {
	for _, g := range t.Groups {
		v, ok := views[g.ID]
		if !ok || v.leader == "" {
			continue
		}
		if !v.committed || !sameSet(v.members, g.Replicas) || !sameSet(v.voters, g.Replicas) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// cluster is the planner's view of node liveness.
func (s *Service) cluster(t *Table) Cluster {
	c := Cluster{Live: map[string]bool{}, Dead: map[string]bool{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range t.Nodes {
		seen, answered := s.lastSeen[n.ID]
		if !answered {
			// Never heard from since this leader began probing it: never live; dead
			// once as long has passed as for a node that went silent.
			seen = s.tracked[n.ID]
		}
		switch {
		case seen.IsZero():
		case answered && time.Since(seen) <= s.cfg.DownAfter:
			c.Live[n.ID] = true
		case time.Since(seen) > s.cfg.DeadAfter:
			c.Dead[n.ID] = true
		}
	}
	return c
}

// place makes this pass's table changes, if the previous ones are done.
func (s *Service) place(ctx context.Context, t *Table) {
	views := s.views()
	if !settled(t, views) {
		return
	}
	c := s.cluster(t)
	moves := Plan(t, c)
	for _, m := range moves {
		g, _ := t.Group(m.Group)
		replicas := ApplyMove(g.Replicas, m)
		if err := s.Propose(ctx, Command{Op: "set_replicas", Group: g.ID, Replicas: replicas, GroupEpoch: g.Epoch}); err != nil {
			s.log.Warn("replica move", "group", g.ID, "from", m.From, "to", m.To, "err", err)
			return
		}
		s.log.Info("replica move", "group", g.ID, "from", m.From, "to", m.To)
		s.moves.Add(1)
	}
	if len(moves) > 0 {
		return
	}
	s.finishDrains(ctx, t, views)
	s.balanceLeaders(ctx, t, views, c)
}

// drained says whether draining node n has left every data group: no replica in the
// table, and every data group's committed configuration known and without it. It then
// leaves the meta group (reconcileMeta), and only after that is it removed.
func drained(t *Table, n Node, views map[uint32]groupView) bool {
	if n.State != NodeDraining || len(t.GroupsOf(n.ID)) > 0 {
		return false
	}
	for _, g := range t.Groups {
		v, ok := views[g.ID]
		if !ok || !v.committed || slices.Contains(v.members, n.ID) {
			return false
		}
	}
	return true
}

// finishDrains marks removed every drained node that the meta group's committed
// configuration no longer lists either: removed means in no group's committed
// configuration, meta included, so its process can be stopped with nothing lost.
func (s *Service) finishDrains(ctx context.Context, t *Table, views map[uint32]groupView) {
	meta := ReportFor(s.group)
	for _, n := range t.Nodes {
		if !removable(t, n, views, meta) {
			continue
		}
		if err := s.Propose(ctx, Command{Op: "set_node_state", NodeID: n.ID, State: NodeRemoved}); err != nil {
			s.log.Warn("remove drained node", "node", n.ID, "err", err)
			continue
		}
		s.log.Info("node drained and removed", "node", n.ID)
	}
}

// removable says whether n is drained and the meta group's committed configuration,
// as its leader reports it in meta, lists it neither as a voter nor as a non-voter.
func removable(t *Table, n Node, views map[uint32]groupView, meta ReplicaReport) bool {
	if meta.State != raft.Leader.String() || !meta.ConfigCommitted() {
		return false // the meta configuration is unknown here, or not committed yet
	}
	return drained(t, n, views) && !slices.Contains(meta.Voters, n.ID) && !slices.Contains(meta.NonVoters, n.ID)
}

// balanceLeaders moves groups' leadership from the nodes leading the most groups to
// those leading the fewest, until no two differ by more than one: a round of up to
// leaderTransfersPerRound transfers, each of a different group, made at once, and at
// most one round per leaderBalanceEvery. One transfer per round left a new 3-node
// cluster with 8 groups unbalanced for 11 s.
func (s *Service) balanceLeaders(ctx context.Context, t *Table, views map[uint32]groupView, c Cluster) {
	if time.Since(s.lastLeaderMove) < leaderBalanceEvery {
		return
	}
	full := s.fullDisks()
	reports := s.Reports()
	nodes := mayLead(t, c, reports)
	views = caughtUpVoters(views, reports)
	led := map[string]int{}
	for _, g := range t.Groups {
		if v := views[g.ID]; v.leader != "" {
			led[v.leader]++
		}
	}
	// Leaders on full disks go first; balancing waits for the next round.
	round := leadersOffFullDisks(t, views, full, nodes, led, leaderTransfersPerRound)
	if len(round) == 0 && len(nodes) >= 2 {
		round = leaderTransferRound(t, views, nodes, led, leaderTransfersPerRound)
	}
	if len(round) == 0 {
		return
	}
	// The pass waits for the round; a transfer takes about an election timeout, and the
	// round may not hold up the service's other work (repairs) for longer than this.
	ctx, cancel := context.WithTimeout(ctx, leaderBalanceEvery)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range round {
		leader, _ := t.Node(m.From)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.prober.TransferLeader(ctx, leader.HTTPAddr, m.Group, m.To); err != nil {
				s.log.Warn("leader balance", "group", m.Group, "from", m.From, "to", m.To, "err", err)
				return
			}
			s.log.Info("leader balance", "group", m.Group, "from", m.From, "to", m.To)
		}()
	}
	wg.Wait()
	s.lastLeaderMove = time.Now() // after the round: the next one sees its outcome
}

// leaderMove is one leadership transfer: group's leadership from node From to To.
type leaderMove struct {
	Group    uint32
	From, To string
}

// leaderTransferRound plays leaderTransfer out on copies of views and led: up to limit
// transfers, each of a group not moved before in the round, each narrowing the counts
// as they would be after the ones before it.
func leaderTransferRound(t *Table, views map[uint32]groupView, nodes []string, led map[string]int, limit int) []leaderMove {
	views, led = maps.Clone(views), maps.Clone(led)
	var round []leaderMove
	for len(round) < limit {
		g, from, to, ok := leaderTransfer(t, views, nodes, led)
		if !ok {
			break
		}
		round = append(round, leaderMove{Group: g, From: from, To: to})
		delete(views, g) // moved once this round: leaderTransfer skips a group without a view
		led[from]--
		led[to]++
	}
	return round
}

// leaderTransfersPerRound bounds how many groups lose their leader at once (each is
// unavailable for about an election), as PD's leader-schedule-limit does for TiKV.
const leaderTransfersPerRound = 4

// leaderTransfer picks the transfer that narrows the leader counts most: a group whose
// leader leads at least 2 more groups than one of its other voters. Looking only from
// the most to the least loaded node could wait forever: when no group of the busiest
// node has a replica on the idlest one, the idlest node must first take a group from a
// node in between.
func leaderTransfer(t *Table, views map[uint32]groupView, nodes []string, led map[string]int) (group uint32, from, to string, ok bool) {
	best := 1
	for _, g := range t.Groups {
		v := views[g.ID]
		if !slices.Contains(nodes, v.leader) {
			continue
		}
		for _, voter := range v.voters {
			if d := led[v.leader] - led[voter]; d > best && slices.Contains(nodes, voter) {
				best, group, from, to, ok = d, g.ID, v.leader, voter, true
			}
		}
	}
	return group, from, to, ok
}

// leaderBalanceEvery spaces leadership transfers: each costs the group an election's
// worth of unavailability, and reports need a pass to show the new leader.
const leaderBalanceEvery = 2 * time.Second

// DryRun is the plan of a decommission of node id: the moves the service would make
// and the replica count of every node afterwards, with nothing changed.
func (s *Service) DryRun(id string) ([]Move, map[string]int, error) {
	t := s.meta.Table()
	sim, err := Apply(t, Command{Op: "set_node_state", NodeID: id, State: NodeDraining})
	if err != nil {
		return nil, nil, err
	}
	moves, after := Simulate(sim, s.cluster(t))
	counts := map[string]int{}
	for _, n := range after.Nodes {
		if n.State != NodeRemoved {
			counts[n.ID] = len(after.GroupsOf(n.ID))
		}
	}
	return moves, counts, nil
}

// Decommission starts draining node id.
func (s *Service) Decommission(ctx context.Context, id string) error {
	return s.Propose(ctx, Command{Op: "set_node_state", NodeID: id, State: NodeDraining})
}
