package raftgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// LogStoreKind names the Raft log + stable store a replica keeps its log in.
type LogStoreKind string

const (
	// LogStoreBolt is raft-boltdb: one bbolt file per replica, two fsyncs per append.
	// DESIGN.md's choice and the default until the measurements in
	// docs/PERFORMANCE.md; nodes whose replicas were created with it keep using it.
	LogStoreBolt LogStoreKind = "bolt"
	// LogStoreWAL is hashicorp/raft-wal, the default: segment files plus a small bbolt
	// meta file, one fsync per append, cheap truncation (no bbolt freelist growth).
	// 63% more writes per second than bolt with 8 groups on 2 cores
	// (docs/PERFORMANCE.md). raft-wal calls itself experimental; the fault runs
	// (kill -9, pause, partition, snapshot install) run on it.
	LogStoreWAL LogStoreKind = "wal"
)

// ParseLogStoreKind accepts the values of --log-store.
func ParseLogStoreKind(s string) (LogStoreKind, error) {
	switch k := LogStoreKind(s); k {
	case LogStoreBolt, LogStoreWAL:
		return k, nil
	}
	return "", fmt.Errorf("unknown log store %q: want bolt or wal", s)
}

// walSegmentSize is smaller than raft-wal's 64 MiB default: a node hosts many replicas,
// each with a preallocated tail segment, and 10,000 small entries fit in a few MiB.
const walSegmentSize = 8 << 20

// logStore is a replica's Raft log and stable store in one.
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// The files each kind keeps in a replica's directory: how a replica is recognised.
func boltPath(dir string) string { return filepath.Join(dir, "raft.db") }
func walDir(dir string) string   { return filepath.Join(dir, "wal") }

// openLogStore opens the replica's log store: the kind it already has, or for a new
// replica the kind asked for. Opening an existing replica as the other kind would start
// it from an empty log and forget its entries and votes, so a replica never changes kind.
func openLogStore(kind LogStoreKind, dir string) (logStore, LogStoreKind, error) {
	switch {
	case exists(boltPath(dir)):
		kind = LogStoreBolt
	case exists(walDir(dir)):
		kind = LogStoreWAL
	}
	if kind == LogStoreWAL {
		if err := os.MkdirAll(walDir(dir), 0o755); err != nil {
			return nil, kind, err
		}
		meta := &metadb.BoltMetaDB{}
		w, err := raftwal.Open(walDir(dir), raftwal.WithSegmentSize(walSegmentSize), raftwal.WithMetaStore(meta))
		if err != nil {
			meta.Close()
			return nil, kind, err
		}
		return &walStore{WAL: w}, kind, nil
	}
	b, err := raftboltdb.New(raftboltdb.Options{Path: boltPath(dir)})
	return b, LogStoreBolt, err
}

// walStore wraps raft-wal's WAL for the one defect v0.4.2 still has (below).
type walStore struct {
	*raftwal.WAL
}

// GetLog hides entries below the first index. raft-wal's head truncation (v0.4.2 too)
// only moves the first index and keeps the tail segment's older entries readable, so a
// follower that fell behind a compaction was caught up from entries the log had
// "deleted" instead of by a snapshot: the trailing-logs setting meant nothing while the
// tail segment held them, and the snapshot path went untested (the e2e
// partition-snapshot fault caught it).
func (s *walStore) GetLog(index uint64, log *raft.Log) error {
	first, err := s.WAL.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return s.WAL.GetLog(index, log)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
