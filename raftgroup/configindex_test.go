package raftgroup

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestConfigTrackerFollowsTheLog: appends raise the index, a compacted prefix keeps it,
// a truncated suffix brings back the older configuration, a snapshot sets a floor, and
// a tracker opened on an existing log finds its newest configuration entry.
func TestConfigTrackerFollowsTheLog(t *testing.T) {
	store := raft.NewInmemStore()
	cfg := &configTracker{}
	log := &configTrackingLog{LogStore: store, cfg: cfg}
	entry := func(i uint64, typ raft.LogType) *raft.Log { return &raft.Log{Index: i, Term: 1, Type: typ} }
	step := func(what string, want uint64) {
		t.Helper()
		if got := cfg.Index(); got != want {
			t.Fatalf("%s: configuration index %d, want %d", what, got, want)
		}
	}
	if err := log.StoreLogs([]*raft.Log{entry(1, raft.LogConfiguration), entry(2, raft.LogCommand), entry(3, raft.LogCommand)}); err != nil {
		t.Fatal(err)
	}
	step("first configuration", 1)
	if err := log.StoreLog(entry(4, raft.LogConfiguration)); err != nil {
		t.Fatal(err)
	}
	step("second configuration", 4)
	for i := uint64(5); i <= 9; i++ {
		if err := log.StoreLog(entry(i, raft.LogCommand)); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.StoreLog(entry(10, raft.LogConfiguration)); err != nil {
		t.Fatal(err)
	}
	step("uncommitted third configuration", 10)
	if err := log.DeleteRange(10, 10); err != nil {
		t.Fatal(err)
	}
	step("suffix truncated", 4)
	if err := log.DeleteRange(1, 6); err != nil {
		t.Fatal(err)
	}
	step("prefix compacted", 4)

	reopened, err := trackConfigurations(store, raft.NewInmemSnapshotStore())
	if err != nil {
		t.Fatal(err)
	}
	if got := reopened.Index(); got != 0 {
		t.Fatalf("reopened after compaction with no snapshot: %d, want 0 (no configuration entry left)", got)
	}
	if err := log.StoreLog(entry(10, raft.LogConfiguration)); err != nil {
		t.Fatal(err)
	}
	if reopened, err = trackConfigurations(store, raft.NewInmemSnapshotStore()); err != nil {
		t.Fatal(err)
	}
	if got := reopened.Index(); got != 10 {
		t.Fatalf("reopened: %d, want 10", got)
	}
	cfg.snapshotted(12)
	step("snapshot floor", 12)
}

// TestConfigTrackingLogKeepsTheStoresMonotonicity: hashicorp/raft clears a monotonic
// store's log after a snapshot install; hiding raft-wal's IsMonotonic behind the
// wrapper left followers unable to append after one.
func TestConfigTrackingLogKeepsTheStoresMonotonicity(t *testing.T) {
	wal, _, err := openLogStore(LogStoreWAL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer wal.Close()
	var wrapped raft.LogStore = &configTrackingLog{LogStore: wal, cfg: &configTracker{}}
	if m, ok := wrapped.(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatal("the wrapped raft-wal store does not say it is monotonic")
	}
	if m := (&configTrackingLog{LogStore: raft.NewInmemStore(), cfg: &configTracker{}}); m.IsMonotonic() {
		t.Fatal("a store that is not monotonic says it is")
	}
}
