package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
)

// Errors of a reader. Every error reading a file wraps one of them.
var (
	// ErrCorrupt: the file is damaged (a checksum, a length or a field is wrong) or is
	// not a backup.
	ErrCorrupt = errors.New("backup: corrupt file")
	// ErrTruncated: the file ends before its trailer (an interrupted backup).
	ErrTruncated = errors.New("backup: truncated file")
	// ErrNewerFormat: the file is of a format version newer than this code reads.
	ErrNewerFormat = errors.New("backup: newer format version")
)

// Reader reads a backup as a stream: NewReader (the header), then for each section
// NextSection and NextRecord until it reports the end, and after the last section
// NextSection reports the end and checks the trailer (Manifest). Every checksum is
// checked as the stream passes it; a caller must not trust what it read before the
// reader reports the file's end.
type Reader struct {
	r        *hashingReader
	file     hash.Hash // of every byte consumed
	header   Header
	sec      *sectionReader
	groups   []GroupEntry
	manifest *Manifest
}

// NewReader reads and checks the header.
func NewReader(r io.Reader) (*Reader, error) {
	file := sha256.New()
	br := &Reader{r: &hashingReader{r: bufio.NewReaderSize(r, 1<<16), h: file}, file: file}
	fixed := make([]byte, len(Magic)+2+4)
	if err := readFull(br.r, fixed); err != nil {
		return nil, err
	}
	if string(fixed[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: not a ringkv backup (no %q at its start)", ErrCorrupt, Magic)
	}
	if v := binary.BigEndian.Uint16(fixed[len(Magic):]); v > Version {
		return nil, fmt.Errorf("%w: the file is format version %d, this ringkv reads up to %d: use a newer ringkv", ErrNewerFormat, v, Version)
	} else if v == 0 {
		return nil, fmt.Errorf("%w: format version 0", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(fixed[len(Magic)+2:])
	if n > maxJSONBytes {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrCorrupt, n)
	}
	js := make([]byte, n+4)
	if err := readFull(br.r, js); err != nil {
		return nil, err
	}
	if crc32.Checksum(js[:n], castagnoli) != binary.BigEndian.Uint32(js[n:]) {
		return nil, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	if err := json.Unmarshal(js[:n], &br.header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	for _, g := range br.header.Partitions {
		if !slices.Contains(br.header.Groups, g) {
			return nil, fmt.Errorf("%w: the partition map names group %d, which has no section", ErrCorrupt, g)
		}
	}
	return br, nil
}

// Header is the file's header.
func (br *Reader) Header() Header { return br.header }

// NextSection starts the next group's section; ok is false after the last one, when
// the trailer has been read and checked against every section and the file's
// checksum, and the file has ended.
func (br *Reader) NextSection() (group uint32, applied uint64, ok bool, err error) {
	if br.sec != nil {
		return 0, 0, false, fmt.Errorf("%w: section of group %d not read to its end", ErrOrder, br.sec.entry.ID)
	}
	if len(br.groups) == len(br.header.Groups) {
		return 0, 0, false, br.trailer()
	}
	br.sec = newSectionReader(br.r, br.header.Partitions)
	id, applied, err := br.sec.begin()
	if err != nil {
		return 0, 0, false, err
	}
	if want := br.header.Groups[len(br.groups)]; id != want {
		return 0, 0, false, fmt.Errorf("%w: section of group %d where group %d's was due", ErrCorrupt, id, want)
	}
	return id, applied, true, nil
}

// NextRecord returns the next stored key and record of the section (valid until the
// next call); ok is false at the section's end, once its count and checksum are checked.
func (br *Reader) NextRecord() (key, record []byte, ok bool, err error) {
	if br.sec == nil {
		return nil, nil, false, fmt.Errorf("%w: no section started", ErrOrder)
	}
	key, record, ok, err = br.sec.record()
	if err != nil || ok {
		return key, record, ok, err
	}
	e, err := br.sec.end()
	if err != nil {
		return nil, nil, false, err
	}
	br.groups = append(br.groups, e)
	br.sec = nil
	return nil, nil, false, nil
}

// Manifest is the checked manifest, once NextSection has reported the end.
func (br *Reader) Manifest() (Manifest, bool) {
	if br.manifest == nil {
		return Manifest{}, false
	}
	return *br.manifest, true
}

func (br *Reader) trailer() error {
	if br.manifest != nil {
		return nil
	}
	fixed := make([]byte, 5)
	if err := readFull(br.r, fixed); err != nil {
		return err
	}
	if fixed[0] != tagTrailer {
		return fmt.Errorf("%w: trailer tag %#x", ErrCorrupt, fixed[0])
	}
	n := binary.BigEndian.Uint32(fixed[1:])
	if n > maxJSONBytes {
		return fmt.Errorf("%w: trailer of %d bytes", ErrCorrupt, n)
	}
	js := make([]byte, n)
	if err := readFull(br.r, js); err != nil {
		return err
	}
	want := br.file.Sum(nil)
	sum := make([]byte, sha256.Size)
	if err := readFull(br.r, sum); err != nil {
		return err
	}
	if !bytes.Equal(sum, want) {
		return fmt.Errorf("%w: file checksum mismatch", ErrCorrupt)
	}
	if _, err := br.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: bytes after the trailer", ErrCorrupt)
	}
	var m Manifest
	if err := json.Unmarshal(js, &m); err != nil {
		return fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	expect := manifestOf(br.header, br.groups)
	if m.FormatVersion != expect.FormatVersion || m.ClusterID != expect.ClusterID || m.Keys != expect.Keys ||
		m.Partitions != expect.Partitions || m.Consistent != expect.Consistent || !slices.Equal(m.Groups, expect.Groups) {
		return fmt.Errorf("%w: the manifest does not describe the sections read", ErrCorrupt)
	}
	m.SHA256 = hex.EncodeToString(sum)
	br.manifest = &m
	return nil
}

// Verify reads a whole backup from r, checking everything, and returns its manifest.
func Verify(r io.Reader) (Manifest, error) {
	br, err := NewReader(r)
	if err != nil {
		return Manifest{}, err
	}
	for {
		_, _, ok, err := br.NextSection()
		if err != nil {
			return Manifest{}, err
		}
		if !ok {
			m, _ := br.Manifest()
			return m, nil
		}
		for {
			_, _, ok, err := br.NextRecord()
			if err != nil {
				return Manifest{}, err
			}
			if !ok {
				break
			}
		}
	}
}

// readFull is io.ReadFull whose short read is ErrTruncated.
func readFull(r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %v", ErrTruncated, err)
		}
		return err
	}
	return nil
}

// sectionReader parses one section, hashing it as it goes and checking every key
// against the partition map.
type sectionReader struct {
	r          byteReader
	sum        hash.Hash
	partitions []uint32
	entry      GroupEntry
	key, rec   []byte
}

func newSectionReader(r io.Reader, partitions []uint32) *sectionReader {
	br, ok := r.(byteReader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	return &sectionReader{r: br, sum: sha256.New(), partitions: partitions}
}

func (sr *sectionReader) read(b []byte) error {
	if err := readFull(sr.r, b); err != nil {
		return err
	}
	sr.sum.Write(b)
	sr.entry.Bytes += uint64(len(b))
	return nil
}

func (sr *sectionReader) uvarint() (uint64, error) {
	// binary.ReadUvarint, keeping the bytes (for the checksum) and telling a read
	// error (passed on), the end of the stream (truncated) and an overlong varint
	// (corrupt) apart.
	var b [binary.MaxVarintLen64]byte
	for i := range b {
		c, err := sr.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: the stream ends inside group %d's section", ErrTruncated, sr.entry.ID)
		}
		if err != nil {
			return 0, err
		}
		b[i] = c
		if c < 0x80 {
			v, n := binary.Uvarint(b[:i+1])
			if n <= 0 {
				break
			}
			sr.sum.Write(b[:n])
			sr.entry.Bytes += uint64(n)
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: a length in group %d's section overflows 64 bits", ErrCorrupt, sr.entry.ID)
}

func (sr *sectionReader) begin() (uint32, uint64, error) {
	b := make([]byte, 13)
	if err := sr.read(b); err != nil {
		return 0, 0, err
	}
	if b[0] != tagGroup {
		return 0, 0, fmt.Errorf("%w: section tag %#x", ErrCorrupt, b[0])
	}
	sr.entry.ID, sr.entry.AppliedIndex = binary.BigEndian.Uint32(b[1:]), binary.BigEndian.Uint64(b[5:])
	return sr.entry.ID, sr.entry.AppliedIndex, nil
}

func (sr *sectionReader) record() (key, rec []byte, ok bool, err error) {
	kl, err := sr.uvarint()
	if err != nil || kl == 0 {
		return nil, nil, false, err
	}
	if kl < 6 || kl > MaxKeyBytes {
		return nil, nil, false, fmt.Errorf("%w: key of %d bytes in group %d", ErrCorrupt, kl, sr.entry.ID)
	}
	sr.key = grow(sr.key, int(kl))
	if err := sr.read(sr.key); err != nil {
		return nil, nil, false, err
	}
	if p := binary.BigEndian.Uint32(sr.key[1:5]); sr.key[0] != 'k' || int(p) >= len(sr.partitions) || sr.partitions[p] != sr.entry.ID {
		return nil, nil, false, fmt.Errorf("%w: a key of group %d's section is not of one of its partitions", ErrCorrupt, sr.entry.ID)
	}
	rl, err := sr.uvarint()
	if err != nil {
		return nil, nil, false, err
	}
	if rl < 28 || rl > MaxRecordBytes {
		return nil, nil, false, fmt.Errorf("%w: record of %d bytes in group %d", ErrCorrupt, rl, sr.entry.ID)
	}
	sr.rec = grow(sr.rec, int(rl))
	if err := sr.read(sr.rec); err != nil {
		return nil, nil, false, err
	}
	sr.entry.Keys++
	return sr.key, sr.rec, true, nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// end reads the count and checksum after the zero record() stopped at.
func (sr *sectionReader) end() (GroupEntry, error) {
	b := make([]byte, 8)
	if err := sr.read(b); err != nil {
		return GroupEntry{}, err
	}
	if n := binary.BigEndian.Uint64(b); n != sr.entry.Keys {
		return GroupEntry{}, fmt.Errorf("%w: group %d's section says %d keys, holds %d", ErrCorrupt, sr.entry.ID, n, sr.entry.Keys)
	}
	want := sr.sum.Sum(nil)
	sum := make([]byte, sha256.Size)
	if err := readFull(sr.r, sum); err != nil {
		return GroupEntry{}, err
	}
	if !bytes.Equal(sum, want) {
		return GroupEntry{}, fmt.Errorf("%w: group %d's section checksum mismatch", ErrCorrupt, sr.entry.ID)
	}
	sr.entry.Bytes += uint64(len(sum))
	sr.entry.SHA256 = hex.EncodeToString(sum)
	return sr.entry, nil
}

type byteReader interface {
	io.Reader
	io.ByteReader
}

// hashingReader hashes the bytes its reader hands out (not those read ahead).
type hashingReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (hr *hashingReader) Read(b []byte) (int, error) {
	n, err := hr.r.Read(b)
	hr.h.Write(b[:n])
	return n, err
}

func (hr *hashingReader) ReadByte() (byte, error) {
	c, err := hr.r.ReadByte()
	if err == nil {
		hr.h.Write([]byte{c})
	}
	return c, err
}
