package raftgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

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

// HistoryRetention is how much change history a data group keeps for watches
// (--watch-history): the last Entries changes or, when Age is set, the changes
// committed (appended by their leader, raft.Log.AppendedAt) within Age of the newest
// change the group applied. Age is measured against the group's own newest change,
// not the clock, so an idle group keeps its history and a watcher that was away
// resumes; as etcd's periodic compaction, it bounds history by time under load.
// The zero value keeps none.
type HistoryRetention struct {
	Entries int
	Age     time.Duration
}

// DefaultHistoryRetention keeps DefaultHistoryEntries changes.
var DefaultHistoryRetention = HistoryRetention{Entries: DefaultHistoryEntries}

// ParseHistoryRetention reads --watch-history: a count of changes ("10000"; "0"
// keeps none) or a duration ("1h", "30m", "90s").
func ParseHistoryRetention(s string) (HistoryRetention, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return HistoryRetention{}, fmt.Errorf("watch history %q: want 0 or more changes, or a duration such as 1h", s)
		}
		return HistoryRetention{Entries: n}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return HistoryRetention{}, fmt.Errorf("watch history %q: want a count of changes (10000) or a positive duration (1h)", s)
	}
	return HistoryRetention{Age: d}, nil
}

// String is the form ParseHistoryRetention reads.
func (r HistoryRetention) String() string {
	if r.Age > 0 {
		return r.Age.String()
	}
	return strconv.Itoa(r.Entries)
}

// Keeps reports whether any history is kept.
func (r HistoryRetention) Keeps() bool { return r.Age > 0 || r.Entries > 0 }

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
	// Time is when the change's entry was committed, as its leader appended it
	// (raft.Log.AppendedAt); zero for changes recorded before it was kept.
	Time time.Time
}

// timedOp marks, in an encoded change's op byte, that the entry's time follows (8
// bytes, Unix nanoseconds): changes recorded before times were kept lack it.
const timedOp = 0x80

// encode: op (| timedOp), [time (8)], partition (4), key, [put: version, create index, value], prev flag,
// [prev: version, create index, mod index, mod seq, value]; integers as uvarints,
// byte strings length-prefixed.
func (c *Change) encode() []byte {
	b := make([]byte, 0, 32+len(c.Key)+len(c.Record.Value)+prevLen(c.Prev))
	if c.Time.IsZero() {
		b = append(b, byte(c.Op))
	} else {
		b = append(b, byte(c.Op)|timedOp)
		b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
	}
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
	t, head, ok := changeTime(b)
	if !ok || len(b) < head+4 {
		return Change{}, bad
	}
	c := Change{At: at, Op: Op(b[0] &^ timedOp), Partition: binary.BigEndian.Uint32(b[head:]), Time: t}
	b = b[head+4:]
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

// changeTime reads the time of an encoded change (zero for an untimed one) and how
// many bytes the op and the time take; ok is false for an encoding too short to hold
// what its op byte says.
func changeTime(b []byte) (t time.Time, head int, ok bool) {
	switch {
	case len(b) < 1:
		return time.Time{}, 0, false
	case b[0]&timedOp == 0:
		return time.Time{}, 1, true
	case len(b) < 9:
		return time.Time{}, 0, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9]))), 9, true
}

// history is a data group's bookkeeping of its change history: how many entries it
// holds, where the oldest is and when it was committed, so trimming seeks straight to
// it (never over the tombstones of entries already trimmed) and knows without a read
// whether anything is due. It is loaded from the DB on first use and forgotten when
// the group's state is cleared.
type history struct {
	mu         sync.Mutex
	keep       HistoryRetention
	loaded     bool
	count      int
	oldest     Revision  // position of the oldest entry held, when count > 0
	oldestTime time.Time // its commit time (zero: untimed)
	newest     time.Time // the latest commit time recorded: what Age counts back from
}

// load counts the entries held, in txn's view.
func (h *history) load(txn *badger.Txn, group uint32) error {
	if h.loaded {
		return nil
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
			t, err := itemChangeTime(it.Item())
			if err != nil {
				return err
			}
			h.oldestTime = t
		}
		h.count++
	}
	h.loaded = true
	return nil
}

