package raftgroup

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// HistoryPage is what one ReadHistory call read.
type HistoryPage struct {
	Changes []Change
	// Through is the position the page covers: a reader that had every change up to
	// the position it asked after has, with Changes, every change up to Through. It is
	// the last change's position when the page was cut by its bounds, else the end of
	// the applied index the read saw (Revision{applied, EndSeq}), never below the
	// position asked after.
	Through Revision
	// Floor is the group's history floor (see history.go): changes after it are held.
	Floor Revision
}

// ReadHistory returns the changes of the group after position after, in commit order,
// from one consistent view of the local replica: at most maxChanges of them, and
// stopping once their keys and values pass maxBytes (at least one is returned).
//
// It fails with a *HistoryError (ErrHistoryCompacted) when after is below the floor:
// changes right after it are no longer held. While the replica is loading a snapshot
// or being removed (its applied index is absent), it answers no change and no progress.
func (kv *KV) ReadHistory(db *badger.DB, after Revision, maxChanges, maxBytes int) (HistoryPage, error) {
	page := HistoryPage{Through: after}
	err := db.View(func(txn *badger.Txn) error {
		applied, err := appliedIn(txn, kv.group)
		if err != nil || applied == 0 {
			return err
		}
		if page.Floor, err = readFloor(txn, kv.group); err != nil {
			return err
		}
		if after.Less(page.Floor) {
			return &HistoryError{Group: kv.group, Floor: page.Floor}
		}
		opts := badger.DefaultIteratorOptions
		opts.PrefetchSize = scanPrefetch
		opts.Prefix = historyGroupPrefix(kv.group)
		it := txn.NewIterator(opts)
		defer it.Close()
		from := after
		if from.Seq == EndSeq {
			from = Revision{Index: from.Index + 1}
		} else {
			from.Seq++
		}
		size := 0
		for it.Seek(historyKey(kv.group, from)); it.Valid(); it.Next() {
			if len(page.Changes) >= maxChanges || (maxBytes > 0 && len(page.Changes) > 0 && size >= maxBytes) {
				page.Through = page.Changes[len(page.Changes)-1].At
				return nil
			}
			at := historyPos(it.Item().Key())
			var c Change
			if err := it.Item().Value(func(v []byte) error {
				var err error
				c, err = decodeChange(at, v)
				return err
			}); err != nil {
				return err
			}
			size += len(c.Key) + len(c.Record.Value) + prevLen(c.Prev)
			page.Changes = append(page.Changes, c)
		}
		if end := (Revision{Index: applied, Seq: EndSeq}); page.Through.Less(end) {
			page.Through = end
		}
		return nil
	})
	if err != nil {
		var he *HistoryError
		if errors.As(err, &he) {
			return HistoryPage{Through: after, Floor: he.Floor}, err
		}
		return HistoryPage{Through: after}, err
	}
	return page, nil
}

// HistoryFloor is the floor of the group's history on the local replica and the
// applied index read with it (0 while a snapshot loads).
func (kv *KV) HistoryFloor(db *badger.DB) (floor Revision, applied uint64, err error) {
	err = db.View(func(txn *badger.Txn) error {
		if applied, err = appliedIn(txn, kv.group); err != nil {
			return err
		}
		floor, err = readFloor(txn, kv.group)
		return err
	})
	return floor, applied, err
}
