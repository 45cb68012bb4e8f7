package raftgroup

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// HostConfig describes the node-level resources shared by its replicas.
type HostConfig struct {
	NodeID  string
	DataDir string
	Mux     *Mux
	Log     *slog.Logger
	Tuning  Tuning
	// DiskReserve is the free space kept on the data dir's filesystem: writes are
	// refused below it (0: never refused). DiskPoll is how often it is measured (100 ms).
	DiskReserve uint64
	DiskPoll    time.Duration
	GC          GCTuning
	// SeedDir, when set, holds seed files named by SeedFile: a replica started with a
	// bootstrap configuration starts from its group's seed when there is one.
	SeedDir string
}

// SeedFile is the name of group id's seed file in HostConfig.SeedDir.
func SeedFile(id uint32) string { return fmt.Sprintf("group-%d.seed", id) }

// Host owns a node's Badger DB and cluster mux and the group replicas running on it.
type Host struct {
	cfg  HostConfig
	db   *badger.DB
	disk *DiskGuard
	gc   *valueLogGC
	// gate's read side is held by every writer of db (state-machine applies and
	// restores, replica removal) and its write side by the value-log GC's forced flush,
	// during which Badger refuses writes (see valueLogGC).
	gate   sync.RWMutex
	mu     sync.Mutex
	groups map[uint32]*Group
	// stuck holds replicas whose Raft did not stop when they were removed
	// (ErrStopTimeout): still running, with their stores open. Their id cannot be
	// started again in this process (two Rafts would apply into one state), and a
	// later Remove retries the stop.
	stuck map[uint32]*Group
}

// OpenHost opens the node's Badger DB under DataDir/badger and starts watching the
// disk's free space and collecting the value log's garbage.
func OpenHost(cfg HostConfig) (*Host, error) {
	disk, err := NewDiskGuard(cfg.DataDir, cfg.DiskReserve, cfg.DiskPoll)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.DataDir, "badger")
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		// The Raft log is the durable record; the applied index stored with the data
		// tells a restarted node what to replay, so Badger need not fsync each batch.
		WithSyncWrites(false).
		// Each group's state machine is single-threaded and owns disjoint keys.
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1).
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		WithValueThreshold(1 << 10).
		WithValueLogFileSize(valueLogFileSize)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open badger: %w", err)
	}
	h := &Host{cfg: cfg, db: db, disk: disk, groups: map[uint32]*Group{}}
	h.gc = newValueLogGC(db, dir, &h.gate, cfg.GC, cfg.Log)
	disk.Start()
	h.gc.start()
	return h, nil
}

// Disk is the guard of the data dir's free space.
func (h *Host) Disk() *DiskGuard { return h.disk }

// GCStats is what value-log GC did since the node started.
func (h *Host) GCStats() GCStats { return h.gc.snapshot() }

// DB is the node's shared Badger DB.
func (h *Host) DB() *badger.DB { return h.db }

// NodeID is the node's id.
func (h *Host) NodeID() string { return h.cfg.NodeID }

// Start runs replica id with state machine sm, unless it already runs. bootstrap, when
// not nil, is used only if the replica has no Raft state yet.
func (h *Host) Start(id uint32, sm StateMachine, bootstrap *raft.Configuration) (*Group, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g := h.groups[id]; g != nil {
		return g, nil
	}
	if h.stuck[id] != nil {
		return nil, fmt.Errorf("group %d: %w: its earlier replica has not stopped; restart the node", id, ErrStopTimeout)
	}
	var seed string
	if h.cfg.SeedDir != "" && bootstrap != nil {
		seed = filepath.Join(h.cfg.SeedDir, SeedFile(id))
	}
	g, err := StartGroup(GroupConfig{
		ID: id, NodeID: h.cfg.NodeID, Dir: GroupDir(h.cfg.DataDir, id), DB: h.db, Mux: h.cfg.Mux,
		SM: sm, Log: h.cfg.Log, Tuning: h.cfg.Tuning, Bootstrap: bootstrap, Disk: h.disk, WriteGate: &h.gate,
		Seed: seed,
	})
	if err != nil {
		return nil, err
	}
	h.groups[id] = g
	return g, nil
}

// Group returns the running replica of id, or nil.
func (h *Host) Group(id uint32) *Group {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.groups[id]
}

// Groups returns the running replicas ordered by id.
func (h *Host) Groups() []*Group {
	h.mu.Lock()
	out := make([]*Group, 0, len(h.groups))
	for _, g := range h.groups {
		out = append(out, g)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Remove stops replica id and deletes its state: the state machine's data, the
// applied index and the Raft log and snapshots. The caller must know the group no
// longer counts this replica (its removal from the configuration has committed); the
// node may later be given the group again and starts it empty.
func (h *Host) Remove(id uint32) error {
	h.mu.Lock()
	g := h.groups[id]
	if g == nil {
		g = h.stuck[id]
	}
	delete(h.groups, id)
	delete(h.stuck, id)
	h.mu.Unlock()
	if g == nil {
		return nil
	}
	if err := g.Stop(); err != nil {
		if errors.Is(err, ErrStopTimeout) {
			h.mu.Lock()
			if h.stuck == nil {
				h.stuck = map[uint32]*Group{}
			}
			h.stuck[id] = g
			h.mu.Unlock()
		}
		return fmt.Errorf("stop group %d: %w", id, err)
	}
	h.gate.RLock()
	defer h.gate.RUnlock()
	// The applied index goes first, as in fsm.Restore: a crash after it leaves data
	// that claims nothing, never an applied index over data that is gone.
	if err := h.db.Update(func(txn *badger.Txn) error { return txn.Delete(appliedKey(id)) }); err != nil {
		return fmt.Errorf("clear group %d's applied index: %w", id, err)
	}
	if err := g.sm.Clear(h.db); err != nil {
		return fmt.Errorf("clear group %d: %w", id, err)
	}
	return os.RemoveAll(GroupDir(h.cfg.DataDir, id))
}

// Close stops every replica and closes the DB. A replica whose Raft did not stop in
// time (ErrStopTimeout) may still apply entries, so the DB is then left open for the
// process to exit over, as after a crash.
func (h *Host) Close() error {
	var (
		wg       sync.WaitGroup
		timedOut atomic.Bool
	)
	for _, g := range h.Groups() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Stop(); err != nil {
				h.cfg.Log.Warn("stopping group", "group", g.id, "err", err)
				if errors.Is(err, ErrStopTimeout) {
					timedOut.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	h.gc.close()
	h.disk.Stop()
	if timedOut.Load() {
		return ErrStopTimeout
	}
	return h.db.Close()
}
