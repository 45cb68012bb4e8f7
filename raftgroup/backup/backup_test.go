package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

// record is a stored record: 28 bytes of header, then the value.
func record(value string) []byte { return append(make([]byte, 28), value...) }

func storedKey(p uint32, key string) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{'k'}, p), key...)
}

// sample writes a backup of two groups over four partitions (p -> p%2+1).
func sample(t *testing.T) ([]byte, Manifest) {
	t.Helper()
	var buf bytes.Buffer
	h := Header{ClusterID: "c1", Created: time.Unix(1, 0).UTC(), Node: "n1", Partitions: []uint32{1, 2, 1, 2}, Groups: []uint32{1, 2}}
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range h.Groups {
		sw, err := w.Section(g, uint64(100*g))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			p := g - 1 + uint32(2*(i%2))
			if err := sw.Put(storedKey(p, fmt.Sprintf("key-%d-%d", g, i)), record(fmt.Sprintf("v%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.EndSection(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

func TestRoundTrip(t *testing.T) {
	file, written := sample(t)
	m, err := Verify(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if m.Keys != 20 || len(m.Groups) != 2 || m.Groups[1].AppliedIndex != 200 || m.SHA256 != written.SHA256 || m.ClusterID != "c1" {
		t.Fatalf("manifest read %+v, written %+v", m, written)
	}
}

func TestDamageRefused(t *testing.T) {
	file, _ := sample(t)
	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x40
		if _, err := Verify(bytes.NewReader(bad)); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNewerFormat) {
			t.Fatalf("byte %d flipped: err %v", i, err)
		}
	}
}

func TestTruncationRefused(t *testing.T) {
	file, _ := sample(t)
	for n := range len(file) {
		if _, err := Verify(bytes.NewReader(file[:n])); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d of %d: err %v", n, len(file), err)
		}
	}
	if _, err := Verify(bytes.NewReader(append(bytes.Clone(file), 0))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a byte appended: err %v", err)
	}
}

func TestNewerFormatRefused(t *testing.T) {
	file, _ := sample(t)
	bad := bytes.Clone(file)
	binary.BigEndian.PutUint16(bad[len(Magic):], Version+1)
	if _, err := Verify(bytes.NewReader(bad)); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("err %v, want ErrNewerFormat", err)
	}
}

// A section written alone (by a group's leader) and copied into a backup by another
// node makes the same file as one written in place.
func TestCopySection(t *testing.T) {
	want, _ := sample(t)
	h := Header{ClusterID: "c1", Created: time.Unix(1, 0).UTC(), Node: "n1", Partitions: []uint32{1, 2, 1, 2}, Groups: []uint32{1, 2}}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range h.Groups {
		var part bytes.Buffer
		sw := NewSectionWriter(&part, g, uint64(100*g))
		for i := range 10 {
			p := g - 1 + uint32(2*(i%2))
			if err := sw.Put(storedKey(p, fmt.Sprintf("key-%d-%d", g, i)), record(fmt.Sprintf("v%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := sw.End(); err != nil {
			t.Fatal(err)
		}
		if g == 2 { // a damaged part is refused
			bad := bytes.Clone(part.Bytes())
			bad[len(bad)-40] ^= 1
			var sink bytes.Buffer
			w2, _ := NewWriter(&sink, Header{Partitions: h.Partitions, Groups: []uint32{2}})
			if _, err := w2.CopySection(bytes.NewReader(bad), 2); err == nil {
				t.Fatal("a damaged section was copied")
			}
		}
		if _, err := w.CopySection(&part, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("copied sections make a different file")
	}
}

// A key of a partition another group serves is refused.
func TestForeignKeyRefused(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{Partitions: []uint32{1, 2}, Groups: []uint32{1, 2}})
	sw, _ := w.Section(1, 1)
	_ = sw.Put(storedKey(1, "x"), record("v"))
	_, _ = w.EndSection()
	sw, _ = w.Section(2, 1)
	_, _ = w.EndSection()
	_, _ = w.Close()
	if _, err := Verify(&buf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v, want ErrCorrupt", err)
	}
}
