package raftgroup

import (
	"encoding/binary"
	"errors"
)

// A Raft log entry written by this package is a batch envelope: one type byte, a count,
// then each command length-prefixed. Packing many client commands into one entry is what
// lets one fsync commit many writes (group commit); the state machine still sees and
// answers each command on its own, numbered by its position (seq) in the entry.
const entryBatch byte = 1

// ErrBadEntry reports a log entry this package cannot decode.
var ErrBadEntry = errors.New("raftgroup: malformed log entry")

// encodeBatch packs cmds into one log entry.
func encodeBatch(cmds [][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, c := range cmds {
		n += binary.MaxVarintLen64 + len(c)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, entryBatch)
	buf = binary.AppendUvarint(buf, uint64(len(cmds)))
	for _, c := range cmds {
		buf = binary.AppendUvarint(buf, uint64(len(c)))
		buf = append(buf, c...)
	}
	return buf
}

// decodeBatch splits an entry into its commands; the slices alias data.
func decodeBatch(data []byte) ([][]byte, error) {
	if len(data) < 2 || data[0] != entryBatch {
		return nil, ErrBadEntry
	}
	rest := data[1:]
	count, n := binary.Uvarint(rest)
	if n <= 0 || count > uint64(len(rest)) {
		return nil, ErrBadEntry
	}
	rest = rest[n:]
	cmds := make([][]byte, 0, count)
	for i := uint64(0); i < count; i++ {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return nil, ErrBadEntry
		}
		cmds = append(cmds, rest[n:n+int(l)])
		rest = rest[n+int(l):]
	}
	if len(rest) != 0 {
		return nil, ErrBadEntry
	}
	return cmds, nil
}
