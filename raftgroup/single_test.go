package raftgroup

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// startSingle starts a one-replica group on its own mux and Badger DB and returns it
// once it leads; the test's cleanup stops it.
func startSingle(t *testing.T) *Group {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(ln, ln.Addr().String(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "badger"))
	t.Cleanup(func() { db.Close() })
	g, err := StartGroup(GroupConfig{
		ID: 1, NodeID: "n1", Dir: filepath.Join(dir, "group"), DB: db, Mux: mux, SM: NewKV(1, ownsEven), Log: quiet,
		Bootstrap: &raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: raft.ServerAddress(ln.Addr().String())}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	for deadline := time.Now().Add(10 * time.Second); !g.IsLeader(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the group did not elect itself")
		}
	}
	return g
}

// TestWaitAppliedEndsWhenTheReplicaStops: a reader waiting for an index a stopped (or
// removed) replica will never apply is told so, rather than left waiting (a watch
// waits like this for its group's next change).
func TestWaitAppliedEndsWhenTheReplicaStops(t *testing.T) {
	g := startSingle(t)
	done := make(chan error, 1)
	go func() { done <- g.WaitApplied(context.Background(), g.Applied()+1000) }()
	select {
	case err := <-done:
		t.Fatalf("returned before the stop: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("after the stop: %v, want ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting 10 s after the replica stopped")
	}
}
