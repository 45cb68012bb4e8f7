package raftgroup

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Op is what a KV command does.
type Op uint8

const (
	// OpNoop writes nothing; a new leader commits one to learn that an entry of its own
	// term is committed before it serves linearizable reads.
	OpNoop Op = iota
	OpPut
	OpDelete
)

// CondKind is the precondition of a write, decided inside Apply on every replica.
type CondKind uint8

const (
	CondNone   CondKind = iota
	CondAbsent          // If-None-Match: *
	CondExists          // If-Match: *
	CondMatch           // If-Match: <etag>
)

// Revision names one write of a key in its group: the Raft index of the entry and the
// command's position in it. It is unique per group and is the key's ETag.
type Revision struct {
	Index uint64
	Seq   uint32
}

// ETag renders r as a quoted strong ETag.
func (r Revision) ETag() string { return fmt.Sprintf(`"%d.%d"`, r.Index, r.Seq) }

// ParseETag is the inverse of Revision.ETag; ok is false for anything else.
func ParseETag(s string) (Revision, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return Revision{}, false
	}
	idx, seq, found := strings.Cut(s[1:len(s)-1], ".")
	if !found {
		return Revision{}, false
	}
	i, err1 := strconv.ParseUint(idx, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 32)
	if err1 != nil || err2 != nil {
		return Revision{}, false
	}
	return Revision{Index: i, Seq: uint32(q)}, true
}

// KVCommand is one client write, as replicated.
type KVCommand struct {
	Op        Op
	Partition uint32
	Key       []byte
	Value     []byte
	Cond      CondKind
	Match     Revision // with CondMatch
	WantPrev  bool
}

const (
	flagPrev = 1 << iota
)

// Encode serialises c: op, flags, cond, partition, [match], key, [value].
func (c *KVCommand) Encode() []byte {
	buf := make([]byte, 0, 32+len(c.Key)+len(c.Value))
	var flags byte
	if c.WantPrev {
		flags |= flagPrev
	}
	buf = append(buf, byte(c.Op), flags, byte(c.Cond))
	buf = binary.BigEndian.AppendUint32(buf, c.Partition)
	if c.Cond == CondMatch {
		buf = binary.BigEndian.AppendUint64(buf, c.Match.Index)
		buf = binary.BigEndian.AppendUint32(buf, c.Match.Seq)
	}
	buf = binary.AppendUvarint(buf, uint64(len(c.Key)))
	buf = append(buf, c.Key...)
	if c.Op == OpPut {
		buf = binary.AppendUvarint(buf, uint64(len(c.Value)))
		buf = append(buf, c.Value...)
	}
	return buf
}

// DecodeKVCommand parses what Encode wrote; Key and Value alias b.
func DecodeKVCommand(b []byte) (KVCommand, error) {
	var c KVCommand
	bad := func(what string) (KVCommand, error) {
		return KVCommand{}, fmt.Errorf("%w: kv command: %s", ErrBadEntry, what)
	}
	if len(b) < 7 {
		return bad("short header")
	}
	c.Op, c.WantPrev, c.Cond = Op(b[0]), b[1]&flagPrev != 0, CondKind(b[2])
	if c.Op > OpDelete || c.Cond > CondMatch || b[1]&^flagPrev != 0 {
		return bad("unknown op, flag or condition")
	}
	c.Partition = binary.BigEndian.Uint32(b[3:7])
	b = b[7:]
	if c.Cond == CondMatch {
		if len(b) < 12 {
			return bad("short revision")
		}
		c.Match = Revision{Index: binary.BigEndian.Uint64(b), Seq: binary.BigEndian.Uint32(b[8:])}
		b = b[12:]
	}
	var ok bool
	if c.Key, b, ok = readBytes(b); !ok {
		return bad("key")
	}
	if c.Op == OpPut {
		if c.Value, b, ok = readBytes(b); !ok {
			return bad("value")
		}
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return c, nil
}

func readBytes(b []byte) ([]byte, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	return b[n : n+int(l)], b[n+int(l):], true
}

// Status is the outcome of one applied KV command.
type Status uint8

const (
	StatusOK Status = iota
	StatusNotFound
	StatusConditionFailed
	StatusWrongGroup // the partition is not this group's at the command's epoch
	StatusInvalid    // the command could not be decoded
)

// KVResult answers one KV command.
type KVResult struct {
	Status  Status
	Created bool
	Rev     Revision // the revision written (put, delete)
	Version uint64   // the key's version after a put
	Prev    *Record  // the previous record, when asked for and present
}

// Record is a stored key's value and metadata.
type Record struct {
	Value       []byte
	Version     uint64 // writes since the key was created, starting at 1
	CreateIndex uint64
	Mod         Revision
}

const recordHeader = 8 + 8 + 8 + 4

func (r *Record) encode() []byte {
	b := make([]byte, 0, recordHeader+len(r.Value))
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = binary.BigEndian.AppendUint64(b, r.CreateIndex)
	b = binary.BigEndian.AppendUint64(b, r.Mod.Index)
	b = binary.BigEndian.AppendUint32(b, r.Mod.Seq)
	return append(b, r.Value...)
}

func decodeRecord(b []byte) (Record, error) {
	if len(b) < recordHeader {
		return Record{}, fmt.Errorf("%w: short record", ErrBadEntry)
	}
	return Record{
		Version:     binary.BigEndian.Uint64(b),
		CreateIndex: binary.BigEndian.Uint64(b[8:]),
		Mod:         Revision{Index: binary.BigEndian.Uint64(b[16:]), Seq: binary.BigEndian.Uint32(b[24:])},
		Value:       append([]byte(nil), b[recordHeader:]...),
	}, nil
}
