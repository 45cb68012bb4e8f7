package raftgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

func readAll(t *testing.T, kv *KV, db *badger.DB, after Revision) HistoryPage {
	t.Helper()
	page, err := kv.ReadHistory(db, after, 1000, 0)
	if err != nil {
		t.Fatalf("read history after %v: %v", after, err)
	}
	return page
}

func TestHistoryRecordsEveryAppliedChangeInOrder(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	f, kv := newTestFSM(t, db)
	f.ApplyBatch([]*raft.Log{
		entry(1, put(0, "a", "1"), put(2, "b", string([]byte{0xff}))),
		entry(2, put(0, "a", "2"), KVCommand{Op: OpPut, Partition: 0, Key: []byte("a"), Value: []byte("x"), Cond: CondAbsent}),
		{Index: 3, Term: 1, Type: raft.LogNoop},
		entry(4, KVCommand{Op: OpDelete, Partition: 0, Key: []byte("a")}, KVCommand{Op: OpDelete, Partition: 2, Key: []byte("none")}),
		entry(5, put(1, "not mine", "x")),
	})
	page := readAll(t, kv, db, Revision{})
	type ev struct {
		at       Revision
		op       Op
		key, val string
		version  uint64
		prev     string
	}
	var got []ev
	for _, c := range page.Changes {
		e := ev{at: c.At, op: c.Op, key: string(c.Key), val: string(c.Record.Value), version: c.Record.Version}
		if c.Prev != nil {
			e.prev = string(c.Prev.Value)
		}
		got = append(got, e)
	}
	// Failed conditions, deletes of absent keys and unowned partitions change nothing,
	// so they are not history.
	want := []ev{
		{Revision{1, 0}, OpPut, "a", "1", 1, ""},
		{Revision{1, 1}, OpPut, "b", "\xff", 1, ""},
		{Revision{2, 0}, OpPut, "a", "2", 2, "1"},
		{Revision{4, 0}, OpDelete, "a", "", 0, "2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history\n got %v\nwant %v", got, want)
	}
	if page.Through != (Revision{5, EndSeq}) || page.Floor != (Revision{}) {
		t.Fatalf("through %v floor %v, want 5.end and 0", page.Through, page.Floor)
	}
	// Resuming in the middle of an entry, or after one, gives exactly what follows.
	if p := readAll(t, kv, db, Revision{1, 0}); len(p.Changes) != 3 || p.Changes[0].At != (Revision{1, 1}) {
		t.Fatalf("after 1.0: %+v", p.Changes)
	}
	if p := readAll(t, kv, db, Revision{2, EndSeq}); len(p.Changes) != 1 || p.Changes[0].At != (Revision{4, 0}) {
		t.Fatalf("after 2.end: %+v", p.Changes)
	}
	// A page cut by its count covers up to its last change only.
	p, err := kv.ReadHistory(db, Revision{}, 2, 0)
	if err != nil || len(p.Changes) != 2 || p.Through != (Revision{1, 1}) {
		t.Fatalf("page of 2: %+v through %v (%v)", p.Changes, p.Through, err)
	}
	// A position past what the replica applied (a cursor from a replica ahead of
	// this one) waits: nothing, no progress backwards.
	if p := readAll(t, kv, db, Revision{9, 0}); len(p.Changes) != 0 || p.Through != (Revision{9, 0}) {
		t.Fatalf("after 9.0: %+v through %v", p.Changes, p.Through)
	}
}

func TestHistoryIsTrimmedToItsLimitAndSaysWhereItStarts(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	f, kv := newTestFSM(t, db)
	kv.SetHistoryRetention(HistoryRetention{Entries: 10})
	for i := uint64(1); i <= 25; i++ {
		f.ApplyBatch([]*raft.Log{entry(i, put(0, fmt.Sprint("k", i%3), fmt.Sprint(i)))})
	}
	page := readAll(t, kv, db, Revision{15, EndSeq})
	if len(page.Changes) != 10 || page.Floor.Index < 14 || page.Floor.Index > 15 {
		t.Fatalf("after 15: %d changes, floor %v; want 10 changes and the floor at 14 or 15", len(page.Changes), page.Floor)
	}
	_, err := kv.ReadHistory(db, Revision{3, 0}, 10, 0)
	var he *HistoryError
	if !errors.As(err, &he) || !errors.Is(err, ErrHistoryCompacted) || he.Floor != page.Floor {
		t.Fatalf("read after a trimmed position: %v, want a HistoryError naming floor %v", err, page.Floor)
	}
	// The count survives a restart: trimming goes on from the stored entries.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	f, kv = newTestFSM(t, db)
	kv.SetHistoryRetention(HistoryRetention{Entries: 4})
	f.ApplyBatch([]*raft.Log{entry(26, put(0, "k", "26"))})
	floor, _, err := kv.HistoryFloor(db)
	if err != nil || floor.Index != 22 {
		t.Fatalf("floor after lowering the limit to 4 at index 26: %v (%v), want 22.0", floor, err)
	}
}

