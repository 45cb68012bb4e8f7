// Package backup is the file format of a ringkv backup (docs/BACKUP.md): a header, one
// section per data group holding the group's keys as its Raft snapshot carries them,
// and a trailer holding the manifest, each part checksummed, so a file is written and
// read as one stream whatever its size.
//
// The layout follows the shape of Consul's snapshot archive and etcd's snapshot file
// (a versioned stream with a checksum to verify it without restoring), but keeps a
// group's keys length-prefixed in the group's own snapshot encoding, so a backup is
// written from a Badger read view by the code that writes Raft snapshots and a restore
// hands each group its keys as a snapshot.
package backup

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"

	"github.com/ringkv/ringkv/raftgroup/internal/pairs"
)

// Magic starts every backup file.
const Magic = "RKBACKUP"

// Version is the format version this code writes; it reads it and every older one.
const Version = 1

// Section tags.
const (
	tagGroup   = 'G'
	tagTrailer = 'E'
)

// Bounds a reader holds a record to, so a damaged length cannot make it allocate
// without limit: a stored key is 5 bytes of prefix and at most 4 KiB of user key; a
// record 28 bytes of header and a value (1 MiB by default, configurable: 64 MiB here).
const (
	MaxKeyBytes    = 5 + 4<<10
	MaxRecordBytes = 28 + 64<<20
	maxJSONBytes   = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is what a backup says about itself before its sections.
type Header struct {
	FormatVersion int       `json:"format_version"`
	ClusterID     string    `json:"cluster_id"`
	Created       time.Time `json:"created"`
	Node          string    `json:"node"` // the node that assembled it
	// Partitions is the partition map: the group serving each partition, by index.
	Partitions []uint32 `json:"partitions"`
	// Groups are the data groups, in the order their sections follow.
	Groups []uint32 `json:"groups"`
	// Consistent: the sections are one cluster-wide cut (`--consistent`), not each
	// group's own at the moment the backup reached it.
	Consistent bool `json:"consistent,omitempty"`
}

// GroupEntry is one group's section as the manifest lists it.
type GroupEntry struct {
	ID           uint32 `json:"id"`
	AppliedIndex uint64 `json:"applied_index"` // the group's state is exactly that at this index
	Keys         uint64 `json:"keys"`
	Bytes        uint64 `json:"bytes"`  // the section's size in the file
	SHA256       string `json:"sha256"` // hex, of the section's bytes before its checksum
}

// Manifest is the trailer: the header's facts and every section's entry.
type Manifest struct {
	FormatVersion int          `json:"format_version"`
	ClusterID     string       `json:"cluster_id"`
	Created       time.Time    `json:"created"`
	Node          string       `json:"node"`
	Partitions    int          `json:"partitions"`
	Consistent    bool         `json:"consistent"`
	Groups        []GroupEntry `json:"groups"`
	Keys          uint64       `json:"keys"`
	// SHA256 (hex) covers every byte of the file before it; filled in by the reader
	// (the writer writes it after the manifest it is computed over).
	SHA256 string `json:"sha256,omitempty"`
}

// Writer writes one backup: NewWriter (the header), a section per group in the
// header's order (Section, or CopySection for one another node wrote), then Close.
type Writer struct {
	w      io.Writer // counts into file
	file   hash.Hash // of everything written
	header Header
	groups []GroupEntry
	open   *SectionWriter
}

// NewWriter writes h's header to w.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.FormatVersion = Version
	file := sha256.New()
	bw := &Writer{w: io.MultiWriter(w, file), file: file, header: h}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	b := append([]byte(Magic), 0, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(js)))
	b = append(b, js...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(js, castagnoli))
	if _, err := bw.w.Write(b); err != nil {
		return nil, err
	}
	return bw, nil
}

// ErrOrder: sections were written out of the header's order, or one was left open.
var ErrOrder = errors.New("backup: sections out of order")

// Section starts the section of the next group in the header's order, whose state is
// that at applied; Put its keys, then End it.
func (bw *Writer) Section(group uint32, applied uint64) (*SectionWriter, error) {
	if err := bw.next(group); err != nil {
		return nil, err
	}
	bw.open = NewSectionWriter(bw.w, group, applied)
	return bw.open, nil
}

func (bw *Writer) next(group uint32) error {
	if bw.open != nil {
		return fmt.Errorf("%w: section of group %d not ended", ErrOrder, bw.open.entry.ID)
	}
	if i := len(bw.groups); i >= len(bw.header.Groups) || bw.header.Groups[i] != group {
		return fmt.Errorf("%w: group %d is not next", ErrOrder, group)
	}
	return nil
}

// EndSection ends the section Section started and records its entry.
func (bw *Writer) EndSection() (GroupEntry, error) {
	if bw.open == nil {
		return GroupEntry{}, fmt.Errorf("%w: no section open", ErrOrder)
	}
	e, err := bw.open.End()
	bw.open = nil
	if err == nil {
		bw.groups = append(bw.groups, e)
	}
	return e, err
}

