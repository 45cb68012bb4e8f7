package placement

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// tableKey is where the meta group keeps the table in the node's Badger DB.
var tableKey = []byte("m/table")

// Meta is the meta group's state machine: the placement table, persisted in Badger and
// published to the node as an immutable value with a change notification.
type Meta struct {
	db      *badger.DB
	current atomic.Pointer[Table]
	pending *Table // the table as changed by the applies of the open transaction

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every publication
}

// NewMeta loads the table this node holds (empty when none).
func NewMeta(db *badger.DB) (*Meta, error) {
	m := &Meta{db: db, changed: make(chan struct{})}
	t, err := m.load()
	if err != nil {
		return nil, err
	}
	m.current.Store(t)
	return m, nil
}

func (m *Meta) load() (*Table, error) {
	t := (&Table{}).Clone()
	err := m.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(tableKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			var err error
			t, err = DecodeTable(v)
			return err
		})
	})
	return t, err
}

// Table returns the current table; never nil, possibly not Initialized.
func (m *Meta) Table() *Table { return m.current.Load() }

// Changed returns a channel closed at the next change of the table.
func (m *Meta) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Apply implements raftgroup.StateMachine. It answers nil or an error.
func (m *Meta) Apply(txn *badger.Txn, index uint64, seq int, raw []byte) any {
	c, err := DecodeCommand(raw)
	if err != nil {
		return err
	}
	base := m.pending
	if base == nil {
		base = m.current.Load()
	}
	next, err := Apply(base, c)
	if err != nil {
		return err
	}
	if next == base {
		return nil
	}
	b, err := EncodeTable(next)
	if err == nil {
		err = txn.Set(tableKey, b)
	}
	if err != nil {
		panic(fmt.Sprintf("meta: store table: %v", err))
	}
	m.pending = next
	return nil
}

// Committed implements raftgroup.StateMachine: publish what the last transaction wrote.
func (m *Meta) Committed() {
	next := m.pending
	m.pending = nil
	if next == nil { // a restore: read back what was loaded
		t, err := m.load()
		if err != nil {
			panic(fmt.Sprintf("meta: reload table: %v", err))
		}
		next = t
	}
	m.current.Store(next)
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// WriteSnapshot implements raftgroup.StateMachine: a length-prefixed table.
func (m *Meta) WriteSnapshot(txn *badger.Txn, w io.Writer) error {
	var b []byte
	item, err := txn.Get(tableKey)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return err
	default:
		if b, err = item.ValueCopy(nil); err != nil {
			return err
		}
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Clear implements raftgroup.StateMachine.
func (m *Meta) Clear(db *badger.DB) error {
	m.pending = nil
	return db.Update(func(txn *badger.Txn) error { return txn.Delete(tableKey) })
}

// LoadSnapshot implements raftgroup.StateMachine.
func (m *Meta) LoadSnapshot(db *badger.DB, r io.Reader) error {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return err
	}
	b := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	if _, err := DecodeTable(b); err != nil {
		return err
	}
	m.pending = nil
	return db.Update(func(txn *badger.Txn) error { return txn.Set(tableKey, b) })
}
