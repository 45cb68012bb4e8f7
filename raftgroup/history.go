package raftgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// A data group's change history is what watches read: every applied put and delete
// also writes one history entry, in the same Badger transaction as the data, so a
// change is in history exactly when it is applied.
//
// Layout (beside the data keys, 'k', and the applied index, 'a'):
//
//	'w' + group (4 bytes BE) + index (8 bytes BE) + seq (4 bytes BE) -> the change
//	'W' + group (4 bytes BE)                                         -> the floor
//
// Data keys are 'k' + partition, so the data scan, snapshots, digests, listings and
// backups (all of which iterate 'k' + partition prefixes) never see history.
//
// The floor is the position after which history is complete: every change with a
// position above it is held. It is absent (zero) for a replica that applied its group
// from index 1; trimming raises it to the last change trimmed; a replica restored from
// a snapshot sets it to the snapshot's index (end of that index), as history is not in
// snapshots: a follower caught up by InstallSnapshot has history from there on.
const (
	historyPrefix = 'w'
	floorPrefix   = 'W'
)

// EndSeq as a Revision's Seq means "after every command of the index": the position
// of a state read at an applied index (a listing, a GET) is Revision{applied, EndSeq}.
const EndSeq = math.MaxUint32

// DefaultHistoryEntries is how many changes a group keeps for watches by default
// (--watch-history).
const DefaultHistoryEntries = 10000

// maxTrimPerTxn bounds the history entries one apply transaction deletes, so trimming
// (after --watch-history was lowered, say) never grows one transaction unboundedly.
const maxTrimPerTxn = 4096

// ErrHistoryCompacted: a position at or after which changes are asked is older than the
// group's history holds (HistoryError names the oldest position that can be resumed).
var ErrHistoryCompacted = errors.New("raftgroup: history compacted")

// HistoryError reports ErrHistoryCompacted with the group's floor.
type HistoryError struct {
	Group uint32
	Floor Revision // the oldest position changes can be read after
}

func (e *HistoryError) Error() string {
	return fmt.Sprintf("group %d: history holds changes after %d.%d only", e.Group, e.Floor.Index, e.Floor.Seq)
}

func (e *HistoryError) Unwrap() error { return ErrHistoryCompacted }

// Less orders positions: by index, then by command within the entry.
func (r Revision) Less(o Revision) bool {
	return r.Index < o.Index || (r.Index == o.Index && r.Seq < o.Seq)
}

func historyGroupPrefix(group uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{historyPrefix}, group)
}

func historyKey(group uint32, at Revision) []byte {
	k := binary.BigEndian.AppendUint64(historyGroupPrefix(group), at.Index)
	return binary.BigEndian.AppendUint32(k, at.Seq)
}

func historyPos(k []byte) Revision {
	return Revision{Index: binary.BigEndian.Uint64(k[5:13]), Seq: binary.BigEndian.Uint32(k[13:17])}
}

func floorKey(group uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{floorPrefix}, group)
}

// Change is one applied put or delete, as history holds it.
type Change struct {
	At        Revision // the change's position: its Raft index and seq (the key's mod revision)
	Op        Op       // OpPut or OpDelete
	Partition uint32
	Key       []byte
	// Record is the key's record after a put (Mod == At); after a delete only its
	// Mod is set (At).
	Record Record
	Prev   *Record // the record the change replaced, when there was one
}

// encode: op, partition (4), key, [put: version, create index, value], prev flag,
// [prev: version, create index, mod index, mod seq, value]; integers as uvarints,
// byte strings length-prefixed.
func (c *Change) encode() []byte {
	b := make([]byte, 0, 32+len(c.Key)+len(c.Record.Value)+prevLen(c.Prev))
	b = append(b, byte(c.Op))
	b = binary.BigEndian.AppendUint32(b, c.Partition)
	b = appendBytes(b, c.Key)
	if c.Op == OpPut {
		b = binary.AppendUvarint(b, c.Record.Version)
		b = binary.AppendUvarint(b, c.Record.CreateIndex)
		b = appendBytes(b, c.Record.Value)
	}
	if c.Prev == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, c.Prev.Version)
	b = binary.AppendUvarint(b, c.Prev.CreateIndex)
	b = binary.AppendUvarint(b, c.Prev.Mod.Index)
	b = binary.AppendUvarint(b, uint64(c.Prev.Mod.Seq))
	return appendBytes(b, c.Prev.Value)
}

