package raftgroup

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// guardedStore refuses to append log entries while the disk is below half the guard's
// reserve. Client writes stop at the reserve (DiskGuard.Admit), so only a follower
// whose disk fills while its leader's does not, or a disk filled by something else,
// gets here.
//
// Without it, what fails first on a full disk is raft-wal preallocating its next
// segment: the append fails with "segment is sealed" and every append after it does
// too, even once space is freed, so the replica is wedged until a restart (measured on
// a 64 MiB tmpfs: the group's leader stepped down and no leader was elected again);
// and Badger, applying what was appended, stores into mmapped pages the filesystem
// cannot back, which is a SIGBUS. Refused here, a follower's append is a rejected
// AppendEntries that Raft retries with backoff, and a leader's makes it step down and
// stand again; both succeed by themselves once space is freed.
//
// The stable store (term, vote) is not guarded: Raft panics when it cannot record a
// vote, and those writes are a few bytes the reserve covers.
type guardedStore struct {
	logStore
	disk *DiskGuard
}

func (s *guardedStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s *guardedStore) StoreLogs(logs []*raft.Log) error {
	if s.disk.belowFloor() {
		st := s.disk.State()
		return fmt.Errorf("%w: %s free, below half the %s reserve: not appending %d entries",
			ErrDiskFull, FormatBytes(st.FreeBytes), FormatBytes(st.ReserveBytes), len(logs))
	}
	return s.logStore.StoreLogs(logs)
}

// IsMonotonic forwards raft.MonotonicLogStore, which embedding the interface would hide:
// raft-wal cannot take a gap, and Raft clears the whole log after installing a snapshot
// only when the store says so (without it a follower caught up by snapshot failed every
// append after it: "non-monotonic log entries").
func (s *guardedStore) IsMonotonic() bool {
	m, ok := s.logStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
