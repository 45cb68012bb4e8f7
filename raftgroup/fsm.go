package raftgroup

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// maxTxnBytes and maxTxnCmds bound the log data and the commands applied in one Badger
// transaction, well below Badger's own batch limits (15% of the 16 MiB memtable,
// 2.4 MiB, and that over 96 bytes a skiplist node, ~26,000 writes), so a large apply
// batch is split over several transactions instead of failing with ErrTxnTooBig. A
// command writes its key and, in the change history, its value and the previous one
// again (values of 1 KiB and more count only as pointers into the value log): about
// three times its log bytes and three writes, plus the history trimmed (maxTrimPerTxn).
const (
	maxTxnBytes = 512 << 10
	maxTxnCmds  = 4096
)

// txnFinisher is a state machine that writes something once per apply transaction,
// before it commits (the KV trims its change history).
type txnFinisher interface {
	FinishTxn(txn *badger.Txn) error
}

// restoreRecorder is a state machine that records, in the transaction storing the
// applied index after a snapshot was loaded, that it was restored at that index (the KV
// starts its change history there).
type restoreRecorder interface {
	restored(txn *badger.Txn, applied uint64) error
}

// entryClock is a state machine told, before an entry's commands, when the entry's
// leader appended it (raft.Log.AppendedAt; the same on every replica, as it travels
// with the entry): the KV records it as each change's commit time.
type entryClock interface {
	beginEntry(appendedAt time.Time)
}

// snapshotMagic starts every snapshot stream; the version lets the format change.
var snapshotMagic = []byte("RKSNAP01")

// appliedKey is where a group's applied index lives in the node's Badger DB.
func appliedKey(group uint32) []byte {
	k := []byte{'a', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(k[1:], group)
	return k
}

// readApplied returns the applied index persisted for group (0 when none).
func readApplied(db *badger.DB, group uint32) (uint64, error) {
	var idx uint64
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(appliedKey(group))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("group %d: corrupt applied index", group)
			}
			idx = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return idx, err
}

func putApplied(txn *badger.Txn, group uint32, idx uint64) error {
	return txn.Set(appliedKey(group), binary.BigEndian.AppendUint64(nil, idx))
}

// fsm adapts a StateMachine to hashicorp/raft. It applies each batch of committed
// entries in as few Badger transactions as the size bound allows, storing the applied
// index in the same transaction, and skips entries at or below the persisted applied
// index: on restart Raft replays everything after its last snapshot, and the state
// machine already holds part of it.
type fsm struct {
	group   uint32
	db      *badger.DB
	sm      StateMachine
	log     *slog.Logger
	gate    *sync.RWMutex // held for reading while writing to db, when set (Host.gate)
	disk    *DiskGuard    // refuses snapshot installs on a full disk, when set
	applied atomic.Uint64
	// restores counts the snapshots this replica loaded since it started: what shows
	// that a follower behind a compaction was caught up by InstallSnapshot.
	restores atomic.Uint64

	mu      sync.Mutex
	advance chan struct{} // closed and replaced whenever applied moves
}

func newFSM(group uint32, db *badger.DB, sm StateMachine, log *slog.Logger) (*fsm, error) {
	idx, err := readApplied(db, group)
	if err != nil {
		return nil, err
	}
	f := &fsm{group: group, db: db, sm: sm, log: log, advance: make(chan struct{})}
	f.applied.Store(idx)
	return f, nil
}

// Applied is the index of the last entry the state machine holds.
func (f *fsm) Applied() uint64 { return f.applied.Load() }

// WaitApplied blocks until the state machine holds index idx or ctx ends (its error),
// or stopped is closed (ErrStopped: the replica stopped, or was removed from the node,
// and will apply nothing more).
func (f *fsm) WaitApplied(ctx context.Context, idx uint64, stopped <-chan struct{}) error {
	for {
		f.mu.Lock()
		ch := f.advance
		f.mu.Unlock()
		if f.applied.Load() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			return ErrStopped
		}
	}
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.mu.Lock()
	close(f.advance)
	f.advance = make(chan struct{})
	f.mu.Unlock()
}

// Apply is the single-entry path; Raft uses ApplyBatch since fsm implements it.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	if f.gate != nil {
		f.gate.RLock()
		defer f.gate.RUnlock()
	}
	resps := make([]any, len(logs))
	last := f.applied.Load()
	for i := 0; i < len(logs); {
		txn := f.db.NewTransaction(true)
		size, cmds, j, from := 0, 0, i, last
		for ; j < len(logs) && (j == i || (size+len(logs[j].Data) <= maxTxnBytes && cmds < maxTxnCmds)); j++ {
			l := logs[j]
			size += len(l.Data)
			if l.Index <= last {
				continue // already held: replay after restart
			}
			if l.Type == raft.LogCommand {
				var n int
				resps[j], n = f.applyEntry(txn, l)
				cmds += n
			}
			last = l.Index
		}
		if last != from {
			if fin, ok := f.sm.(txnFinisher); ok {
				if err := fin.FinishTxn(txn); err != nil {
					panic(fmt.Sprintf("group %d: finish apply batch: %v", f.group, err))
				}
			}
			if err := putApplied(txn, f.group, last); err != nil {
				panic(fmt.Sprintf("group %d: record applied index: %v", f.group, err))
			}
			// A failed commit leaves the state machine unable to keep its promise that
			// applied index and data agree; stopping is the only safe answer.
			if err := txn.Commit(); err != nil {
				panic(fmt.Sprintf("group %d: commit apply batch: %v", f.group, err))
			}
		} else {
			txn.Discard()
		}
		i = j
	}
	if last != f.applied.Load() {
		f.setApplied(last)
		f.sm.Committed()
	}
	return resps
}

