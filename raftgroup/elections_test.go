package raftgroup

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestElectionsAreCounted: a new single-replica group elects itself, and its replica
// counts the election it started.
func TestElectionsAreCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(ln, ln.Addr().String(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	g, err := StartGroup(GroupConfig{
		ID: 1, NodeID: "n1", Dir: t.TempDir(), DB: openDB(t, t.TempDir()), Mux: mux, SM: NewKV(1, ownsEven), Log: quiet,
		Bootstrap: &raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: raft.ServerAddress(ln.Addr().String())}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	for deadline := time.Now().Add(10 * time.Second); !g.IsLeader() || g.Elections() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("leader %v after 10 s, %d elections counted", g.IsLeader(), g.Elections())
		}
	}
	if n := g.Elections(); n != 1 {
		t.Fatalf("%d elections counted for one", n)
	}
}
