package raftgroup

import (
	"bytes"
	"testing"
)

// FuzzDecodeBatch: any bytes either decode into commands that re-encode to the same
// entry, or are rejected; nothing panics.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch(nil))
	f.Add(encodeBatch([][]byte{[]byte("a"), {}, []byte("ccc")}))
	f.Add([]byte{entryBatch, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := decodeBatch(data)
		if err != nil {
			return
		}
		if again := encodeBatch(cmds); !bytes.Equal(again, data) {
			// Varints have one canonical form only when minimal; accept a decode of
			// the re-encoding as the invariant instead.
			back, err := decodeBatch(again)
			if err != nil || len(back) != len(cmds) {
				t.Fatalf("re-encoded batch does not decode the same: %v", err)
			}
		}
	})
}

// FuzzDecodeKVCommand: the state machine's command decoder never panics, and what it
// accepts round-trips through Encode.
func FuzzDecodeKVCommand(f *testing.F) {
	for _, c := range []KVCommand{
		{Op: OpPut, Partition: 3, Key: []byte("k"), Value: []byte("v"), WantPrev: true},
		{Op: OpDelete, Partition: 1, Key: []byte("k"), Cond: CondMatch, Match: Revision{Index: 9, Seq: 2}},
		{Op: OpPut, Key: []byte("k"), Cond: CondAbsent},
		{Op: OpNoop},
	} {
		f.Add(c.Encode())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeKVCommand(data)
		if err != nil {
			return
		}
		back, err := DecodeKVCommand(c.Encode())
		if err != nil {
			t.Fatalf("re-encoded command rejected: %v", err)
		}
		if back.Op != c.Op || back.Cond != c.Cond || back.Match != c.Match || back.Partition != c.Partition ||
			back.WantPrev != c.WantPrev || !bytes.Equal(back.Key, c.Key) || !bytes.Equal(back.Value, c.Value) {
			t.Fatalf("round trip changed the command: %+v -> %+v", c, back)
		}
	})
}
