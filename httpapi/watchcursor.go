package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Pos is a position in one group's change history: after command Seq of the entry at
// Index; Seq EndSeq means after every command of that entry (the position of a state
// read at an applied index). A group's Raft index means nothing in another group, so
// anything spanning groups carries one Pos per group (Cursor).
type Pos struct {
	Index uint64
	Seq   uint32
}

// EndSeq as a Pos's Seq: after the whole entry (raftgroup.EndSeq).
const EndSeq = math.MaxUint32

// Less orders positions of one group.
func (p Pos) Less(o Pos) bool { return p.Index < o.Index || (p.Index == o.Index && p.Seq < o.Seq) }

// AtIndex is the position of a state read at applied index i.
func AtIndex(i uint64) Pos { return Pos{Index: i, Seq: EndSeq} }

// Cursor is a position per group: where a watch resumes. Clients see it as an opaque
// string (Encode): "w1." then the unpadded base64url of the groups in ascending order,
// each as uvarints group, index and seq+1 (0 for EndSeq). The "w1." keeps it apart from
// a listing's `next` (plain base64url): one passed for the other is refused, not
// misread.
type Cursor map[uint32]Pos

const (
	cursorPrefix = "w1."
	// maxCursorGroups bounds what a cursor may name (a decoded cursor is held per
	// stream): far more groups than a cluster has.
	maxCursorGroups = 4096
)

// Groups are the cursor's groups in ascending order.
func (c Cursor) Groups() []uint32 {
	gs := make([]uint32, 0, len(c))
	for g := range c {
		gs = append(gs, g)
	}
	slices.Sort(gs)
	return gs
}

// Clone copies c.
func (c Cursor) Clone() Cursor {
	out := make(Cursor, len(c))
	for g, p := range c {
		out[g] = p
	}
	return out
}

// Encode is c as a client sees it.
func (c Cursor) Encode() string {
	var b []byte
	for _, g := range c.Groups() {
		p := c[g]
		b = binary.AppendUvarint(b, uint64(g))
		b = binary.AppendUvarint(b, p.Index)
		seq := uint64(p.Seq) + 1
		if p.Seq == EndSeq {
			seq = 0
		}
		b = binary.AppendUvarint(b, seq)
	}
	return cursorPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor reads what Encode wrote; anything else is ErrBadRequest.
func ParseCursor(s string) (Cursor, error) {
	bad := func(why string) (Cursor, error) {
		return nil, fmt.Errorf("%w: the cursor is not one this API gave (%s): send a cursor unchanged", ErrBadRequest, why)
	}
	rest, ok := strings.CutPrefix(s, cursorPrefix)
	if !ok {
		return bad("it does not start with " + cursorPrefix)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return bad("not base64url")
	}
	c := Cursor{}
	var last int64 = -1
	for len(b) > 0 {
		var v [3]uint64
		for i := range v {
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return bad("truncated")
			}
			v[i], b = x, b[n:]
		}
		if v[0] > math.MaxUint32 || int64(v[0]) <= last || v[2] > math.MaxUint32 {
			return bad("groups out of order or out of range")
		}
		if len(c) == maxCursorGroups {
			return bad("too many groups")
		}
		last = int64(v[0])
		p := Pos{Index: v[1], Seq: EndSeq}
		if v[2] > 0 {
			p.Seq = uint32(v[2] - 1)
		}
		c[uint32(v[0])] = p
	}
	if len(c) == 0 {
		return bad("no group")
	}
	return c, nil
}

// String renders p for logs and problems: "index.seq", or "index" for EndSeq.
func (p Pos) String() string {
	if p.Seq == EndSeq {
		return strconv.FormatUint(p.Index, 10)
	}
	return strconv.FormatUint(p.Index, 10) + "." + strconv.FormatUint(uint64(p.Seq), 10)
}

// ParsePos is the inverse of Pos.String (the internal watch endpoint's `since`).
func ParsePos(s string) (Pos, error) {
	idx, seq, hasSeq := strings.Cut(s, ".")
	i, err := strconv.ParseUint(idx, 10, 64)
	p := Pos{Index: i, Seq: EndSeq}
	if err == nil && hasSeq {
		var q uint64
		q, err = strconv.ParseUint(seq, 10, 32)
		if err == nil && q == EndSeq {
			err = fmt.Errorf("seq out of range")
		}
		p.Seq = uint32(q)
	}
	if err != nil {
		return Pos{}, fmt.Errorf("%w: a position is index or index.seq", ErrBadRequest)
	}
	return p, nil
}
