package placement

import (
	"slices"
	"testing"
)

// Every group led by a node whose disk is full is handed to a voter with room, the
// least loaded first; a group whose other voters are full too stays where it is.
func TestLeadersMoveOffFullDisks(t *testing.T) {
	groups := map[uint32][]string{ // leader first
		1: {"n3", "n1", "n2"}, 2: {"n3", "n2", "n1"}, 3: {"n1", "n2", "n3"}, 4: {"n3", "n4", "n1"},
	}
	tab := &Table{}
	views := map[uint32]groupView{}
	led := map[string]int{}
	for id := uint32(1); id <= 4; id++ {
		r := groups[id]
		tab.Groups = append(tab.Groups, Group{ID: id, Replicas: r})
		views[id] = groupView{leader: r[0], voters: r, members: r, committed: true}
		led[r[0]]++
	}
	full := map[string]bool{"n3": true, "n4": true}
	nodes := []string{"n1", "n2"} // live, with room
	moves := leadersOffFullDisks(tab, views, full, nodes, led, leaderTransfersPerRound)
	want := []leaderMove{{Group: 1, From: "n3", To: "n2"}, {Group: 2, From: "n3", To: "n2"}, {Group: 4, From: "n3", To: "n1"}}
	if len(moves) != len(want) {
		t.Fatalf("moves %+v, want %+v", moves, want)
	}
	for i := range want {
		if moves[i] != want[i] {
			t.Fatalf("moves %+v, want %+v", moves, want)
		}
	}
	if led["n3"] != 0 {
		t.Fatalf("n3 still leads %d groups after the round", led["n3"])
	}
	if got := leadersOffFullDisks(tab, views, map[string]bool{}, nodes, map[string]int{}, 4); len(got) != 0 {
		t.Fatalf("moves with no full disk: %+v", got)
	}
}

// Leader balancing gives leaderships only to live members hosting a group whose disk
// has room and that are not stopping: a rolling restart saw the meta leader hand two
// leaderships back to a node draining after SIGTERM, whose requests then failed.
func TestMayLeadSkipsFullAndStoppingNodes(t *testing.T) {
	tab := &Table{Groups: []Group{{ID: 1, Replicas: []string{"n1", "n2", "n3", "n4", "n5"}}}}
	for _, id := range []string{"n1", "n2", "n3", "n4", "n5", "n6"} {
		tab.Nodes = append(tab.Nodes, Node{ID: id, State: NodeUp})
	}
	c := Cluster{Live: map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true, "n6": true}}
	reports := map[string]NodeReport{
		"n2": {Stopping: true},
		"n3": {Disk: &DiskReport{Full: true}},
		"n4": {Disk: &DiskReport{}},
	}
	// n5 is not live, n6 hosts no group.
	if got, want := mayLead(tab, c, reports), []string{"n1", "n4"}; !slices.Equal(got, want) {
		t.Fatalf("mayLead = %v, want %v", got, want)
	}
}

// Leader balancing transfers only to voters that are caught up: a replica far behind
// the leader's commit index (a node just restarted) is no target.
func TestCaughtUpVotersLeavesOutLaggingReplicas(t *testing.T) {
	views := map[uint32]groupView{1: {leader: "n1", voters: []string{"n1", "n2", "n3"}, commit: 10_000}}
	reports := map[string]NodeReport{
		"n2": {Replicas: []ReplicaReport{{Group: 1, Applied: 9_900}}},
		"n3": {Replicas: []ReplicaReport{{Group: 1, Applied: 12}}},
	}
	if got := caughtUpVoters(views, reports)[1].voters; !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("caught-up voters %v, want [n1 n2]", got)
	}
	if got := views[1].voters; len(got) != 3 {
		t.Fatalf("the views given were changed: %v", got)
	}
}
