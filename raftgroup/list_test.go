package raftgroup

import (
	"fmt"
	"strings"
	"testing"
)

// TestListMergesPartitionsAndStopsAtItsBudget: a group's listing takes its keys from
// every partition it owns in one byte order, reads no more than limit of them, and
// stops before maxBytes of keys and values (with at least one item), saying so.
func TestListMergesPartitionsAndStopsAtItsBudget(t *testing.T) {
	db := openDB(t, t.TempDir())
	f, kv := newTestFSM(t, db)
	// Keys k00..k11 spread over partitions 0, 2 and 4, out of order.
	var cmds []KVCommand
	for i := 11; i >= 0; i-- {
		cmds = append(cmds, put(uint32(2*(i%3)), fmt.Sprintf("k%02d", i), strings.Repeat("v", 100)))
	}
	f.Apply(entry(1, cmds...))
	keys := func(items []Item) string {
		var out []string
		for _, it := range items {
			out = append(out, string(it.Key))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name       string
		after      string
		limit, max int
		want       string
		truncated  bool
	}{
		{"first keys across partitions", "", 4, 0, "k00 k01 k02 k03", false},
		{"after a key", "k05", 3, 0, "k06 k07 k08", false},
		{"all", "", 100, 0, "k00 k01 k02 k03 k04 k05 k06 k07 k08 k09 k10 k11", false},
		{"byte budget", "", 100, 3 * 103, "k00 k01 k02", true},
		{"at least one item", "k09", 100, 10, "k10", true},
		{"budget not reached", "k09", 100, 1000, "k10 k11", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var after []byte
			if tc.after != "" {
				after = []byte(tc.after)
			}
			items, truncated, err := kv.List(db, ListOptions{StartAfter: after, Limit: tc.limit, MaxBytes: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(items); got != tc.want || truncated != tc.truncated {
				t.Fatalf("listed %q truncated %v, want %q %v", got, truncated, tc.want, tc.truncated)
			}
			for _, it := range items {
				if len(it.Record.Value) != 100 {
					t.Fatalf("%s: value of %d bytes", it.Key, len(it.Record.Value))
				}
			}
		})
	}
	items, _, err := kv.List(db, ListOptions{Limit: 2, KeysOnly: true})
	if err != nil || keys(items) != "k00 k01" || items[0].Record.Value != nil || items[0].Record.Version == 0 {
		t.Fatalf("keys only: %+v %v", items, err)
	}
	// Values longer than MaxValueBytes are left out, said with their size, and do not
	// count in the byte budget: all 12 fit in one that holds 3 with their values.
	items, truncated, err := kv.List(db, ListOptions{Limit: 100, MaxValueBytes: 99, MaxBytes: 3 * 103})
	if err != nil || len(items) != 12 || truncated {
		t.Fatalf("values over 99 bytes left out: %d items, truncated %v, %v", len(items), truncated, err)
	}
	for _, it := range items {
		if it.Record.Value != nil || it.OmittedBytes != 100 || it.Record.Version == 0 {
			t.Fatalf("%s: value %d bytes, omitted %d, version %d", it.Key, len(it.Record.Value), it.OmittedBytes, it.Record.Version)
		}
	}
	if items, _, err = kv.List(db, ListOptions{Limit: 1, MaxValueBytes: 100}); err != nil || items[0].OmittedBytes != 0 || len(items[0].Record.Value) != 100 {
		t.Fatalf("a value of exactly MaxValueBytes is kept: %+v %v", items, err)
	}
}