func itemChangeTime(item *badger.Item) (t time.Time, err error) {
	err = item.Value(func(v []byte) error {
		var ok bool
		if t, _, ok = changeTime(v); !ok {
			return fmt.Errorf("%w: history entry %x", ErrBadEntry, item.Key())
		}
		return nil
	})
	return t, err
}

// record writes change c into txn, the apply's transaction.
func (kv *KV) record(txn *badger.Txn, c *Change) error {
	h := &kv.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.load(txn, kv.group); err != nil {
		return err
	}
	if err := txn.Set(historyKey(kv.group, c.At), c.encode()); err != nil {
		return err
	}
	if h.count == 0 {
		h.oldest, h.oldestTime = c.At, c.Time
	}
	h.count++
	if c.Time.After(h.newest) {
		h.newest = c.Time
	}
	return nil
}

// trimBatch is how far past its limit history may grow before it is trimmed: trimming
// costs an iterator, so it is done for several entries at once (at most 1/16 over).
func (h *history) trimBatch() int { return min(max(h.keep.Entries/16, 1), 256) }

// ageSlack is, likewise, how far past its age the oldest entry may get before a trim:
// 1/16 of the age, at most a second.
func (h *history) ageSlack() time.Duration { return min(h.keep.Age/16, time.Second) }

// due says whether a trim is due, and the commit time entries older than which go
// (zero when trimming by count).
func (h *history) due() (bool, time.Time) {
	if !h.loaded || h.count == 0 {
		return false, time.Time{}
	}
	if h.keep.Age > 0 {
		cutoff := h.newest.Add(-h.keep.Age)
		return h.oldestTime.Before(cutoff.Add(-h.ageSlack())), cutoff
	}
	return h.count-h.keep.Entries >= h.trimBatch(), time.Time{}
}

// FinishTxn trims history before an apply transaction commits: the oldest entries
// beyond the count kept, or committed before the age kept, are deleted, at most
// maxTrimPerTxn of them, and the floor is raised to the last one deleted. It
// implements txnFinisher.
func (kv *KV) FinishTxn(txn *badger.Txn) error {
	h := &kv.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	due, cutoff := h.due()
	if !due {
		return nil
	}
	n := maxTrimPerTxn
	if h.keep.Age == 0 {
		n = min(h.count-h.keep.Entries, maxTrimPerTxn)
	}
	last, deleted, next, nextTime, err := kv.trimOldest(txn, n, cutoff)
	if err != nil {
		return err
	}
	if deleted == 0 {
		return nil
	}
	floor := historyPos(last)
	if err := txn.Set(floorKey(kv.group), historyKey(0, floor)[5:]); err != nil {
		return err
	}
	h.count -= deleted
	h.oldest, h.oldestTime = next, nextTime
	return nil
}

// trimOldest deletes, from the oldest on, at most n history entries (with a cutoff,
// only those committed before it) and answers the last one deleted and the position
// and time of the entry after it (zero when none is left).
func (kv *KV) trimOldest(txn *badger.Txn, n int, cutoff time.Time) (last []byte, deleted int, next Revision, nextTime time.Time, err error) {
	h := &kv.hist
	byAge := h.keep.Age > 0
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = byAge // trimming by age reads each entry's time
	opts.Prefix = historyGroupPrefix(kv.group)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(historyKey(kv.group, h.oldest)); it.Valid(); it.Next() {
		if byAge {
			t, err := itemChangeTime(it.Item())
			if err != nil {
				return nil, 0, next, nextTime, err
			}
			if !t.Before(cutoff) {
				break
			}
		}
		if deleted == n {
			break
		}
		last = it.Item().KeyCopy(nil)
		if err := txn.Delete(last); err != nil {
			return nil, 0, next, nextTime, err
		}
		deleted++
	}
	if it.Valid() {
		next = historyPos(it.Item().Key())
		if nextTime, err = itemChangeTime(it.Item()); err != nil {
			return nil, 0, next, nextTime, err
		}
	}
	return last, deleted, next, nextTime, nil
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
