package raftgroup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// ReadView is a consistent read view of a data group's state: one Badger read
// transaction, and the applied index read inside it (the two are written in one
// transaction by every apply, so the view holds exactly the state at Applied). A
// backup streams a group from one.
//
// It holds Badger's read timestamp until Close: value-log GC cannot reclaim what the
// view still sees, so a view is for the length of one stream, like a Raft snapshot's.
type ReadView struct {
	txn     *badger.Txn
	kv      *KV
	Applied uint64
}

// ErrNotDataGroup: a read view was asked of a group whose state machine is not a KV.
var ErrNotDataGroup = errors.New("raftgroup: not a data group")

// OpenReadView confirms a read index (LinearizableRead: every write acknowledged
// before the call is applied locally, ErrNotLeader when this replica does not lead)
// and opens a view at least that recent. Close it.
func (g *Group) OpenReadView(ctx context.Context) (*ReadView, error) {
	kv, ok := g.sm.(*KV)
	if !ok {
		return nil, fmt.Errorf("group %d: %w", g.id, ErrNotDataGroup)
	}
	idx, err := g.LinearizableRead(ctx)
	if err != nil {
		return nil, err
	}
	txn := g.fsm.db.NewTransaction(false)
	applied, err := appliedIn(txn, g.id)
	if err == nil && applied < idx {
		// A snapshot install cleared the applied index between the read index and the
		// view (fsm.restore): the view is not the state at any index.
		err = fmt.Errorf("group %d: %w: the replica is loading a snapshot", g.id, ErrNotLeader)
	}
	if err != nil {
		txn.Discard()
		return nil, err
	}
	return &ReadView{txn: txn, kv: kv, Applied: applied}, nil
}

func appliedIn(txn *badger.Txn, group uint32) (uint64, error) {
	item, err := txn.Get(appliedKey(group))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var idx uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("group %d: corrupt applied index", group)
		}
		idx = binary.BigEndian.Uint64(v)
		return nil
	})
	return idx, err
}

// Scan calls fn for every key of the group in the view, in the order and encoding of
// the group's Raft snapshot (WriteSnapshot): key is the stored key ('k', the
// partition as 4 bytes big endian, the user's key), value the stored record (see
// SnapshotRecord). fn must not keep key or value after it returns.
func (v *ReadView) Scan(fn func(key, value []byte) error) error {
	return v.kv.scan(v.txn, fn, func() error { return nil })
}

// Close releases the view.
func (v *ReadView) Close() { v.txn.Discard() }

// SplitDataKey parses a stored key: its partition and the user's key; ok is false for
// anything that is not a data key.
func SplitDataKey(k []byte) (partition uint32, key []byte, ok bool) {
	if len(k) < 6 || k[0] != dataPrefix {
		return 0, nil, false
	}
	return binary.BigEndian.Uint32(k[1:5]), k[5:], true
}

// DataKey is the stored key of key in partition p (the inverse of SplitDataKey).
func DataKey(p uint32, key []byte) []byte { return dataKey(p, key) }

// SnapshotRecord decodes a stored record (as Scan and snapshots carry it): the value
// and its version, create index and mod revision. It fails on a record shorter than
// its 28-byte header.
func SnapshotRecord(b []byte) (Record, error) { return decodeRecord(b) }

// EncodeRecord is the stored form of r (the inverse of SnapshotRecord).
func EncodeRecord(r Record) []byte { return r.encode() }
