package raftgroup

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// timedEntry is entry(index, cmds...) appended by its leader at at.
func timedEntry(at time.Time, index uint64, cmds ...KVCommand) *raft.Log {
	l := entry(index, cmds...)
	l.AppendedAt = at
	return l
}

func TestHistoryRecordsEachChangesCommitTime(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	f, kv := newTestFSM(t, db)
	t0 := time.Unix(1764590000, 0)
	f.ApplyBatch([]*raft.Log{
		timedEntry(t0, 1, put(0, "a", "1"), put(0, "b", "1")),
		timedEntry(t0.Add(time.Second), 2, KVCommand{Op: OpDelete, Partition: 0, Key: []byte("a")}),
		entry(3, put(0, "c", "1")), // appended before leaders recorded times: zero
	})
	var got []string
	for _, c := range readAll(t, kv, db, Revision{}).Changes {
		got = append(got, fmt.Sprintf("%s@%d", c.Key, c.Time.UnixNano()))
	}
	want := fmt.Sprint([]string{fmt.Sprint("a@", t0.UnixNano()), fmt.Sprint("b@", t0.UnixNano()),
		fmt.Sprint("a@", t0.Add(time.Second).UnixNano()), fmt.Sprint("c@", time.Time{}.UnixNano())})
	if fmt.Sprint(got) != want {
		t.Fatalf("commit times\n got %v\nwant %v", got, want)
	}
}

func TestHistoryIsTrimmedByAgeAgainstItsNewestChange(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	f, kv := newTestFSM(t, db)
	kv.SetHistoryRetention(HistoryRetention{Age: time.Minute})
	t0 := time.Unix(1764590000, 0)
	// One change every 10 s for 5 minutes: entry i committed at t0 + 10 s × (i-1).
	at := func(i uint64) time.Time { return t0.Add(time.Duration(i-1) * 10 * time.Second) }
	for i := uint64(1); i <= 31; i++ {
		f.ApplyBatch([]*raft.Log{timedEntry(at(i), i, put(0, fmt.Sprint("k", i%4), fmt.Sprint(i)))})
	}
	// The newest change (31) is at t0+300 s; a minute back is t0+240 s (entry 25).
	// Trimming may lag by the age's slack (1/16 of it, under 4 s, so less than one
	// entry here): every change from 25 on is held, none older.
	floor, _, err := kv.HistoryFloor(db)
	if err != nil || floor != (Revision{24, 0}) {
		t.Fatalf("floor %v (%v), want 24.0: the last change older than a minute before the newest", floor, err)
	}
	if p := readAll(t, kv, db, floor); len(p.Changes) != 7 || p.Changes[0].At.Index != 25 {
		t.Fatalf("after the floor: %d changes from %v, want 7 from 25", len(p.Changes), p.Changes[0].At)
	}
	// An idle group keeps its history however long it stays idle: age counts from the
	// group's own newest change, not the clock. After a restart trimming goes on from
	// the stored entries (their times are read back) once changes come again.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	f, kv = newTestFSM(t, db)
	kv.SetHistoryRetention(HistoryRetention{Age: time.Minute})
	f.ApplyBatch([]*raft.Log{timedEntry(at(31).Add(30*time.Second), 32, put(0, "k", "32"))})
	if floor, _, _ = kv.HistoryFloor(db); floor != (Revision{27, 0}) {
		t.Fatalf("floor after a change 30 s later: %v, want 27.0", floor)
	}
}

func TestParseHistoryRetention(t *testing.T) {
	for in, want := range map[string]HistoryRetention{
		"10000": {Entries: 10000}, "0": {}, "1h": {Age: time.Hour}, "90s": {Age: 90 * time.Second},
	} {
		got, err := ParseHistoryRetention(in)
		again, _ := ParseHistoryRetention(got.String())
		if err != nil || got != want || again != got {
			t.Errorf("%q: %+v, as a flag %q (%v), want %+v", in, got, got.String(), err, want)
		}
	}
	for _, in := range []string{"-1", "-1h", "0s", "ten", "", "1h30"} {
		if _, err := ParseHistoryRetention(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}
