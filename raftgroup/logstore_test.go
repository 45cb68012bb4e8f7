package raftgroup

import (
	"testing"

	"github.com/hashicorp/raft"
)

// A replica keeps the log store it was created with, whatever a later start asks for,
// and finds its entries and votes in it again: switching would start it from an empty
// log.
func TestReplicaKeepsItsLogStoreKind(t *testing.T) {
	for _, created := range []LogStoreKind{LogStoreBolt, LogStoreWAL} {
		t.Run(string(created), func(t *testing.T) {
			dir := t.TempDir()
			s, kind, err := openLogStore(created, dir)
			if err != nil || kind != created {
				t.Fatalf("create: kind %q, err %v", kind, err)
			}
			logs := []*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1, Data: []byte("b")}}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			other := LogStoreWAL
			if created == LogStoreWAL {
				other = LogStoreBolt
			}
			// Reopened in the same process (a group restarted on this node): raft-wal's
			// own Close left a file lock behind that made this Open hang.
			s, kind, err = openLogStore(other, dir)
			if err != nil || kind != created {
				t.Fatalf("reopen asking for %s: kind %q, err %v", other, kind, err)
			}
			defer s.Close()
			var got raft.Log
			if err := s.GetLog(2, &got); err != nil || string(got.Data) != "b" {
				t.Fatalf("entry 2 = %+v, %v", got, err)
			}
			if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
				t.Fatalf("term = %d, %v", term, err)
			}
		})
	}
}

func TestParseLogStoreKind(t *testing.T) {
	for in, want := range map[string]LogStoreKind{"bolt": LogStoreBolt, "wal": LogStoreWAL} {
		if got, err := ParseLogStoreKind(in); err != nil || got != want {
			t.Fatalf("%q: %q, %v", in, got, err)
		}
	}
	if _, err := ParseLogStoreKind("rocks"); err == nil {
		t.Fatal("rocks accepted")
	}
}

// After a compaction, entries below the first index are gone for Raft: that is what
// makes a follower behind the compaction catch up by snapshot.
func TestCompactedEntriesAreNotFound(t *testing.T) {
	for _, kind := range []LogStoreKind{LogStoreBolt, LogStoreWAL} {
		t.Run(string(kind), func(t *testing.T) {
			s, _, err := openLogStore(kind, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var logs []*raft.Log
			for i := uint64(1); i <= 5; i++ {
				logs = append(logs, &raft.Log{Index: i, Term: 1, Data: []byte{byte(i)}})
			}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(1, 3); err != nil {
				t.Fatal(err)
			}
			var l raft.Log
			if err := s.GetLog(2, &l); err != raft.ErrLogNotFound {
				t.Fatalf("entry 2 after compaction: %v (%+v), want ErrLogNotFound", err, l)
			}
			if err := s.GetLog(4, &l); err != nil || l.Index != 4 {
				t.Fatalf("entry 4: %v %+v", err, l)
			}
		})
	}
}

// A follower whose log's tail conflicts with a new leader's deletes it ("clearing log
// suffix") and appends the leader's entries. The log must open again afterwards, with
// every entry readable: raft-wal v0.4.0 marked the truncated tail segment sealed
// without writing its index, and the next start panicked in raft.NewRaft with "sealed
// segment has no index block" (hashicorp/raft-wal#31; the e2e kill-leader fault runs
// hit it in CI).
func TestLogOpensAfterItsTailWasTruncated(t *testing.T) {
	for _, kind := range []LogStoreKind{LogStoreBolt, LogStoreWAL} {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			s, _, err := openLogStore(kind, dir)
			if err != nil {
				t.Fatal(err)
			}
			entries := func(from, to, term uint64) []*raft.Log {
				var logs []*raft.Log
				for i := from; i <= to; i++ {
					logs = append(logs, &raft.Log{Index: i, Term: term, Data: []byte{byte(term), byte(i)}})
				}
				return logs
			}
			if err := s.StoreLogs(entries(1, 10, 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(9, 10); err != nil { // the conflicting suffix
				t.Fatal(err)
			}
			if err := s.StoreLogs(entries(9, 12, 2)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, _, err = openLogStore(kind, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := uint64(1); i <= 12; i++ {
				var l raft.Log
				if err := s.GetLog(i, &l); err != nil {
					t.Fatalf("entry %d after reopening: %v", i, err)
				}
				if want := uint64(1 + i/9); l.Term != want { // terms 1 up to 8, 2 from 9
					t.Fatalf("entry %d has term %d, want %d", i, l.Term, want)
				}
			}
		})
	}
}
