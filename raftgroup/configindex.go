package raftgroup

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft"
)

// configTracker knows the log index of a replica's latest Raft configuration: the
// newest LogConfiguration entry in its log, or the configuration a snapshot carries
// when the log holds none newer.
//
// Why it exists: hashicorp/raft v1.7.3's GetConfiguration fills only the servers, so
// its Index() is always 0, and Stats()["latest_configuration_index"] is read from the
// same future, so it is 0 too. "A removal has committed" (commit index >= the
// configuration's index) was therefore always true, and a removed replica could delete
// its data while the removal was still uncommitted. The tracker sees every entry the
// log store accepts, every suffix truncation and every snapshot created, which are the
// only ways the latest configuration changes (Raft §4.1: a server uses the latest
// configuration in its log, committed or not).
type configTracker struct {
	mu       sync.Mutex
	latest   uint64 // newest configuration entry stored, or the snapshot floor
	snapshot uint64 // configuration index of the newest snapshot created or found
}

// trackConfigurations starts a tracker from what a replica holds on disk: the newest
// snapshot's configuration, then the newest configuration entry in the log above it.
func trackConfigurations(log raft.LogStore, snaps raft.SnapshotStore) (*configTracker, error) {
	c := &configTracker{}
	list, err := snaps.List()
	if err != nil {
		return nil, err
	}
	if len(list) > 0 {
		c.snapshot = list[0].ConfigurationIndex
	}
	return c, c.rescan(log)
}

// Index is the log index of the latest configuration (0 when none is known yet).
func (c *configTracker) Index() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.latest, c.snapshot)
}

// stored notes the configuration entries among logs, which the store accepted.
func (c *configTracker) stored(logs []*raft.Log) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if l.Type == raft.LogConfiguration && l.Index > c.latest {
			c.latest = l.Index
		}
	}
}

// snapshotted notes a snapshot's configuration index (a local snapshot or one a
// leader installed).
func (c *configTracker) snapshotted(index uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshot = max(c.snapshot, index)
}

// rescan finds the newest configuration entry in log at or below its last index and
// above the snapshot's: at start, and after a suffix truncation removed the entry the
// tracker knew (a follower dropping a deposed leader's uncommitted entries).
func (c *configTracker) rescan(log raft.LogStore) error {
	first, err := log.FirstIndex()
	if err != nil {
		return err
	}
	last, err := log.LastIndex()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latest = 0
	var entry raft.Log
	for i := last; i >= max(first, c.snapshot+1) && i > 0; i-- {
		if err := log.GetLog(i, &entry); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue
			}
			return err
		}
		if entry.Type == raft.LogConfiguration {
			c.latest = i
			return nil
		}
	}
	return nil
}

// configTrackingLog is the replica's log store as Raft sees it: every write and
// truncation passes the tracker on its way to the store.
type configTrackingLog struct {
	raft.LogStore
	cfg *configTracker
}

// IsMonotonic passes on raft.MonotonicLogStore: raft-wal refuses a gap in its indexes,
// and hashicorp/raft asks this to know it must clear the log after installing a
// snapshot. A wrapper that hid it left a follower unable to append after a snapshot
// install (TestFollowerBehindCompactedLogCatchesUpBySnapshot caught it).
func (l *configTrackingLog) IsMonotonic() bool {
	m, ok := l.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (l *configTrackingLog) StoreLog(entry *raft.Log) error {
	return l.StoreLogs([]*raft.Log{entry})
}

func (l *configTrackingLog) StoreLogs(logs []*raft.Log) error {
	if err := l.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	l.cfg.stored(logs)
	return nil
}

// DeleteRange removes [min, max]. Raft deletes a prefix when it compacts (the
// configuration it held lives on in the snapshot, so the index stays) and a suffix
// when a follower drops conflicting entries (the configuration may revert to an
// older one: rescan).
func (l *configTrackingLog) DeleteRange(min, max uint64) error {
	if err := l.LogStore.DeleteRange(min, max); err != nil {
		return err
	}
	last, err := l.LogStore.LastIndex()
	if err != nil {
		return err
	}
	l.cfg.mu.Lock()
	truncated := l.cfg.latest > last
	l.cfg.mu.Unlock()
	if truncated {
		return l.cfg.rescan(l.LogStore)
	}
	return nil
}

// configTrackingSnapshots records the configuration index of every snapshot that is
// completed (taken here or installed from a leader).
type configTrackingSnapshots struct {
	raft.SnapshotStore
	cfg *configTracker
}

func (s *configTrackingSnapshots) Create(version raft.SnapshotVersion, index, term uint64,
	configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &configTrackingSink{SnapshotSink: sink, cfg: s.cfg, index: configurationIndex}, nil
}

type configTrackingSink struct {
	raft.SnapshotSink
	cfg   *configTracker
	index uint64
}

func (s *configTrackingSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	s.cfg.snapshotted(s.index)
	return nil
}
