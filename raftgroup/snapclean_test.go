package raftgroup

import (
	"os"
	"path/filepath"
	"testing"
)

// A snapshot directory left half-written by a kill -9 (hashicorp/raft names it
// "<name>.tmp" until it is complete) is removed when the replica starts; a complete
// snapshot is kept.
func TestStartRemovesPartialSnapshots(t *testing.T) {
	data := t.TempDir()
	dir := GroupDir(data, 1)
	partial := filepath.Join(dir, "snapshots", "2-57-1764547200000.tmp")
	kept := filepath.Join(dir, "snapshots", "not-a-snapshot")
	for _, d := range []string{partial, kept} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(partial, "state.bin"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, filepath.Join(data, "badger"))
	defer db.Close()
	g, err := StartGroup(GroupConfig{ID: 1, NodeID: "n1", Dir: dir, DB: db, Mux: newTestMux(t), SM: NewKV(1, ownsEven), Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Fatalf("partial snapshot %s still there after start (stat err %v)", partial, err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("a directory that is not a partial snapshot was removed: %v", err)
	}
}
