package raftgroup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ringkv/ringkv/raftgroup/internal/pairs"
)

// Data keys are 'k' + partition (4 bytes, big endian) + the user's key, so a
// partition's keys are one contiguous range that can move between groups whole.
const dataPrefix = 'k'

func partitionPrefix(p uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{dataPrefix}, p)
}

func dataKey(p uint32, key []byte) []byte {
	return append(partitionPrefix(p), key...)
}

// KV is the state machine of a data group: the keys of the partitions it owns.
type KV struct {
	group      uint32
	partitions func() []uint32 // the partitions this group owns, in ascending order
	hist       history         // the change history watches read (history.go)
	// entryTime is when the entry being applied was appended by its leader
	// (raft.Log.AppendedAt): the commit time history records with each change.
	entryTime time.Time
}

// NewKV returns the state machine of data group group; partitions reports the
// partitions it owns (from the placement table). It keeps DefaultHistoryEntries
// changes for watches; SetHistoryRetention changes that.
func NewKV(group uint32, partitions func() []uint32) *KV {
	return &KV{group: group, partitions: partitions, hist: history{keep: DefaultHistoryRetention}}
}

// SetHistoryRetention sets how much change history the group keeps for watches (at
// least; the oldest beyond it are trimmed as new changes are applied). Call it before
// the group starts.
func (kv *KV) SetHistoryRetention(r HistoryRetention) {
	kv.hist.mu.Lock()
	r.Entries = max(r.Entries, 0)
	kv.hist.keep = r
	kv.hist.mu.Unlock()
}

// beginEntry implements entryClock: the commands applied next are of an entry its
// leader appended at t.
func (kv *KV) beginEntry(t time.Time) { kv.entryTime = t }

func (kv *KV) owns(p uint32) bool {
	ps := kv.partitions()
	i := sort.Search(len(ps), func(i int) bool { return ps[i] >= p })
	return i < len(ps) && ps[i] == p
}

// Apply implements StateMachine.
func (kv *KV) Apply(txn *badger.Txn, index uint64, seq int, raw []byte) any {
	c, err := DecodeKVCommand(raw)
	if err != nil {
		return KVResult{Status: StatusInvalid}
	}
	if c.Op == OpNoop {
		return KVResult{Status: StatusOK}
	}
	if !kv.owns(c.Partition) {
		return KVResult{Status: StatusWrongGroup}
	}
	k := dataKey(c.Partition, c.Key)
	cur, found, err := getRecord(txn, k)
	if err != nil {
		panic(fmt.Sprintf("group %d: read %q: %v", kv.group, c.Key, err))
	}
	switch {
	case c.Cond == CondAbsent && found,
		c.Cond == CondExists && !found,
		c.Cond == CondMatch && (!found || cur.Mod != c.Match):
		return KVResult{Status: StatusConditionFailed}
	}
	res := KVResult{Status: StatusOK, Rev: Revision{Index: index, Seq: uint32(seq)}}
	if found && c.WantPrev {
		res.Prev = &cur
	}
	switch c.Op {
	case OpPut:
		rec := Record{Value: c.Value, Version: 1, CreateIndex: index, Mod: res.Rev}
		if found {
			rec.Version, rec.CreateIndex = cur.Version+1, cur.CreateIndex
		}
		res.Created, res.Version = !found, rec.Version
		if err = txn.Set(k, rec.encode()); err == nil {
			err = kv.record(txn, &Change{At: res.Rev, Op: OpPut, Partition: c.Partition, Key: c.Key, Record: rec, Prev: prevOf(cur, found), Time: kv.entryTime})
		}
	case OpDelete:
		if !found {
			return KVResult{Status: StatusNotFound}
		}
		if err = txn.Delete(k); err == nil {
			err = kv.record(txn, &Change{At: res.Rev, Op: OpDelete, Partition: c.Partition, Key: c.Key,
				Record: Record{Mod: res.Rev}, Prev: prevOf(cur, found), Time: kv.entryTime})
		}
	}
	if err != nil {
		panic(fmt.Sprintf("group %d: write %q: %v", kv.group, c.Key, err))
	}
	return res
}

func prevOf(cur Record, found bool) *Record {
	if !found {
		return nil
	}
	return &cur
}

