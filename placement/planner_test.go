package placement

import (
	"fmt"
	"slices"
	"testing"
)

// layout builds a table of groups (each a replica list) over nodes n1..nN, all up.
func layout(nodes int, groups ...[]string) *Table {
	t := &Table{Version: tableVersion, Epoch: 1, Replication: 3}
	for i := 1; i <= nodes; i++ {
		t.Nodes = append(t.Nodes, Node{ID: fmt.Sprintf("n%d", i), State: NodeUp})
	}
	for i, r := range groups {
		t.Groups = append(t.Groups, Group{ID: uint32(i + 1), Replicas: r})
		t.Partitions = append(t.Partitions, Partition{Group: uint32(i + 1)})
	}
	t.index()
	return t
}

func allLive(t *Table) Cluster {
	c := Cluster{Live: map[string]bool{}, Dead: map[string]bool{}}
	for _, n := range t.Nodes {
		c.Live[n.ID] = true
	}
	return c
}

func counts(t *Table) map[string]int {
	out := map[string]int{}
	for _, n := range t.Nodes {
		if n.State != NodeRemoved {
			out[n.ID] = len(t.GroupsOf(n.ID))
		}
	}
	return out
}

func eightGroupsOn(ids ...string) [][]string {
	var gs [][]string
	for range 8 {
		gs = append(gs, slices.Clone(ids))
	}
	return gs
}

func TestPlan(t *testing.T) {
	t.Run("a second node is added to every group", func(t *testing.T) {
		tab := layout(2, eightGroupsOn("n1")...)
		moves := Plan(tab, allLive(tab))
		if len(moves) != 8 {
			t.Fatalf("moves %v, want n2 added to 8 groups", moves)
		}
		for _, m := range moves {
			if m.From != "" || m.To != "n2" {
				t.Fatalf("move %+v, want an add on n2", m)
			}
		}
	})
	t.Run("growing to 5 nodes balances replicas to within one", func(t *testing.T) {
		tab := layout(5, eightGroupsOn("n1", "n2", "n3")...)
		moves, after := Simulate(tab, allLive(tab))
		if s := Spread(counts(after)); s > 1 {
			t.Fatalf("after %d moves replica counts %v differ by %d", len(moves), counts(after), s)
		}
		for _, g := range after.Groups {
			if len(g.Replicas) != 3 {
				t.Fatalf("group %d has replicas %v", g.ID, g.Replicas)
			}
		}
	})
	t.Run("a draining node's replicas move to the spare node", func(t *testing.T) {
		tab := layout(4, eightGroupsOn("n1", "n2", "n3")...)
		tab.Nodes[0].State = NodeDraining
		_, after := Simulate(tab, allLive(tab))
		if n := len(after.GroupsOf("n1")); n != 0 {
			t.Fatalf("n1 still holds %d replicas", n)
		}
		for _, g := range after.Groups {
			if len(g.Replicas) != 3 || !slices.Contains(g.Replicas, "n4") {
				t.Fatalf("group %d: %v, want 3 replicas including n4", g.ID, g.Replicas)
			}
		}
	})
	t.Run("draining with no spare node drops the replica", func(t *testing.T) {
		tab := layout(3, eightGroupsOn("n1", "n2", "n3")...)
		tab.Nodes[2].State = NodeDraining
		_, after := Simulate(tab, allLive(tab))
		for _, g := range after.Groups {
			if !sameSet(g.Replicas, []string{"n1", "n2"}) {
				t.Fatalf("group %d: %v, want [n1 n2]", g.ID, g.Replicas)
			}
		}
	})
	t.Run("a dead node's replicas are re-created on a spare node", func(t *testing.T) {
		tab := layout(4, eightGroupsOn("n1", "n2", "n3")...)
		c := allLive(tab)
		c.Live["n2"], c.Dead["n2"] = false, true
		_, after := Simulate(tab, c)
		if len(after.GroupsOf("n2")) != 0 || len(after.GroupsOf("n4")) != 8 {
			t.Fatalf("replicas after: %v", counts(after))
		}
	})
	t.Run("a dead node with no spare keeps its replicas", func(t *testing.T) {
		tab := layout(3, eightGroupsOn("n1", "n2", "n3")...)
		c := allLive(tab)
		c.Live["n2"], c.Dead["n2"] = false, true
		if moves := Plan(tab, c); len(moves) != 0 {
			t.Fatalf("moves %v, want none: dropping the dead replica makes nothing safer", moves)
		}
	})
	t.Run("a down node that is not dead yet is left alone", func(t *testing.T) {
		tab := layout(4, eightGroupsOn("n1", "n2", "n3")...)
		c := allLive(tab)
		c.Live["n2"] = false
		for _, m := range Plan(tab, c) {
			if m.From == "n2" || m.To == "n2" {
				t.Fatalf("move %+v touches a node within its grace period", m)
			}
		}
	})
	t.Run("a down node of three keeps its replicas and no live replica is dropped", func(t *testing.T) {
		tab := layout(3, eightGroupsOn("n1", "n2", "n3")...)
		c := allLive(tab)
		c.Live["n3"] = false
		if moves := Plan(tab, c); len(moves) != 0 {
			t.Fatalf("moves %v with one node down: dropping a replica would cost the group its quorum", moves)
		}
	})
	t.Run("a joining node that answers is eligible", func(t *testing.T) {
		tab := layout(2, eightGroupsOn("n1")...)
		tab.Nodes[1].State = NodeJoining
		if moves := Plan(tab, allLive(tab)); len(moves) != 8 {
			t.Fatalf("moves %v", moves)
		}
	})
	t.Run("plans are deterministic", func(t *testing.T) {
		tab := layout(6, eightGroupsOn("n1", "n2", "n3")...)
		m1, _ := Simulate(tab, allLive(tab))
		m2, _ := Simulate(tab, allLive(tab))
		if !slices.Equal(m1, m2) {
			t.Fatalf("two simulations differ:\n%v\n%v", m1, m2)
		}
	})
}

func TestApplyMove(t *testing.T) {
	for _, tc := range []struct {
		m    Move
		want []string
	}{
		{Move{From: "b", To: "d"}, []string{"a", "d", "c"}},
		{Move{To: "d"}, []string{"a", "b", "c", "d"}},
		{Move{From: "b"}, []string{"a", "c"}},
		{Move{To: "a"}, []string{"a", "b", "c"}},
	} {
		if got := ApplyMove([]string{"a", "b", "c"}, tc.m); !slices.Equal(got, tc.want) {
			t.Errorf("ApplyMove(%+v) = %v, want %v", tc.m, got, tc.want)
		}
	}
}

func TestNodeStateChanges(t *testing.T) {
	tab := layout(2, []string{"n1"})
	for _, tc := range []struct {
		node  string
		to    NodeState
		allow bool
	}{
		{"n2", NodeDraining, true},
		{"n1", NodeRemoved, false}, // up -> removed skips draining
		{"n1", NodeDraining, true},
		{"n1", NodeRemoved, false}, // still holds a replica
		{"n2", NodeRemoved, true},
		{"n2", NodeUp, false}, // removed is final
	} {
		next, err := Apply(tab, Command{Op: "set_node_state", NodeID: tc.node, State: tc.to})
		if (err == nil) != tc.allow {
			t.Fatalf("%s -> %s: err %v, want allowed=%v", tc.node, tc.to, err, tc.allow)
		}
		if err == nil {
			tab = next
		}
	}
}
