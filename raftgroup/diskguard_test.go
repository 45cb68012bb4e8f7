package raftgroup

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// fakeDisk is a filesystem whose free space the test sets.
type fakeDisk struct{ free uint64 }

func (f *fakeDisk) statfs(string) (uint64, uint64, error) { return f.free, 1 << 30, nil }

func newFakeGuard(t *testing.T, free, reserve uint64) (*DiskGuard, *fakeDisk) {
	t.Helper()
	fd := &fakeDisk{free: free}
	d := &DiskGuard{path: "fake", reserve: reserve, statfs: fd.statfs}
	if err := d.Poll(); err != nil {
		t.Fatal(err)
	}
	return d, fd
}

// Writes are admitted until what was admitted since the poll before last would take
// the disk below the reserve; deletes until half of it; a poll that finds space again
// lifts the refusal.
func TestDiskGuardRefusesBelowTheReserveAndRecovers(t *testing.T) {
	const mib = 1 << 20
	d, fd := newFakeGuard(t, 100*mib, 64*mib)
	for i := 0; i < 36; i++ {
		if err := d.Admit(mib); err != nil {
			t.Fatalf("write %d refused with %d MiB left: %v", i, 100-i, err)
		}
	}
	if err := d.Admit(mib); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("a write taking the disk below the reserve was admitted: %v", err)
	}
	if err := d.AdmitDelete(1024); err != nil {
		t.Fatalf("a delete above half the reserve was refused: %v", err)
	}
	// The 36 MiB admitted may not be on disk yet at the next poll: they still count
	// until the one after (without that, fast writes ran 12-35 MiB past the reserve).
	fd.free = 90 * mib
	if err := d.Poll(); err != nil {
		t.Fatal(err)
	}
	if err := d.Admit(mib); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("a write counted against free space the writes before the poll may still take was admitted: %v", err)
	}
	fd.free = 40 * mib
	_ = d.Poll()
	_ = d.Poll() // the writes admitted two polls ago are on disk: only free counts now
	if st := d.State(); !st.Full || st.FreeBytes != 40*mib {
		t.Fatalf("state at 40 MiB free: %+v", st)
	}
	if err := d.AdmitDelete(1024); err != nil {
		t.Fatalf("a delete above half the reserve was refused: %v", err)
	}
	fd.free = 31 * mib
	_ = d.Poll()
	_ = d.Poll()
	if err := d.AdmitDelete(1024); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("a delete below half the reserve was admitted: %v", err)
	}
	fd.free = 200 * mib
	_ = d.Poll()
	_ = d.Poll()
	if err := d.Admit(mib); err != nil || d.State().Full {
		t.Fatalf("after space was freed: %v, %+v", err, d.State())
	}
}

// Concurrent writes are admitted only as far as the reserve: each check reserves its
// bytes in the same step, so a burst cannot all pass on one stale figure.
func TestConcurrentAdmitsStopAtTheReserve(t *testing.T) {
	const mib = 1 << 20
	d, _ := newFakeGuard(t, 100*mib, 64*mib)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d.Admit(mib) == nil {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := admitted.Load(); n != 36 {
		t.Fatalf("%d concurrent 1 MiB writes admitted with 36 MiB above the reserve", n)
	}
}

// The log store stops appending below half the reserve, and appends again once space
// is freed, without being reopened.
func TestGuardedStoreRefusesAppendsBelowTheFloor(t *testing.T) {
	const mib = 1 << 20
	d, fd := newFakeGuard(t, 100*mib, 64*mib)
	inner, _, err := openLogStore(LogStoreWAL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &guardedStore{logStore: inner, disk: d}
	defer s.Close()
	// Raft must still see that raft-wal takes no gap (see IsMonotonic).
	if m, ok := raft.LogStore(s).(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatal("the guarded raft-wal store does not say it is monotonic")
	}
	if err := s.StoreLog(&raft.Log{Index: 1, Term: 1, Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	fd.free = 31 * mib
	_ = d.Poll()
	if err := s.StoreLogs([]*raft.Log{{Index: 2, Term: 1, Data: []byte("b")}}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append below the floor: %v", err)
	}
	fd.free = 100 * mib
	_ = d.Poll()
	if err := s.StoreLogs([]*raft.Log{{Index: 2, Term: 1, Data: []byte("b")}}); err != nil {
		t.Fatalf("append once space is freed: %v", err)
	}
	if last, _ := s.LastIndex(); last != 2 {
		t.Fatalf("last index %d, want 2", last)
	}
}

// A snapshot install (Raft calling Restore) is refused on a disk below half the
// reserve, before the state machine is touched.
func TestRestoreRefusedOnAFullDisk(t *testing.T) {
	const mib = 1 << 20
	db := openDB(t, t.TempDir())
	defer db.Close()
	f, _ := newTestFSM(t, db)
	f.ApplyBatch([]*raft.Log{entry(1, put(0, "k", "v"))})
	d, _ := newFakeGuard(t, 10*mib, 64*mib)
	f.disk = d
	rc := &closeCounter{}
	if err := f.Restore(rc); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Restore on a full disk: %v", err)
	}
	if rc.closed != 1 || f.Applied() != 1 {
		t.Fatalf("snapshot closed %d times, applied %d (want 1, 1)", rc.closed, f.Applied())
	}
}

type closeCounter struct{ closed int }

func (c *closeCounter) Read([]byte) (int, error) { return 0, errors.New("must not be read") }
func (c *closeCounter) Close() error             { c.closed++; return nil }

// With the free space less than one write above the reserve, every write of that size
// is refused: the next poll then reports the disk full, so a node never keeps refusing
// writes while saying its disk is fine (e2e TestFullDiskRefusesWritesAndRecovers waited
// 5 s on a node answering 507 but not degraded). An early refusal (writes admitted
// but not yet on disk) clears as soon as a write is admitted again.
func TestRefusedWriteReportsTheDiskFull(t *testing.T) {
	const mib = 1 << 20
	d, fd := newFakeGuard(t, 64*mib+100<<10, 64*mib)
	if err := d.Admit(256 << 10); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("a write taking the disk under the reserve was admitted: %v", err)
	}
	_ = d.Poll()
	if st := d.State(); !st.Full {
		t.Fatalf("writes are refused but the guard says the disk is not full: %+v", st)
	}
	fd.free = 70 * mib
	_ = d.Poll()
	if err := d.Admit(256 << 10); err != nil || d.State().Full {
		t.Fatalf("with room again: %v %+v", err, d.State())
	}
	_ = d.Poll()
	if st := d.State(); st.Full {
		t.Fatalf("full after a write was admitted again: %+v", st)
	}
}
