package placement

import (
	"slices"
	"sort"
)

// The planner is pure logic: from the table and what the meta leader knows of the
// nodes, it says which replica changes to make next. The service applies them as
// set_replicas commands; every group leader then walks its Raft configuration toward
// the table (add as non-voter, promote once caught up, then remove). Plans are made
// only when every group's configuration already equals the table, so each pass is a
// function of the table alone: a dry run replays the same passes on a copy.

// Move is one replica change of one group. From "" adds a replica on To; To "" drops
// the replica on From; both set replace From by To.
type Move struct {
	Group uint32 `json:"group"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// Cluster is what the planner knows besides the table.
type Cluster struct {
	Live map[string]bool // answered probes recently
	Dead map[string]bool // down past the grace period: its replicas are replaced
}

// eligible says whether node n may receive replicas.
func (c Cluster) eligible(n Node) bool {
	return (n.State == NodeUp || n.State == NodeJoining) && c.Live[n.ID] && !c.Dead[n.ID]
}

// unwanted says whether a replica on node id must move off it: its node is draining,
// removed, gone from the table, or dead.
func (c Cluster) unwanted(t *Table, id string) bool {
	n, ok := t.Node(id)
	return !ok || n.State == NodeDraining || n.State == NodeRemoved || c.Dead[id]
}

// Plan returns this pass's moves: at most one per group. Repairs (replicas to move off
// draining, removed or dead nodes; groups under or over their replication factor) come
// first; only when there are none, one balancing move evens out replica counts.
func Plan(t *Table, c Cluster) []Move {
	var eligible []string
	for _, n := range t.Nodes {
		if c.eligible(n) {
			eligible = append(eligible, n.ID)
		}
	}
	count := replicaCounts(t, eligible)
	want := min(t.Replication, len(eligible))
	var moves []Move
	for _, g := range t.Groups {
		m, ok := repair(t, c, g, want, eligible, count)
		if !ok {
			continue
		}
		if m.From != "" {
			count[m.From]--
		}
		if m.To != "" {
			count[m.To]++
		}
		moves = append(moves, m)
	}
	if len(moves) > 0 {
		return moves
	}
	if m, ok := balance(t, eligible, count); ok {
		return []Move{m}
	}
	return nil
}

// repair is the one change group g needs, if any.
func repair(t *Table, c Cluster, g Group, want int, eligible []string, count map[string]int) (Move, bool) {
	var bad []string
	for _, id := range g.Replicas {
		if c.unwanted(t, id) {
			bad = append(bad, id)
		}
	}
	target := leastLoaded(eligible, count, g.Replicas)
	for _, from := range bad {
		switch {
		case target != "":
			return Move{Group: g.ID, From: from, To: target}, true
		case c.Dead[from]:
			// No spare node: a dead replica stays until one joins (dropping it would
			// not make the group any safer).
		case len(g.Replicas) > 1:
			return Move{Group: g.ID, From: from}, true // draining with nowhere to go
		}
	}
	switch {
	case len(g.Replicas) < want && target != "":
		return Move{Group: g.ID, To: target}, true
	case len(g.Replicas) > max(t.Replication, 1) && len(bad) == 0:
		// Over the replication factor itself, never merely over the live nodes'
		// count: a node that is only down keeps its replicas until it is dead.
		return Move{Group: g.ID, From: mostLoaded(g.Replicas, count)}, true
	}
	return Move{}, false
}

// balance moves one replica from the most to the least loaded eligible node when their
// counts differ by more than one.
func balance(t *Table, eligible []string, count map[string]int) (Move, bool) {
	if len(eligible) < 2 {
		return Move{}, false
	}
	hi := mostLoaded(eligible, count)
	lo := leastLoaded(eligible, count, nil)
	if count[hi]-count[lo] <= 1 {
		return Move{}, false
	}
	for _, g := range t.Groups {
		if slices.Contains(g.Replicas, hi) && !slices.Contains(g.Replicas, lo) {
			return Move{Group: g.ID, From: hi, To: lo}, true
		}
	}
	return Move{}, false
}

func replicaCounts(t *Table, eligible []string) map[string]int {
	count := map[string]int{}
	for _, id := range eligible {
		count[id] = 0
	}
	for _, g := range t.Groups {
		for _, id := range g.Replicas {
			count[id]++
		}
	}
	return count
}

// Spread is how far apart the largest and the smallest of counts are. Placement evens
// out replicas per node, and leaders per node, until it is at most 1.
func Spread(counts map[string]int) int {
	lo, hi := -1, 0
	for _, v := range counts {
		if lo < 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	return hi - lo
}

// leastLoaded is the node of ids with the fewest replicas, not in exclude; ties go to
// the smaller id, so plans are deterministic.
func leastLoaded(ids []string, count map[string]int, exclude []string) string {
	best := ""
	for _, id := range sortedIDs(ids) {
		if slices.Contains(exclude, id) {
			continue
		}
		if best == "" || count[id] < count[best] {
			best = id
		}
	}
	return best
}

// mostLoaded is the node of ids with the most replicas; ties go to the larger id.
func mostLoaded(ids []string, count map[string]int) string {
	best := ""
	for _, id := range sortedIDs(ids) {
		if best == "" || count[id] >= count[best] {
			best = id
		}
	}
	return best
}

func sortedIDs(ids []string) []string {
	s := slices.Clone(ids)
	sort.Strings(s)
	return s
}

// ApplyMove returns g's replica list after m.
func ApplyMove(replicas []string, m Move) []string {
	out := slices.Clone(replicas)
	if m.From != "" {
		if i := slices.Index(out, m.From); i >= 0 {
			if m.To != "" {
				out[i] = m.To
				return out
			}
			out = slices.Delete(out, i, i+1)
		}
	}
	if m.To != "" && !slices.Contains(out, m.To) {
		out = append(out, m.To)
	}
	return out
}

// Simulate runs the planner's passes on a copy of t until nothing is left to do,
// assuming every move completes: the plan of a dry run. It returns the moves in the
// order they would be made and the resulting table.
func Simulate(t *Table, c Cluster) ([]Move, *Table) {
	sim := t.Clone()
	var all []Move
	for pass := 0; pass < 10_000; pass++ {
		moves := Plan(sim, c)
		if len(moves) == 0 {
			break
		}
		for _, m := range moves {
			i := slices.IndexFunc(sim.Groups, func(g Group) bool { return g.ID == m.Group })
			sim.Groups[i].Replicas = ApplyMove(sim.Groups[i].Replicas, m)
		}
		all = append(all, moves...)
	}
	return all, sim
}
