package placement

import "testing"

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
