package placement

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
)

func TestHashTagsSharePartitions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"user:{42}:name", "user:{42}:mail", true},
		{"{42}", "x{42}y", true},
		{"user:{42}:name", "user:{43}:name", false},
		{"a{}b", "a{}c", false}, // an empty tag hashes the whole key
		{"{unclosed", "{unclosed2", false},
	} {
		same := HashKey([]byte(tc.a)) == HashKey([]byte(tc.b))
		if same != tc.same {
			t.Errorf("%q vs %q: same hash %v, want %v", tc.a, tc.b, same, tc.same)
		}
	}
}

func TestPartitionRangesTileTheRing(t *testing.T) {
	for _, n := range []int{1, 3, 64, 1000} {
		var next uint64
		for p := 0; p < n; p++ {
			start, end := PartitionRange(uint32(p), n)
			if start != next || end < start {
				t.Fatalf("n=%d p=%d: range [%x, %x], expected start %x", n, p, start, end, next)
			}
			if PartitionOfHash(start, n) != uint32(p) || PartitionOfHash(end, n) != uint32(p) {
				t.Fatalf("n=%d p=%d: range ends map to %d and %d", n, p, PartitionOfHash(start, n), PartitionOfHash(end, n))
			}
			next = end + 1
		}
		if _, end := PartitionRange(uint32(n-1), n); end != math.MaxUint64 {
			t.Fatalf("n=%d: the ring ends at %x", n, end)
		}
	}
}

func newTable(t *testing.T) *Table {
	t.Helper()
	tab, err := Apply(&Table{}, Command{Op: "init", Partitions: 16, Groups: 4, Replication: 3,
		Node: &Node{ID: "n1", HTTPAddr: "h1:1", RaftAddr: "r1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestInitLaysPartitionsRoundRobin(t *testing.T) {
	tab := newTable(t)
	for p := 0; p < 16; p++ {
		if g := tab.GroupOf(uint32(p)); g != uint32(p%4)+1 {
			t.Fatalf("partition %d -> group %d", p, g)
		}
	}
	if got := tab.PartitionsOf(2); !reflect.DeepEqual(got, []uint32{1, 5, 9, 13}) {
		t.Fatalf("group 2 owns %v", got)
	}
	g, _ := tab.Group(1)
	if g.Bootstrap != "n1" || !reflect.DeepEqual(g.Replicas, []string{"n1"}) {
		t.Fatalf("group 1 = %+v", g)
	}
	if _, err := Apply(tab, Command{Op: "init", Partitions: 1, Groups: 1, Replication: 1, Node: &Node{ID: "x"}}); !errors.Is(err, ErrInitialized) {
		t.Fatalf("second init: %v", err)
	}
}

func TestTableEncodingRoundTrip(t *testing.T) {
	tab := newTable(t)
	tab, _ = Apply(tab, Command{Op: "add_node", Node: &Node{ID: "n2", HTTPAddr: "h2:1", RaftAddr: "r2:1"}})
	b, err := EncodeTable(tab)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, tab) {
		t.Fatalf("round trip changed the table:\n%+v\n%+v", tab, back)
	}
	for _, bad := range []string{
		`not json`,
		`{"version":2}`,
		`{"version":1,"partitions":[{"group":9}],"groups":[{"id":1}]}`,
		`{"version":1,"groups":[{"id":0}]}`,
		`{"version":1,"groups":[{"id":2},{"id":1}]}`,
	} {
		if _, err := DecodeTable([]byte(bad)); err == nil {
			t.Errorf("DecodeTable accepted %s", bad)
		}
	}
}

func TestCommandsCheckTheirPreconditions(t *testing.T) {
	tab := newTable(t)
	before, _ := EncodeTable(tab)
	n2 := Node{ID: "n2", HTTPAddr: "h2:1", RaftAddr: "r2:1"}
	t2, err := Apply(tab, Command{Op: "add_node", Node: &n2})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Apply(t2, Command{Op: "add_node", Node: &n2}); again != t2 {
		t.Fatal("re-adding a node with the same addresses changed the table")
	}
	clash := Node{ID: "n3", HTTPAddr: "h2:1", RaftAddr: "r3:1"}
	if _, err := Apply(t2, Command{Op: "add_node", Node: &clash}); !errors.Is(err, ErrAddressInUse) {
		t.Fatalf("address clash: %v", err)
	}
	g1, _ := t2.Group(1)
	for _, tc := range []struct {
		c    Command
		want error
	}{
		{Command{Op: "set_replicas", Group: 1, Replicas: []string{"n1", "n2"}, GroupEpoch: g1.Epoch + 1}, ErrStaleEpoch},
		{Command{Op: "set_replicas", Group: 1, Replicas: []string{"n1", "nx"}, GroupEpoch: g1.Epoch}, ErrUnknownNode},
		{Command{Op: "set_replicas", Group: 1, Replicas: []string{"n1", "n1"}, GroupEpoch: g1.Epoch}, ErrBadCommand},
		{Command{Op: "set_replicas", Group: 9, Replicas: []string{"n1"}}, ErrUnknownGroup},
		{Command{Op: "nonsense"}, ErrBadCommand},
	} {
		if _, err := Apply(t2, tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.c, err, tc.want)
		}
	}
	t3, err := Apply(t2, Command{Op: "set_replicas", Group: 1, Replicas: []string{"n1", "n2"}, GroupEpoch: g1.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := t3.Group(1); g.Epoch != t3.Epoch || len(g.Replicas) != 2 || t3.Epoch <= t2.Epoch {
		t.Fatalf("set_replicas: %+v at epoch %d", g, t3.Epoch)
	}
	// Apply never changes its input.
	after, _ := EncodeTable(tab)
	if string(before) != string(after) {
		t.Fatal("Apply modified the table it was given")
	}
	if got := fmt.Sprint(t3.GroupsOf("n2")); got != "[1]" {
		t.Fatalf("GroupsOf(n2) = %s", got)
	}
}