func getRecord(txn *badger.Txn, k []byte) (Record, bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	var rec Record
	err = item.Value(func(v []byte) error {
		rec, err = decodeRecord(v)
		return err
	})
	return rec, err == nil, err
}

// Get reads key of partition p from the local replica.
func (kv *KV) Get(db *badger.DB, p uint32, key []byte) (Record, bool, error) {
	rec, found, _, err := kv.GetAt(db, p, key)
	return rec, found, err
}

// GetAt is Get, and the applied index of the view it read: the read is exactly the
// state at it (the position a watch resumes after, Revision{applied, EndSeq}).
func (kv *KV) GetAt(db *badger.DB, p uint32, key []byte) (rec Record, found bool, applied uint64, err error) {
	err = db.View(func(txn *badger.Txn) error {
		if applied, err = appliedIn(txn, kv.group); err != nil {
			return err
		}
		rec, found, err = getRecord(txn, dataKey(p, key))
		return err
	})
	return rec, found, applied, err
}

// Item is one entry of a listing.
type Item struct {
	Key    []byte
	Record Record
	// OmittedBytes > 0: the value, of this many bytes, was left out (ListOptions'
	// MaxValueBytes); Record.Value is nil.
	OmittedBytes int
}

// ListOptions shape a listing (List).
type ListOptions struct {
	Prefix, StartAfter []byte
	Limit              int
	KeysOnly           bool // leave every value out
	// MaxBytes > 0: stop before the keys and values held pass it (at least one item is
	// returned), and say so with truncated: keys after the last item may follow.
	MaxBytes int
	// MaxValueBytes > 0: leave out each value longer than it (Item.OmittedBytes), so a
	// listing of large values stays small; left out, it does not count in MaxBytes.
	MaxValueBytes int
}

// List returns up to o.Limit keys of this group that start with o.Prefix and sort
// after o.StartAfter, in byte order (see ListOptions).
//
// The group's partitions are merged as they are read (one iterator each, the smallest
// key next), so a listing holds at most limit items whatever the partition count; it
// used to read up to limit items from every partition and sort them.
func (kv *KV) List(db *badger.DB, o ListOptions) (out []Item, truncated bool, err error) {
	out, truncated, _, err = kv.ListAt(db, o)
	return out, truncated, err
}

// ListAt is List, and the applied index of the view it read (as GetAt).
func (kv *KV) ListAt(db *badger.DB, o ListOptions) (out []Item, truncated bool, applied uint64, err error) {
	prefix, startAfter, limit, keysOnly, maxBytes := o.Prefix, o.StartAfter, o.Limit, o.KeysOnly, o.MaxBytes
	err = db.View(func(txn *badger.Txn) error {
		var err error
		if applied, err = appliedIn(txn, kv.group); err != nil {
			return err
		}
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false // values are read one by one, for the items kept
		type cursor struct {
			it     *badger.Iterator
			prefix int // length of the partition's key prefix
		}
		var cursors []cursor
		defer func() {
			for _, c := range cursors {
				c.it.Close()
			}
		}()
		for _, p := range kv.partitions() {
			from := dataKey(p, prefix)
			if startAfter != nil && bytes.Compare(startAfter, prefix) >= 0 {
				from = dataKey(p, append(append([]byte{}, startAfter...), 0))
			}
			opts.Prefix = dataKey(p, prefix)
			it := txn.NewIterator(opts)
			it.Seek(from)
			cursors = append(cursors, cursor{it: it, prefix: len(partitionPrefix(p))})
		}
		size := 0
		for len(out) < limit {
			next := -1
			for i, c := range cursors {
				if c.it.Valid() && (next < 0 || bytes.Compare(c.it.Item().Key()[c.prefix:], cursors[next].it.Item().Key()[cursors[next].prefix:]) < 0) {
					next = i
				}
			}
			if next < 0 {
				return nil
			}
			c := cursors[next]
			item := c.it.Item()
			var rec Record
			omitted := 0
			if err := item.Value(func(v []byte) error {
				r, err := decodeRecord(v)
				rec = r
				if o.MaxValueBytes > 0 && len(r.Value) > o.MaxValueBytes {
					omitted = len(r.Value)
				}
				if keysOnly || omitted > 0 {
					rec = Record{Version: r.Version, CreateIndex: r.CreateIndex, Mod: r.Mod}
				}
				return err
			}); err != nil {
				return err
			}
			key := item.Key()[c.prefix:]
			if size += len(key) + len(rec.Value); maxBytes > 0 && len(out) > 0 && size > maxBytes {
				truncated = true
				return nil
			}
			out = append(out, Item{Key: append([]byte(nil), key...), Record: rec, OmittedBytes: omitted})
			c.it.Next()
		}
		return nil
	})
	return out, truncated, applied, err
}

