package placement

import "testing"

// The stuck case the grow test hit now and then: n1 leads 4 groups, n5 none, and no
// group of n1 has a replica on n5. The balance must go through a node in between.
func TestLeaderTransferWhenBusiestAndIdlestShareNoGroup(t *testing.T) {
	groups := map[uint32][]string{ // leader first
		1: {"n1", "n2", "n3"}, 2: {"n1", "n2", "n4"}, 3: {"n1", "n3", "n4"}, 4: {"n1", "n2", "n3"},
		5: {"n2", "n5", "n3"}, 6: {"n2", "n5", "n4"}, 7: {"n3", "n5", "n4"}, 8: {"n4", "n1", "n2"},
	}
	tab := &Table{}
	views := map[uint32]groupView{}
	led := map[string]int{"n5": 0} // n5 leads nothing
	for id := uint32(1); id <= 8; id++ {
		r := groups[id]
		tab.Groups = append(tab.Groups, Group{ID: id, Replicas: r})
		views[id] = groupView{leader: r[0], voters: r, members: r, committed: true}
		led[r[0]]++
	}
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	// Play the transfers out: each must narrow the spread, and it must end within 1.
	for step := 0; ; step++ {
		g, from, to, ok := leaderTransfer(tab, views, nodes, led)
		if !ok {
			break
		}
		if step > 8 || led[from]-led[to] < 2 {
			t.Fatalf("step %d: group %d %s -> %s with leaders %v", step, g, from, to, led)
		}
		v := views[g]
		v.leader = to
		views[g] = v
		led[from]--
		led[to]++
	}
	if Spread(led) > 1 {
		t.Fatalf("balancing stopped at %v", led)
	}
}

// A round moves several groups at once, never the same group twice, never more than
// the limit, and leaves the counts as even as one round can: a new 3-node cluster
// whose first node leads all 8 groups is balanced in two rounds instead of five.
func TestLeaderTransferRoundMovesSeveralGroupsAtOnce(t *testing.T) {
	tab := &Table{}
	views := map[uint32]groupView{}
	led := map[string]int{"n2": 0, "n3": 0}
	for id := uint32(1); id <= 8; id++ {
		r := []string{"n1", "n2", "n3"}
		tab.Groups = append(tab.Groups, Group{ID: id, Replicas: r})
		views[id] = groupView{leader: "n1", voters: r, members: r, committed: true}
		led["n1"]++
	}
	nodes := []string{"n1", "n2", "n3"}
	for round := 1; Spread(led) > 1; round++ {
		if round > 2 {
			t.Fatalf("not balanced after 2 rounds: %v", led)
		}
		moves := leaderTransferRound(tab, views, nodes, led, leaderTransfersPerRound)
		if len(moves) == 0 || len(moves) > leaderTransfersPerRound {
			t.Fatalf("round %d: %d transfers with leaders %v", round, len(moves), led)
		}
		moved := map[uint32]bool{}
		for _, m := range moves {
			if moved[m.Group] || views[m.Group].leader != m.From {
				t.Fatalf("round %d: bad transfer %+v (moved before: %v)", round, m, moved[m.Group])
			}
			moved[m.Group] = true
			v := views[m.Group]
			v.leader = m.To
			views[m.Group] = v
			led[m.From]--
			led[m.To]++
		}
	}
}
