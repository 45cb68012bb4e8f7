package raftgroup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/raftgroup/internal/pairs"
)

// A seed is a group's first state, prepared offline (by `ringkv restore` from a
// backup): a file holding exactly a Raft snapshot stream of the group (Persist's
// format: snapshotMagic, the index, the KV records, a zero). When the replica that
// bootstraps the group starts and finds one, it does not bootstrap with an empty log
// but starts from the seed as a snapshot at the seed's index, taken in term 1, whose
// configuration is the bootstrap one: the state machine loads it like any snapshot
// (restoreIfBehind), hashicorp/raft starts with its log after that index (as after a
// compaction), and replicas added later receive it by InstallSnapshot.
//
// Starting at the seed's index, not at 1, keeps every Raft index the group writes from
// now on above the mod indexes the seeded keys carry, so a key's ETag never repeats one
// it had before the backup. This is what hashicorp/raft's own RecoverCluster does to
// restart a cluster from a snapshot (a snapshot written with a chosen configuration).

// SeedWriter writes a seed file: Put each stored key and record, then Close with the
// index the group starts at. Keys of one partition need not be contiguous.
type SeedWriter struct {
	f    *os.File
	w    *bufio.Writer
	keys uint64
	buf  []byte // one pair, reused
}

// seedHeader is snapshotMagic and the index, written last (Close) at the file's start.
const seedHeader = 8 + 8

// CreateSeed creates a seed file at path (it must not exist).
func CreateSeed(path string) (*SeedWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(seedHeader, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &SeedWriter{f: f, w: bufio.NewWriterSize(f, 1<<16)}, nil
}

// Put adds one stored key (DataKey) and its stored record (EncodeRecord).
func (s *SeedWriter) Put(key, record []byte) error {
	s.buf = pairs.Append(s.buf[:0], key, record)
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	s.keys++
	return nil
}

// Keys is how many keys were put.
func (s *SeedWriter) Keys() uint64 { return s.keys }

// Close ends the stream, writes the header with index (the group's first index; at
// least 1) and syncs the file.
func (s *SeedWriter) Close(index uint64) error {
	err := s.w.WriteByte(0)
	if err == nil {
		err = s.w.Flush()
	}
	if err == nil {
		_, err = s.f.WriteAt(binary.BigEndian.AppendUint64(append([]byte{}, snapshotMagic...), max(index, 1)), 0)
	}
	if err == nil {
		err = s.f.Sync()
	}
	return errors.Join(err, s.f.Close())
}

// Abort closes the file without finishing it (the caller removes it).
func (s *SeedWriter) Abort() { s.f.Close() }

// seedGroup makes the seed at path the replica's first state, when the replica has no
// Raft state yet, and removes the seed. Idempotent over a crash: the snapshot is
// complete (the snapshot store's atomic rename) before the seed is removed, and a
// replica that has state only ensures its term is set.
func seedGroup(path string, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, conf raft.Configuration) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return err
	}
	if !has {
		r := bufio.NewReaderSize(f, 1<<16)
		index, err := readSnapshotHeader(r)
		if err != nil {
			return fmt.Errorf("seed %s: %w", path, err)
		}
		// The snapshot store records the voters also in the legacy peers field, encoded
		// by a transport; an in-memory one encodes an address as itself, as the
		// network transport does.
		_, enc := raft.NewInmemTransport("")
		sink, err := snaps.Create(raft.SnapshotVersionMax, index, 1, conf, index, enc)
		if err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			_ = sink.Cancel()
			return err
		}
		if _, err := io.Copy(sink, f); err != nil {
			_ = sink.Cancel()
			return fmt.Errorf("seed %s: %w", path, err)
		}
		if err := sink.Close(); err != nil {
			return err
		}
	}
	// BootstrapCluster's first term; a seed's snapshot is of term 1.
	// (A store without the key answers an error or 0: either way it is unset.)
	if term, _ := stable.GetUint64([]byte("CurrentTerm")); term == 0 {
		if err := stable.SetUint64([]byte("CurrentTerm"), 1); err != nil {
			return err
		}
	}
	f.Close()
	return os.Remove(path)
}