// CopySection copies a whole section read from r (as SectionWriter wrote it on
// another node) after checking it record by record and against its checksum; it must
// be of group. Nothing of a damaged or truncated section is trusted, but bytes before
// the damage are already written: the caller abandons the backup.
func (bw *Writer) CopySection(r io.Reader, group uint32) (GroupEntry, error) {
	if err := bw.next(group); err != nil {
		return GroupEntry{}, err
	}
	sr := newSectionReader(r, bw.header.Partitions)
	id, applied, err := sr.begin()
	if err != nil {
		return GroupEntry{}, err
	}
	if id != group {
		return GroupEntry{}, fmt.Errorf("%w: asked for group %d's section, got group %d's", ErrCorrupt, group, id)
	}
	sw := NewSectionWriter(bw.w, id, applied)
	for {
		k, v, ok, err := sr.record()
		if err != nil {
			return GroupEntry{}, err
		}
		if !ok {
			break
		}
		if err := sw.Put(k, v); err != nil {
			return GroupEntry{}, err
		}
	}
	e, err := sw.End()
	if err != nil {
		return GroupEntry{}, err
	}
	if got, err := sr.end(); err != nil {
		return GroupEntry{}, err
	} else if got != e {
		return GroupEntry{}, fmt.Errorf("%w: group %d's section re-encodes differently", ErrCorrupt, group)
	}
	bw.groups = append(bw.groups, e)
	return e, nil
}

// Close writes the trailer (after every group's section) and returns the manifest.
func (bw *Writer) Close() (Manifest, error) {
	if bw.open != nil || len(bw.groups) != len(bw.header.Groups) {
		return Manifest{}, fmt.Errorf("%w: %d of %d sections written", ErrOrder, len(bw.groups), len(bw.header.Groups))
	}
	m := manifestOf(bw.header, bw.groups)
	js, err := json.Marshal(m)
	if err != nil {
		return Manifest{}, err
	}
	b := binary.BigEndian.AppendUint32([]byte{tagTrailer}, uint32(len(js)))
	if _, err := bw.w.Write(append(b, js...)); err != nil {
		return Manifest{}, err
	}
	sum := bw.file.Sum(nil)
	if _, err := bw.w.Write(sum); err != nil {
		return Manifest{}, err
	}
	m.SHA256 = hex.EncodeToString(sum)
	return m, nil
}

func manifestOf(h Header, groups []GroupEntry) Manifest {
	m := Manifest{FormatVersion: h.FormatVersion, ClusterID: h.ClusterID, Created: h.Created, Node: h.Node,
		Partitions: len(h.Partitions), Consistent: h.Consistent, Groups: groups}
	for _, g := range groups {
		m.Keys += g.Keys
	}
	return m
}

// SectionWriter writes one group's section: the tag, the group and its applied index,
// each key as (uvarint length, stored key, uvarint length, stored record) as the
// group's Raft snapshot holds them, a zero, the key count, and the SHA-256 of all that.
type SectionWriter struct {
	w     io.Writer
	sum   hash.Hash
	entry GroupEntry
	err   error
	buf   []byte // one pair, reused
}

// NewSectionWriter starts group's section on w (a whole backup's, or alone: what a
// node answers another assembling a backup).
func NewSectionWriter(w io.Writer, group uint32, applied uint64) *SectionWriter {
	sum := sha256.New()
	sw := &SectionWriter{w: w, sum: sum, entry: GroupEntry{ID: group, AppliedIndex: applied}}
	b := binary.BigEndian.AppendUint32([]byte{tagGroup}, group)
	sw.write(binary.BigEndian.AppendUint64(b, applied))
	return sw
}

func (sw *SectionWriter) write(b []byte) {
	if sw.err != nil {
		return
	}
	_, sw.err = sw.w.Write(b)
	sw.sum.Write(b)
	sw.entry.Bytes += uint64(len(b))
}

// Put writes one key: the stored key and the stored record, as raftgroup's
// ReadView.Scan hands them.
func (sw *SectionWriter) Put(key, record []byte) error {
	if len(key) == 0 {
		return errors.New("backup: empty key")
	}
	sw.buf = pairs.Append(sw.buf[:0], key, record)
	sw.write(sw.buf)
	sw.entry.Keys++
	return sw.err
}

// End writes the section's end and checksum and returns its entry.
func (sw *SectionWriter) End() (GroupEntry, error) {
	sw.write(binary.BigEndian.AppendUint64([]byte{0}, sw.entry.Keys))
	sum := sw.sum.Sum(nil)
	if sw.err == nil {
		_, sw.err = sw.w.Write(sum)
	}
	sw.entry.Bytes += uint64(len(sum))
	sw.entry.SHA256 = hex.EncodeToString(sum)
	return sw.entry, sw.err
}