func TestTrimmingIsBoundedPerTransaction(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	f, kv := newTestFSM(t, db)
	kv.SetHistoryRetention(HistoryRetention{Entries: 1 << 30})
	cmds := make([]KVCommand, 500)
	for i := range cmds {
		cmds[i] = put(0, fmt.Sprint("k", i), "v")
	}
	var log []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		log = append(log, entry(i, cmds...))
	}
	f.ApplyBatch(log) // 10,000 commands: split over several transactions (maxTxnCmds)
	kv.SetHistoryRetention(HistoryRetention{Entries: 0})
	f.ApplyBatch([]*raft.Log{entry(21, put(0, "x", "y"))})
	page := readAll(t, kv, db, Revision{20, EndSeq})
	floor, _, _ := kv.HistoryFloor(db)
	if floor.Index == 0 || floor.Index >= 20 {
		t.Fatalf("floor %v after one apply over 10,001 entries with limit 0: want some trimmed (at most %d)", floor, maxTrimPerTxn)
	}
	if len(page.Changes) != 1 {
		t.Fatalf("changes after 20: %d", len(page.Changes))
	}
}

// History is not state: snapshots, digests, listings and backups (ReadView.Scan) see
// the data keys only, and a replica restored from a snapshot starts its history there.
func TestHistoryStaysOutOfSnapshotsDigestsListsAndScans(t *testing.T) {
	src := openDB(t, t.TempDir())
	defer src.Close()
	f, kv := newTestFSM(t, src)
	f.ApplyBatch([]*raft.Log{entry(1, put(0, "a", "1"), put(2, "b", "2")), entry(2, put(0, "a", "3"))})

	items, _, applied, err := kv.ListAt(src, ListOptions{Limit: 100})
	if err != nil || len(items) != 2 || applied != 2 {
		t.Fatalf("list: %d items at %d (%v), want 2 at 2", len(items), applied, err)
	}
	_, sum, keys, err := kv.Digest(src)
	if err != nil || keys != 2 {
		t.Fatalf("digest: %d keys (%v)", keys, err)
	}
	scanned := 0
	_ = src.View(func(txn *badger.Txn) error {
		return (&ReadView{txn: txn, kv: kv}).Scan(func(k, v []byte) error { scanned++; return nil })
	})
	if scanned != 2 {
		t.Fatalf("backup scan saw %d keys, want 2", scanned)
	}

	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	dst := openDB(t, t.TempDir())
	defer dst.Close()
	g, kv2 := newTestFSM(t, dst)
	g.ApplyBatch([]*raft.Log{entry(1, put(0, "old", "x"))})
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if _, got, _, _ := kv2.Digest(dst); got != sum {
		t.Fatal("the restored replica's digest differs from the source's")
	}
	// The restored replica's history starts at the snapshot: nothing before it is held,
	// and asking after a position before it is refused.
	if _, err := kv2.ReadHistory(dst, Revision{}, 10, 0); !errors.Is(err, ErrHistoryCompacted) {
		t.Fatalf("read from 0 after a restore: %v, want ErrHistoryCompacted", err)
	}
	g.ApplyBatch([]*raft.Log{entry(3, put(2, "c", "4"))})
	page := readAll(t, kv2, dst, Revision{2, EndSeq})
	if len(page.Changes) != 1 || string(page.Changes[0].Key) != "c" || page.Floor != (Revision{2, EndSeq}) {
		t.Fatalf("after the restore: %+v floor %v", page.Changes, page.Floor)
	}
	// Clear (a replica removed) drops history and floor with the data.
	if err := kv2.Clear(dst); err != nil {
		t.Fatal(err)
	}
	_ = dst.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); k[0] == historyPrefix || k[0] == floorPrefix || k[0] == dataPrefix {
				t.Errorf("key %q survived Clear", k)
			}
		}
		return nil
	})
}

func TestChangeEncodingRoundTrips(t *testing.T) {
	at := Revision{7, 3}
	for _, c := range []Change{
		{At: at, Op: OpPut, Partition: 9, Key: []byte("k"), Record: Record{Value: []byte{}, Version: 1, CreateIndex: 7, Mod: at}},
		{At: at, Op: OpPut, Partition: 1, Key: []byte{0, 0xff}, Record: Record{Value: []byte("v"), Version: 4, CreateIndex: 2, Mod: at},
			Prev: &Record{Value: []byte("old"), Version: 3, CreateIndex: 2, Mod: Revision{5, 1}}},
		{At: at, Op: OpDelete, Partition: 2, Key: []byte("d"), Record: Record{Mod: at}, Prev: &Record{Value: []byte{}, Version: 1, Mod: Revision{1, 0}}},
		{At: at, Op: OpPut, Partition: 3, Key: []byte("t"), Record: Record{Value: []byte("v"), Version: 1, CreateIndex: 7, Mod: at},
			Time: time.Unix(0, 1764590000123456789)},
		{At: at, Op: OpDelete, Partition: 3, Key: []byte("t"), Record: Record{Mod: at}, Time: time.Unix(0, 1)},
	} {
		got, err := decodeChange(at, c.encode())
		show := func(c Change) string {
			p := c.Prev
			c.Prev = nil
			return fmt.Sprintf("%+v %+v", c, p)
		}
		if err != nil || show(got) != show(c) {
			t.Fatalf("round trip\n got %+v %v\nwant %+v", got, err, c)
		}
	}
	timed := (&Change{Op: OpPut, Key: []byte("k"), Time: time.Unix(5, 0)}).encode()
	for _, b := range [][]byte{nil, {1, 0, 0, 0, 0}, {9, 0, 0, 0, 0, 1, 'k', 0}, append(new(Change).encode(), 1),
		timed[:5], timed[:12], {0x89, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 'k', 0}} {
		if _, err := decodeChange(at, b); err == nil {
			t.Fatalf("decoded %x", b)
		}
	}
}
