package placement

import (
	"testing"
)

// FuzzDecodeTable: a table from the wire (a snapshot, the meta group's store) is
// either rejected or internally consistent: every partition names a known group, and
// it encodes again without error.
func FuzzDecodeTable(f *testing.F) {
	t0, _ := Apply(&Table{}, Command{Op: "init", Partitions: 8, Groups: 3, Replication: 3,
		Node: &Node{ID: "n1", HTTPAddr: "h:1", RaftAddr: "r:1"}})
	b, _ := EncodeTable(t0)
	f.Add(b)
	f.Add([]byte(`{"version":1,"partitions":[{"group":7}],"groups":[]}`))
	f.Add([]byte(`{"version":1,"groups":[{"id":0}]}`))
	// With identities, and a node recorded without one (a table from before them).
	f.Add([]byte(`{"version":1,"cluster_id":"c1","partitions":[{"group":1}],"groups":[{"id":1,"replicas":["n1"]}],` +
		`"nodes":[{"id":"n1","uuid":"u1","state":"up"},{"id":"n2","state":"joining"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := DecodeTable(data)
		if err != nil {
			return
		}
		for p := range tab.Partitions {
			if _, ok := tab.Group(tab.GroupOf(uint32(p))); !ok {
				t.Fatalf("accepted table: partition %d names unknown group %d", p, tab.GroupOf(uint32(p)))
			}
		}
		if _, err := EncodeTable(tab); err != nil {
			t.Fatalf("accepted table does not encode: %v", err)
		}
	})
}

// FuzzPartitionOf: every key lands on a partition of the ring, inside that
// partition's hash range.
func FuzzPartitionOf(f *testing.F) {
	f.Add([]byte("user:{42}:name"), uint16(64))
	f.Add([]byte("{}"), uint16(1))
	f.Add([]byte{0, 0xff}, uint16(65535))
	f.Fuzz(func(t *testing.T, key []byte, n16 uint16) {
		n := int(n16)
		if n == 0 {
			n = 1
		}
		p := PartitionOf(key, n)
		if int(p) >= n {
			t.Fatalf("partition %d of %d", p, n)
		}
		start, end := PartitionRange(p, n)
		if h := HashKey(key); h < start || h > end {
			t.Fatalf("hash %x outside partition %d's range [%x, %x]", h, p, start, end)
		}
	})
}