func prevLen(p *Record) int {
	if p == nil {
		return 0
	}
	return len(p.Value)
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeChange parses what encode wrote; the byte slices are copies.
func decodeChange(at Revision, b []byte) (Change, error) {
	bad := fmt.Errorf("%w: history entry %d.%d", ErrBadEntry, at.Index, at.Seq)
	if len(b) < 5 {
		return Change{}, bad
	}
	c := Change{At: at, Op: Op(b[0]), Partition: binary.BigEndian.Uint32(b[1:5])}
	b = b[5:]
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	bs := func() []byte {
		s, rest, ok := readBytes(b)
		if !ok {
			b = nil
			return nil
		}
		b = rest
		return append([]byte{}, s...)
	}
	if c.Key = bs(); b == nil || (c.Op != OpPut && c.Op != OpDelete) {
		return Change{}, bad
	}
	c.Record.Mod = at
	if c.Op == OpPut {
		c.Record.Version, c.Record.CreateIndex = uv(), uv()
		if c.Record.Value = bs(); b == nil {
			return Change{}, bad
		}
	}
	if len(b) < 1 {
		return Change{}, bad
	}
	hasPrev := b[0] == 1
	b = b[1:]
	if hasPrev {
		p := Record{Version: uv(), CreateIndex: uv()}
		p.Mod = Revision{Index: uv(), Seq: uint32(uv())}
		if p.Value = bs(); b == nil {
			return Change{}, bad
		}
		c.Prev = &p
	}
	if len(b) != 0 {
		return Change{}, bad
	}
	return c, nil
}

// history is a data group's bookkeeping of its change history: how many entries it
// holds and where the oldest is, so trimming seeks straight to it (never over the
// tombstones of entries already trimmed). It is loaded from the DB on first use and
// forgotten when the group's state is cleared.
type history struct {
	mu     sync.Mutex
	limit  int // entries kept (at least); 0 keeps none
	loaded bool
	count  int
	oldest Revision // position of the oldest entry held, when count > 0
}

// load counts the entries held, in txn's view.
func (h *history) load(txn *badger.Txn, group uint32) {
	if h.loaded {
		return
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = historyGroupPrefix(group)
	it := txn.NewIterator(opts)
	defer it.Close()
	h.count = 0
	for it.Rewind(); it.Valid(); it.Next() {
		if h.count == 0 {
			h.oldest = historyPos(it.Item().Key())
		}
		h.count++
	}
	h.loaded = true
}

// record writes change c into txn, the apply's transaction.
func (kv *KV) record(txn *badger.Txn, c *Change) error {
	h := &kv.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	h.load(txn, kv.group)
	if err := txn.Set(historyKey(kv.group, c.At), c.encode()); err != nil {
		return err
	}
	if h.count == 0 {
		h.oldest = c.At
	}
	h.count++
	return nil
}

// trimBatch is how far past its limit history may grow before it is trimmed: trimming
// costs an iterator, so it is done for several entries at once (at most 1/16 over).
func (h *history) trimBatch() int { return min(max(h.limit/16, 1), 256) }

// FinishTxn trims history to its limit before an apply transaction commits: the
// oldest entries are deleted, at most maxTrimPerTxn of them, and the floor is raised
// to the last one deleted. It implements txnFinisher.
func (kv *KV) FinishTxn(txn *badger.Txn) error {
	h := &kv.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.loaded || h.count-h.limit < h.trimBatch() {
		return nil
	}
	n := min(h.count-h.limit, maxTrimPerTxn)
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = historyGroupPrefix(kv.group)
	it := txn.NewIterator(opts)
	var last []byte
	deleted := 0
	for it.Seek(historyKey(kv.group, h.oldest)); it.Valid() && deleted < n; it.Next() {
		last = it.Item().KeyCopy(nil)
		if err := txn.Delete(last); err != nil {
			it.Close()
			return err
		}
		deleted++
	}
	next := Revision{}
	if it.Valid() {
		next = historyPos(it.Item().Key())
	}
	it.Close()
	if deleted == 0 {
		return nil
	}
	floor := historyPos(last)
	if err := txn.Set(floorKey(kv.group), historyKey(0, floor)[5:]); err != nil {
		return err
	}
	h.count -= deleted
	h.oldest = next
	return nil
}

// restored sets the floor of a replica restored from a snapshot at index applied,
// in the transaction that stores the applied index (history starts after it).
func (kv *KV) restored(txn *badger.Txn, applied uint64) error {
	return txn.Set(floorKey(kv.group), historyKey(0, Revision{Index: applied, Seq: EndSeq})[5:])
}

// clearHistory deletes the group's history and floor (with its data: Clear).
func (kv *KV) clearHistory(txn *badger.Txn, wb *badger.WriteBatch) error {
	h := &kv.hist
	h.mu.Lock()
	h.loaded, h.count = false, 0
	h.mu.Unlock()
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = historyGroupPrefix(kv.group)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
			return err
		}
	}
	return wb.Delete(floorKey(kv.group))
}

func readFloor(txn *badger.Txn, group uint32) (Revision, error) {
	item, err := txn.Get(floorKey(group))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Revision{}, nil
	}
	if err != nil {
		return Revision{}, err
	}
	var r Revision
	err = item.Value(func(v []byte) error {
		if len(v) != 12 {
			return fmt.Errorf("group %d: corrupt history floor", group)
		}
		r = Revision{Index: binary.BigEndian.Uint64(v), Seq: binary.BigEndian.Uint32(v[8:])}
		return nil
	})
	return r, err
}