// applyEntry applies every command of one entry and returns their answers in order,
// and how many there were.
func (f *fsm) applyEntry(txn *badger.Txn, l *raft.Log) (any, int) {
	cmds, err := decodeBatch(l.Data)
	if err != nil {
		f.log.Error("skipping undecodable entry", "group", f.group, "index", l.Index, "err", err)
		return err, 0
	}
	if c, ok := f.sm.(entryClock); ok {
		c.beginEntry(l.AppendedAt)
	}
	out := make([]any, len(cmds))
	for seq, c := range cmds {
		out[seq] = f.sm.Apply(txn, l.Index, seq, c)
	}
	return out, len(cmds)
}

// Snapshot opens a Badger read view on Raft's apply goroutine, so the view holds
// exactly the state at the applied index; Persist streams it later, concurrently with
// new applies.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{txn: f.db.NewTransaction(false), sm: f.sm, applied: f.applied.Load()}, nil
}

// Restore replaces the state with a snapshot (a follower that fell behind the leader's
// log, or a restart behind the newest snapshot). The applied index is cleared first so a
// crash half-way leaves the group "behind its snapshot" and the restore runs again.
//
// Raft calls it to install a leader's snapshot; on a disk below half its reserve it is
// refused (Raft answers the leader with the error and the leader tries again later):
// loading a snapshot writes the group's whole data into Badger, whose mmapped files
// would meet the full disk (SIGBUS).
func (f *fsm) Restore(rc io.ReadCloser) error {
	if f.disk != nil && f.disk.belowFloor() {
		rc.Close()
		st := f.disk.State()
		return fmt.Errorf("group %d: %w: %s free, below half the %s reserve: not installing a snapshot",
			f.group, ErrDiskFull, FormatBytes(st.FreeBytes), FormatBytes(st.ReserveBytes))
	}
	return f.restore(rc)
}

// restore is Restore without the disk check: restoreIfBehind, at start, must bring a
// state machine up to its own newest snapshot for the replica to start at all.
func (f *fsm) restore(rc io.ReadCloser) error {
	defer rc.Close()
	if f.gate != nil {
		f.gate.RLock()
		defer f.gate.RUnlock()
	}
	r := bufio.NewReaderSize(rc, 1<<16)
	applied, err := readSnapshotHeader(r)
	if err != nil {
		return err
	}
	if err := f.db.Update(func(txn *badger.Txn) error { return txn.Delete(appliedKey(f.group)) }); err != nil {
		return err
	}
	if err := f.sm.Clear(f.db); err != nil {
		return fmt.Errorf("clear group %d: %w", f.group, err)
	}
	if err := f.sm.LoadSnapshot(f.db, r); err != nil {
		return fmt.Errorf("load snapshot of group %d: %w", f.group, err)
	}
	if err := f.db.Update(func(txn *badger.Txn) error {
		if rr, ok := f.sm.(restoreRecorder); ok {
			if err := rr.restored(txn, applied); err != nil {
				return err
			}
		}
		return putApplied(txn, f.group, applied)
	}); err != nil {
		return err
	}
	f.setApplied(applied)
	f.restores.Add(1)
	f.sm.Committed()
	f.log.Info("restored snapshot", "group", f.group, "applied", applied)
	return nil
}

func readSnapshotHeader(r io.Reader) (uint64, error) {
	h := make([]byte, len(snapshotMagic)+8)
	if _, err := io.ReadFull(r, h); err != nil {
		return 0, fmt.Errorf("snapshot header: %w", err)
	}
	if string(h[:len(snapshotMagic)]) != string(snapshotMagic) {
		return 0, errors.New("snapshot header: not a ringkv snapshot")
	}
	return binary.BigEndian.Uint64(h[len(snapshotMagic):]), nil
}

type fsmSnapshot struct {
	txn     *badger.Txn
	sm      StateMachine
	applied uint64
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 1<<16)
	_, err := w.Write(append(append([]byte{}, snapshotMagic...), binary.BigEndian.AppendUint64(nil, s.applied)...))
	if err == nil {
		err = s.sm.WriteSnapshot(s.txn, w)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.txn.Discard() }
