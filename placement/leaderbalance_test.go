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
	if spread(led) > 1 {
		t.Fatalf("balancing stopped at %v", led)
	}
}