// WriteSnapshot implements StateMachine: every owned key, as (length, key, length,
// value) pairs, closed by a zero length.
func (kv *KV) WriteSnapshot(txn *badger.Txn, w io.Writer) error {
	var buf []byte
	return kv.scan(txn, func(k, v []byte) error {
		buf = pairs.Append(buf[:0], k, v)
		_, err := w.Write(buf)
		return err
	}, func() error {
		_, err := w.Write([]byte{0})
		return err
	})
}

// scanPrefetch is how many values a scan reads ahead.
const scanPrefetch = 16

// scan calls fn for every owned data key in txn's view, then done.
func (kv *KV) scan(txn *badger.Txn, fn func(k, v []byte) error, done func() error) error {
	opts := badger.DefaultIteratorOptions
	// Values are prefetched a few at a time: with 1 MiB values, Badger's default of 100
	// would hold 100 MiB per stream (a snapshot, a backup).
	opts.PrefetchSize = scanPrefetch
	for _, p := range kv.partitions() {
		opts.Prefix = partitionPrefix(p)
		it := txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err == nil {
				err = fn(it.Item().Key(), v)
			}
			if err != nil {
				it.Close()
				return err
			}
		}
		it.Close()
	}
	return done()
}

// Clear implements StateMachine: delete every owned key, and the group's change
// history (history.go). It deletes key by key rather
// than with Badger's DropPrefix, which blocks every write of the DB while it runs and so
// would fail the applies of the node's other groups.
func (kv *KV) Clear(db *badger.DB) error {
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		for _, p := range kv.partitions() {
			opts.Prefix = partitionPrefix(p)
			it := txn.NewIterator(opts)
			for it.Rewind(); it.Valid(); it.Next() {
				if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		return kv.clearHistory(txn, wb)
	})
	if err != nil {
		return err
	}
	return wb.Flush()
}

// LoadSnapshot implements StateMachine.
func (kv *KV) LoadSnapshot(db *badger.DB, r io.Reader) error {
	br, ok := r.(io.ByteReader)
	if !ok {
		return errors.New("kv snapshot: reader must be an io.ByteReader")
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for {
		kl, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("kv snapshot: %w", err)
		}
		if kl == 0 {
			return wb.Flush()
		}
		k := make([]byte, kl)
		if _, err := io.ReadFull(r, k); err != nil {
			return fmt.Errorf("kv snapshot: %w", err)
		}
		vl, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("kv snapshot: %w", err)
		}
		v := make([]byte, vl)
		if _, err := io.ReadFull(r, v); err != nil {
			return fmt.Errorf("kv snapshot: %w", err)
		}
		if len(k) < 5 || k[0] != dataPrefix || !kv.owns(binary.BigEndian.Uint32(k[1:5])) {
			return fmt.Errorf("kv snapshot: key outside group %d", kv.group)
		}
		if err := wb.Set(k, v); err != nil {
			return err
		}
	}
}

// Committed implements StateMachine.
func (kv *KV) Committed() {}

// Digest hashes every owned key and value together with the applied index, all read
// from one view, so two replicas at the same applied index must report the same hash.
func (kv *KV) Digest(db *badger.DB) (applied uint64, sum [32]byte, keys int, err error) {
	h := sha256.New()
	err = db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(appliedKey(kv.group))
		if err == nil {
			err = item.Value(func(v []byte) error { applied = binary.BigEndian.Uint64(v); return nil })
		}
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return kv.scan(txn, func(k, v []byte) error {
			keys++
			var hdr []byte
			hdr = binary.AppendUvarint(hdr, uint64(len(k)))
			hdr = binary.AppendUvarint(hdr, uint64(len(v)))
			h.Write(hdr)
			h.Write(k)
			h.Write(v)
			return nil
		}, func() error { return nil })
	})
	copy(sum[:], h.Sum(nil))
	return applied, sum, keys, err
}
