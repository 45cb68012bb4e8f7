// Package pairs is the one encoding of a stored key and its value as ringkv writes
// them in a group's Raft snapshot, a restore's seed and a backup's section: the key's
// length (uvarint), the key, the value's length (uvarint), the value.
package pairs

import "encoding/binary"

// Append appends the pair (key, value) to dst and returns the extended slice.
func Append(dst, key, value []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}
