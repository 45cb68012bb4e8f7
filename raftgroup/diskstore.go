package raftgroup

import (
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// guardedStore refuses to append log entries while the disk is below the guard's floor.
// Raft treats a failed append on a follower as a rejected AppendEntries and retries it
// later with backoff, so a follower whose disk fills falls behind instead of writing
// on until Badger, applying what it appended, touches an mmapped page the filesystem
// cannot back (SIGBUS). The stable store (term, vote) is not guarded: Raft panics when
// it cannot record a vote, and those writes are a few bytes the reserve covers.
//
// A leader's appends are not refused: its client writes already stop at the reserve
// (DiskGuard.Admit), what it still appends (no-op and configuration entries, the meta
// group's table) is small, and a leader failing an append steps down, which would turn
// a full disk into endless elections and take reads down with it.
type guardedStore struct {
	logStore
	disk *DiskGuard
	raft atomic.Pointer[raft.Raft] // set once the replica's Raft instance exists
}

func (s *guardedStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s *guardedStore) StoreLogs(logs []*raft.Log) error {
	if r := s.raft.Load(); r != nil && r.State() != raft.Leader && s.disk.belowFloor() {
		st := s.disk.State()
		return fmt.Errorf("%w: %s free, below half the %s reserve: not appending %d entries",
			ErrDiskFull, formatBytes(st.FreeBytes), formatBytes(st.ReserveBytes), len(logs))
	}
	return s.logStore.StoreLogs(logs)
}
