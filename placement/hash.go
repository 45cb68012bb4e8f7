// Package placement maps keys to partitions, partitions to Raft groups and groups to
// nodes: the hash ring, the versioned placement table kept by the meta group, and the
// placement service that edits it.
package placement

import (
	"bytes"
	"fmt"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// HashKey is the 64-bit ring position of key: xxhash64 of the key, or of its hash tag
// when the key holds one. A tag is the text between the first '{' and the next '}'
// after it, when not empty, so "user:{42}:name" and "user:{42}:mail" share a partition.
// The function is fixed forever: changing it would move every stored key.
func HashKey(key []byte) uint64 {
	if open := bytes.IndexByte(key, '{'); open >= 0 {
		if end := bytes.IndexByte(key[open+1:], '}'); end > 0 {
			return xxhash.Sum64(key[open+1 : open+1+end])
		}
	}
	return xxhash.Sum64(key)
}

// PartitionOfHash places a ring position on one of n equal arcs.
func PartitionOfHash(h uint64, n int) uint32 {
	hi, _ := bits.Mul64(h, uint64(n))
	return uint32(hi)
}

// PartitionOf is the partition of key on a ring of n partitions.
func PartitionOf(key []byte, n int) uint32 { return PartitionOfHash(HashKey(key), n) }

// PartitionRange is the inclusive range of ring positions of partition p of n.
func PartitionRange(p uint32, n int) (start, end uint64) {
	start = arcStart(uint64(p), uint64(n))
	if int(p) == n-1 {
		return start, ^uint64(0)
	}
	return start, arcStart(uint64(p)+1, uint64(n)) - 1
}

// arcStart is the smallest h with floor(h*n / 2^64) >= p, i.e. ceil(p * 2^64 / n).
func arcStart(p, n uint64) uint64 {
	if p == 0 {
		return 0
	}
	q, r := bits.Div64(p, 0, n) // (p * 2^64) / n; p < n so no overflow
	if r != 0 {
		q++
	}
	return q
}

// HexHash renders a ring position as 16 hex digits, as the admin API shows it.
func HexHash(h uint64) string { return fmt.Sprintf("%016x", h) }
