package raftgroup

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestGroupStartsFromSeed: a replica bootstrapped with a seed starts as a snapshot at
// the seed's index holding exactly its keys (versions, indexes kept), writes entries
// after that index, removes the seed, and on restart keeps its state without seeding
// again. A read view then sees the state at its applied index.
func TestGroupStartsFromSeed(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, SeedFile(1))
	sw, err := CreateSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Record{
		"a": {Value: []byte("va"), Version: 3, CreateIndex: 10, Mod: Revision{Index: 480, Seq: 2}},
		"b": {Value: []byte{0xff, 0x00}, Version: 1, CreateIndex: 499, Mod: Revision{Index: 499, Seq: 0}},
	}
	for k, r := range want {
		if err := sw.Put(DataKey(2, []byte(k)), EncodeRecord(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(500); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(ln, ln.Addr().String(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	db := openDB(t, filepath.Join(dir, "badger"))
	defer db.Close()
	start := func() *Group {
		t.Helper()
		g, err := StartGroup(GroupConfig{
			ID: 1, NodeID: "n1", Dir: filepath.Join(dir, "group"), DB: db, Mux: mux, SM: NewKV(1, ownsEven), Log: quiet, Seed: seed,
			Bootstrap: &raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: raft.ServerAddress(ln.Addr().String())}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !g.IsLeader(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the seeded group did not elect itself")
			}
		}
		return g
	}
	g := start()
	if _, err := os.Stat(seed); !os.IsNotExist(err) {
		t.Fatalf("the seed is still there after the group started from it (%v)", err)
	}
	kv := g.SM().(*KV)
	check := func() {
		t.Helper()
		for k, w := range want {
			got, ok, err := kv.Get(db, 2, []byte(k))
			if err != nil || !ok || string(got.Value) != string(w.Value) || got.Version != w.Version || got.CreateIndex != w.CreateIndex || got.Mod != w.Mod {
				t.Fatalf("key %q: %+v %v %v, want %+v", k, got, ok, err, w)
			}
		}
	}
	check()
	resp, err := g.Propose(context.Background(), (&KVCommand{Op: OpPut, Partition: 2, Key: []byte("a"), Value: []byte("new")}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.(KVResult); r.Rev.Index <= 500 || r.Version != 4 {
		t.Fatalf("a write after the seed: %+v; want an index above the seed's 500 and version 4", r)
	}
	view, err := g.OpenReadView(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	if err := view.Scan(func(k, v []byte) error { keys++; return nil }); err != nil || keys != 2 || view.Applied <= 500 {
		t.Fatalf("read view: %d keys at %d (%v)", keys, view.Applied, err)
	}
	view.Close()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	want["a"] = Record{Value: []byte("new"), Version: 4, CreateIndex: 10, Mod: func() Revision { r, _, _ := kv.Get(db, 2, []byte("a")); return r.Mod }()}
	g = start() // no seed now: the replica's own state
	defer g.Stop()
	check()
}
