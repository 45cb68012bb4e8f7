package raftgroup

import (
	"io"

	"github.com/dgraph-io/badger/v4"
)

// StateMachine is what a group replicates: the KV store for data groups, the placement
// table for the meta group. The group's fsm calls it on Raft's single apply goroutine
// and records the applied index in the same Badger transaction, so the two never
// disagree after a crash.
type StateMachine interface {
	// Apply applies command seq of the entry at index inside txn and returns the
	// answer handed to the proposer. It must be deterministic: every replica runs it.
	Apply(txn *badger.Txn, index uint64, seq int, cmd []byte) any
	// WriteSnapshot writes the whole state visible in txn (a consistent read view).
	WriteSnapshot(txn *badger.Txn, w io.Writer) error
	// Clear deletes the whole state (before a snapshot is loaded).
	Clear(db *badger.DB) error
	// LoadSnapshot writes the state read from r, as written by WriteSnapshot.
	LoadSnapshot(db *badger.DB, r io.Reader) error
	// Committed is called after every committed apply or restore, outside any
	// transaction (to refresh caches or notify watchers).
	Committed()
}
