package raftgroup

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

func openDB(t *testing.T, dir string) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// ownsEven is a KV of group 1 owning partitions 0, 2 and 4.
func ownsEven() []uint32 { return []uint32{0, 2, 4} }

func newTestFSM(t *testing.T, db *badger.DB) (*fsm, *KV) {
	t.Helper()
	kv := NewKV(1, ownsEven)
	f, err := newFSM(1, db, kv, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return f, kv
}

func entry(index uint64, cmds ...KVCommand) *raft.Log {
	raw := make([][]byte, len(cmds))
	for i := range cmds {
		raw[i] = cmds[i].Encode()
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: encodeBatch(raw)}
}

func put(p uint32, k, v string) KVCommand {
	return KVCommand{Op: OpPut, Partition: p, Key: []byte(k), Value: []byte(v)}
}

func results(t *testing.T, resp any) []KVResult {
	t.Helper()
	rs, ok := resp.([]any)
	if !ok {
		t.Fatalf("entry answered %T %v", resp, resp)
	}
	out := make([]KVResult, len(rs))
	for i, r := range rs {
		out[i] = r.(KVResult)
	}
	return out
}

func TestKVApplySemantics(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	f, kv := newTestFSM(t, db)
	del := KVCommand{Op: OpDelete, Partition: 0, Key: []byte("a"), WantPrev: true}
	resps := f.ApplyBatch([]*raft.Log{
		entry(1, put(0, "a", "1")),
		entry(2, KVCommand{Op: OpPut, Partition: 0, Key: []byte("a"), Value: []byte("2"), WantPrev: true}, put(2, "b", "x")),
		entry(3, KVCommand{Op: OpPut, Partition: 0, Key: []byte("a"), Value: []byte("3"), Cond: CondAbsent}),
		entry(4, put(1, "c", "wrong group")),
		entry(5, del, del),
	})
	r1, r2, r3, r4, r5 := results(t, resps[0]), results(t, resps[1]), results(t, resps[2]), results(t, resps[3]), results(t, resps[4])
	if !r1[0].Created || r1[0].Version != 1 || r1[0].Rev != (Revision{1, 0}) {
		t.Fatalf("first put: %+v", r1[0])
	}
	if r2[0].Created || r2[0].Version != 2 || r2[0].Prev == nil || string(r2[0].Prev.Value) != "1" || r2[1].Rev != (Revision{2, 1}) {
		t.Fatalf("second entry: %+v %+v", r2[0], r2[1])
	}
	if r3[0].Status != StatusConditionFailed {
		t.Fatalf("create-only on an existing key: %+v", r3[0])
	}
	if r4[0].Status != StatusWrongGroup {
		t.Fatalf("put to an unowned partition: %+v", r4[0])
	}
	if r5[0].Status != StatusOK || string(r5[0].Prev.Value) != "2" || r5[1].Status != StatusNotFound {
		t.Fatalf("delete twice in one entry: %+v %+v", r5[0], r5[1])
	}
	if f.Applied() != 5 {
		t.Fatalf("applied %d, want 5", f.Applied())
	}
	if _, found, _ := kv.Get(db, 0, []byte("a")); found {
		t.Fatal("deleted key still readable")
	}
	if rec, found, _ := kv.Get(db, 2, []byte("b")); !found || string(rec.Value) != "x" || rec.Mod != (Revision{2, 1}) {
		t.Fatalf("b = %+v %v", rec, found)
	}
}

func TestCompareAndSwapUsesRevisionWithinAnEntry(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	f, kv := newTestFSM(t, db)
	f.ApplyBatch([]*raft.Log{entry(1, put(0, "k", "v1"))})
	// Two writes in one entry get distinct revisions; a CAS against the first one's
	// revision fails once the second has replaced it.
	res := results(t, f.ApplyBatch([]*raft.Log{entry(2, put(0, "k", "a"), put(0, "k", "b"))})[0])
	if res[0].Rev == res[1].Rev || res[0].Rev.ETag() == res[1].Rev.ETag() {
		t.Fatalf("writes in one entry share a revision: %+v", res)
	}
	cas := func(idx uint64, rev Revision, v string) KVResult {
		c := KVCommand{Op: OpPut, Partition: 0, Key: []byte("k"), Value: []byte(v), Cond: CondMatch, Match: rev}
		return results(t, f.ApplyBatch([]*raft.Log{entry(idx, c)})[0])[0]
	}
	if r := cas(3, res[0].Rev, "stale"); r.Status != StatusConditionFailed {
		t.Fatalf("CAS with a replaced revision: %+v", r)
	}
	if r := cas(4, res[1].Rev, "won"); r.Status != StatusOK {
		t.Fatalf("CAS with the current revision: %+v", r)
	}
	if rec, _, _ := kv.Get(db, 0, []byte("k")); string(rec.Value) != "won" || rec.Version != 4 || rec.CreateIndex != 1 {
		t.Fatalf("k = %+v", rec)
	}
}

func TestReplayAfterRestartDoesNotApplyTwice(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	f, _ := newTestFSM(t, db)
	log := []*raft.Log{entry(1, put(0, "k", "1")), entry(2, put(0, "k", "2")), entry(3, put(2, "j", "x"))}
	f.ApplyBatch(log)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart: Raft replays every entry after its last snapshot (here, all of them),
	// followed by new ones.
	db = openDB(t, dir)
	defer db.Close()
	f, kv := newTestFSM(t, db)
	if f.Applied() != 3 {
		t.Fatalf("applied index after restart %d, want 3", f.Applied())
	}
	resps := f.ApplyBatch(append(log, entry(4, put(0, "k", "3"))))
	for i := 0; i < 3; i++ {
		if resps[i] != nil {
			t.Fatalf("replayed entry %d was applied again: %v", i+1, resps[i])
		}
	}
	rec, _, _ := kv.Get(db, 0, []byte("k"))
	if string(rec.Value) != "3" || rec.Version != 3 {
		t.Fatalf("k = %q version %d, want \"3\" version 3 (each entry once)", rec.Value, rec.Version)
	}
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := openDB(t, t.TempDir())
	defer src.Close()
	f, kv := newTestFSM(t, src)
	f.ApplyBatch([]*raft.Log{entry(1, put(0, "a", "1"), put(2, "b", "2"), put(4, "c", string([]byte{0, 255})))})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot was taken are not in it: it is a consistent view.
	f.ApplyBatch([]*raft.Log{entry(2, put(0, "late", "x"))})
	var sink memSink
	if err := snap.Persist(&sink); err != nil || sink.cancelled {
		t.Fatalf("persist: %v", err)
	}
	snap.Release()

	dst := openDB(t, t.TempDir())
	defer dst.Close()
	g, kv2 := newTestFSM(t, dst)
	// The target holds stale keys of the group's partitions, and a key of another
	// partition the group does not own, which must survive.
	g.ApplyBatch([]*raft.Log{entry(1, put(0, "stale", "s"), put(2, "a", "old"))})
	other := NewKV(2, func() []uint32 { return []uint32{1} })
	og, _ := newFSM(2, dst, other, quiet)
	og.ApplyBatch([]*raft.Log{entry(1, put(1, "mine", "keep"))})

	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if g.Applied() != 1 {
		t.Fatalf("applied after restore %d, want 1", g.Applied())
	}
	// Compare the restored group with the source at snapshot time.
	_, wantSum, wantKeys, _ := digestAt(t, kv, src, 1)
	_, gotSum, gotKeys, _ := kv2.Digest(dst)
	if gotSum != wantSum || gotKeys != 3 || wantKeys != 3 {
		t.Fatalf("restored %d keys (hash %x), want 3 (hash %x)", gotKeys, gotSum, wantSum)
	}
	if _, found, _ := kv2.Get(dst, 0, []byte("stale")); found {
		t.Fatal("a key the snapshot does not hold survived the restore")
	}
	if rec, found, _ := other.Get(dst, 1, []byte("mine")); !found || string(rec.Value) != "keep" {
		t.Fatal("restoring group 1 touched group 2's partition")
	}
}

// digestAt is the digest of kv without the keys written after index (the source
// went on after its snapshot): it deletes them in a scratch copy of the view.
func digestAt(t *testing.T, kv *KV, db *badger.DB, index uint64) (uint64, [32]byte, int, error) {
	t.Helper()
	scratch := openDB(t, t.TempDir())
	defer scratch.Close()
	err := db.View(func(txn *badger.Txn) error {
		return kv.scan(txn, func(k, v []byte) error {
			rec, err := decodeRecord(v)
			if err != nil || rec.Mod.Index > index {
				return err
			}
			return scratch.Update(func(w *badger.Txn) error { return w.Set(append([]byte{}, k...), append([]byte{}, v...)) })
		}, func() error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = scratch.Update(func(txn *badger.Txn) error { return putApplied(txn, 1, index) })
	return kv.Digest(scratch)
}
