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

// Where the meta group keeps its state in the node's Badger DB: the placement table and
// the token set, each one value.
var (
	tableKey  = []byte("m/table")
	tokensKey = []byte("m/tokens")
)

// Meta is the meta group's state machine: the placement table and the token set
// (tokens.go), persisted in Badger and published to the node as immutable values with
// a change notification. They are kept apart so that a token command does not bump the
// table's epoch (which plans are checked against).
type Meta struct {
	db      *badger.DB
	current atomic.Pointer[Table]
	tokens  atomic.Pointer[Tokens]
	// The state as changed by the applies of the open transaction (nil: unchanged).
	pending       *Table
	pendingTokens *Tokens

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every publication
}

// NewMeta loads the table and token set this node holds (empty when none).
func NewMeta(db *badger.DB) (*Meta, error) {
	m := &Meta{db: db, changed: make(chan struct{})}
	t, k, err := m.load()
	if err != nil {
		return nil, err
	}
	m.current.Store(t)
	m.tokens.Store(k)
	return m, nil
}

func (m *Meta) load() (*Table, *Tokens, error) {
	t := (&Table{}).Clone()
	k := (*Tokens)(nil).clone()
	err := m.db.View(func(txn *badger.Txn) error {
		if err := loadValue(txn, tableKey, func(v []byte) (err error) { t, err = DecodeTable(v); return err }); err != nil {
			return err
		}
		return loadValue(txn, tokensKey, func(v []byte) (err error) { k, err = DecodeTokens(v); return err })
	})
	return t, k, err
}

// loadValue calls decode with the value at key, if there is one.
func loadValue(txn *badger.Txn, key []byte, decode func([]byte) error) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return item.Value(decode)
}

// Table returns the current table; never nil, possibly not Initialized.
func (m *Meta) Table() *Table { return m.current.Load() }

// Tokens returns the current token set; never nil, possibly empty. Callers must not
// modify it.
func (m *Meta) Tokens() *Tokens { return m.tokens.Load() }

// Changed returns a channel closed at the next change of the table or the token set.
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
	tokens := m.pendingTokens
	if tokens == nil {
		tokens = m.tokens.Load()
	}
	if c.Op == "create_token" || c.Op == "revoke_token" {
		next, err := ApplyTokens(tokens, c)
		if err != nil {
			return err
		}
		mustSet(txn, tokensKey)(EncodeTokens(next))
		m.pendingTokens = next
		return nil
	}
	base := m.pending
	if base == nil {
		base = m.current.Load()
	}
	next, err := Apply(base, c)
	if err != nil {
		return err
	}
	var nextTokens *Tokens
	if c.Op == "init" && c.Token != nil {
		// The bootstrap admin token is made with the cluster, in the same entry.
		if nextTokens, err = ApplyTokens(tokens, Command{Op: "create_token", Token: c.Token, Bootstrap: true}); err != nil {
			return err
		}
	}
	if next != base {
		mustSet(txn, tableKey)(EncodeTable(next))
		m.pending = next
	}
	if nextTokens != nil {
		mustSet(txn, tokensKey)(EncodeTokens(nextTokens))
		m.pendingTokens = nextTokens
	}
	return nil
}

// mustSet returns a function that writes an encoded part of the state at key in txn.
// A failure leaves the state machine unable to keep its promise that the applied index
// and the state agree, so it panics.
func mustSet(txn *badger.Txn, key []byte) func(b []byte, err error) {
	return func(b []byte, err error) {
		if err == nil {
			err = txn.Set(key, b)
		}
		if err != nil {
			panic(fmt.Sprintf("meta: store %s: %v", key, err))
		}
	}
}

// Committed implements raftgroup.StateMachine: publish what the last transaction wrote.
func (m *Meta) Committed() {
	t, k := m.pending, m.pendingTokens
	m.pending, m.pendingTokens = nil, nil
	if t == nil && k == nil { // a restore (or nothing changed): read back what is stored
		var err error
		if t, k, err = m.load(); err != nil {
			panic(fmt.Sprintf("meta: reload state: %v", err))
		}
	}
	if t != nil {
		m.current.Store(t)
	}
	if k != nil {
		m.tokens.Store(k)
	}
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// WriteSnapshot implements raftgroup.StateMachine: the table, then the token set, each
// length-prefixed (a snapshot from before tokens ends after the table).
func (m *Meta) WriteSnapshot(txn *badger.Txn, w io.Writer) error {
	for _, key := range [][]byte{tableKey, tokensKey} {
		var b []byte
		item, err := txn.Get(key)
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
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Clear implements raftgroup.StateMachine.
func (m *Meta) Clear(db *badger.DB) error {
	m.pending, m.pendingTokens = nil, nil
	return db.Update(func(txn *badger.Txn) error {
		return errors.Join(txn.Delete(tableKey), txn.Delete(tokensKey))
	})
}

// LoadSnapshot implements raftgroup.StateMachine. A snapshot written before tokens
// existed holds the table alone: the token set stays empty.
func (m *Meta) LoadSnapshot(db *badger.DB, r io.Reader) error {
	table, err := readSection(r, false)
	if err != nil {
		return err
	}
	tokens, err := readSection(r, true)
	if err != nil {
		return err
	}
	if len(table) > 0 {
		if _, err := DecodeTable(table); err != nil {
			return err
		}
	}
	if len(tokens) > 0 {
		if _, err := DecodeTokens(tokens); err != nil {
			return err
		}
	}
	m.pending, m.pendingTokens = nil, nil
	return db.Update(func(txn *badger.Txn) error {
		for _, kv := range []struct{ key, value []byte }{{tableKey, table}, {tokensKey, tokens}} {
			if len(kv.value) > 0 {
				if err := txn.Set(kv.key, kv.value); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// readSection reads one length-prefixed section; with optional, the end of r before it
// is an empty section.
func readSection(r io.Reader, optional bool) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		if optional && errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("meta snapshot: %w", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("meta snapshot: %w", err)
	}
	return b, nil
}
