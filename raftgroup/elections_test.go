package raftgroup

import (
	"testing"
	"time"
)

// TestElectionsAreCounted: a new single-replica group elects itself, and its replica
// counts the election it started.
func TestElectionsAreCounted(t *testing.T) {
	g := startSingle(t) // returns once the replica leads
	for deadline := time.Now().Add(10 * time.Second); g.Elections() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("leader, but no election counted after 10 s")
		}
	}
	if n := g.Elections(); n != 1 {
		t.Fatalf("%d elections counted for one", n)
	}
}
