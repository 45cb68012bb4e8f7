package placement

import (
	"bytes"
	"io"
	"reflect"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func openMeta(t *testing.T) (*badger.DB, *Meta) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, err := NewMeta(db)
	if err != nil {
		t.Fatal(err)
	}
	return db, m
}

func TestMetaAppliesPersistsAndSnapshots(t *testing.T) {
	db, m := openMeta(t)
	changed := m.Changed()
	txn := db.NewTransaction(true)
	init := Command{Op: "init", Partitions: 8, Groups: 2, Replication: 3, Node: &Node{ID: "n1", HTTPAddr: "h:1", RaftAddr: "r:1"}}
	if res := m.Apply(txn, 1, 0, init.Encode()); res != nil {
		t.Fatalf("init answered %v", res)
	}
	if res := m.Apply(txn, 1, 1, init.Encode()); res == nil {
		t.Fatal("a second init in the same transaction was accepted")
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	m.Committed()
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire")
	}
	if !m.Table().Initialized() || m.Table().NumPartitions() != 8 {
		t.Fatalf("table after init: %+v", m.Table())
	}
	// A new Meta on the same DB (a restart) loads the same table.
	m2, err := NewMeta(db)
	if err != nil || !reflect.DeepEqual(m2.Table(), m.Table()) {
		t.Fatalf("reloaded table differs: %v", err)
	}
	// Snapshot into another node's DB.
	var buf bytes.Buffer
	if err := db.View(func(txn *badger.Txn) error { return m.WriteSnapshot(txn, &buf) }); err != nil {
		t.Fatal(err)
	}
	db2, other := openMeta(t)
	if err := other.Clear(db2); err != nil {
		t.Fatal(err)
	}
	if err := other.LoadSnapshot(db2, io.Reader(&buf)); err != nil {
		t.Fatal(err)
	}
	other.Committed()
	if !reflect.DeepEqual(other.Table(), m.Table()) {
		t.Fatalf("snapshot round trip: %+v vs %+v", other.Table(), m.Table())
	}
}
