package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Tuning of one group replica. Zero values take the defaults noted.
type Tuning struct {
	SnapshotThreshold uint64        // entries between snapshots (10,000)
	TrailingLogs      uint64        // entries kept after a snapshot (10,240)
	SnapshotInterval  time.Duration // how often the threshold is checked (10s)
	// HeartbeatTimeout and ElectionTimeout: 500 ms each (hashicorp/raft's default is
	// 1 s). A failover took 2.7 s at the median with 1 s; with 500 ms it takes 1.0-1.3
	// s (e2e TestFailoverTime), and 5 minutes of 64 bench clients still held no
	// election (scripts/bench-elections.sh 300 64). The leader lease is as long.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// StuckTransferAfter: how long a leader's writes may all be refused for a
	// leadership transfer before its Raft is restarted (transferwatch.go): 4 election
	// timeouts, and at least 10 s. A transfer to a follower hashicorp/raft is still
	// sending a snapshot to holds the flag until the snapshot is sent; at 2 s a rejoined
	// node's catch-up made a healthy cluster restart a leader and answer writes in
	// flight "outcome unknown".
	StuckTransferAfter time.Duration
	MaxInFlight        int          // proposals in flight per group (1: bigger batches measured faster)
	LogStore           LogStoreKind // log store of a new replica (wal); an existing one keeps its kind
	RaftLogLevel       hclog.Level  // raft's own log floor (Warn)
}

func (t Tuning) withDefaults() Tuning {
	if t.SnapshotThreshold == 0 {
		t.SnapshotThreshold = 10000
	}
	if t.TrailingLogs == 0 {
		t.TrailingLogs = 10240
	}
	if t.SnapshotInterval == 0 {
		t.SnapshotInterval = 10 * time.Second
	}
	if t.HeartbeatTimeout == 0 {
		t.HeartbeatTimeout = 500 * time.Millisecond
	}
	if t.ElectionTimeout == 0 {
		t.ElectionTimeout = 500 * time.Millisecond
	}
	if t.StuckTransferAfter == 0 {
		t.StuckTransferAfter = max(4*t.ElectionTimeout, 10*time.Second)
	}
	if t.MaxInFlight == 0 {
		t.MaxInFlight = 1
	}
	if t.LogStore == "" {
		t.LogStore = LogStoreWAL
	}
	if t.RaftLogLevel == hclog.NoLevel {
		t.RaftLogLevel = hclog.Warn
	}
	return t
}

// GroupConfig describes one replica to start.
type GroupConfig struct {
	ID     uint32
	NodeID string
	Dir    string // this replica's own directory: raft.db (or wal/) and snapshots/
	DB     *badger.DB
	Mux    *Mux
	SM     StateMachine
	Log    *slog.Logger
	Tuning Tuning
	// Disk, when set, makes the replica refuse to append while the disk is below half
	// its reserve (see guardedStore).
	Disk *DiskGuard
	// WriteGate, when set, is held for reading while the state machine writes to DB
	// (see Host.gate).
	WriteGate *sync.RWMutex
	// Bootstrap, when set and the replica has no Raft state yet, starts the group with
	// this configuration. Only the replica the placement table names does it.
	Bootstrap *raft.Configuration
	// Seed, when set with Bootstrap, is a seed file (seed.go): a replica with no Raft
	// state yet starts from it instead of an empty log.
	Seed string
}

// Group is one running replica of a Raft group on this node.
type Group struct {
	id     uint32
	nodeID string
	// cur is the running hashicorp/raft instance and its transport; a restart
	// (transferwatch.go) replaces it, everything else outlives it.
	cur     atomic.Pointer[instance]
	fsm     *fsm
	sm      StateMachine
	store   logStore
	kind    LogStoreKind
	configs *configTracker
	// What a new instance is started from: the same stores, state machine and config.
	rc    raft.Config
	logs  raft.LogStore
	snaps raft.SnapshotStore
	mux   *Mux
	hl    hclog.Logger
	watch *transferWatch
	// life serialises Stop and restarts; restarting is set while one runs, and
	// restarts counts those done (transferwatch.go).
	life       sync.Mutex
	restarting atomic.Bool
	restarts   atomic.Uint64
	// elections counts the elections this replica started (Elections).
	elections *electionCounter
	batch     *batcher
	reads     *readIndex
	hold      writeHold // HoldWrites
	stopped   chan struct{}
	// Stop's state: the stores close once.
	stopOnce, closeOnce sync.Once
	closeErr            error
	log                 *slog.Logger
}

// StartGroup opens the replica's stores and starts its Raft instance.
func StartGroup(cfg GroupConfig) (*Group, error) {
	t := cfg.Tuning.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	hl := NewHCLogger(cfg.Log.With("group", cfg.ID), t.RaftLogLevel)
	if _, err := removePartialSnapshots(cfg.Dir, cfg.Log.With("group", cfg.ID)); err != nil {
		return nil, fmt.Errorf("group %d: remove partial snapshots: %w", cfg.ID, err)
	}
	store, storeKind, err := openLogStore(t.LogStore, cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("group %d log store: %w", cfg.ID, err)
	}
	if cfg.Disk != nil {
		store = &guardedStore{logStore: store, disk: cfg.Disk}
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("group %d snapshot store: %w", cfg.ID, err)
	}
	if cfg.Seed != "" && cfg.Bootstrap != nil {
		if err := seedGroup(cfg.Seed, store, store, fileSnaps, *cfg.Bootstrap); err != nil {
			store.Close()
			return nil, fmt.Errorf("group %d: start from seed: %w", cfg.ID, err)
		}
	}
	configs, err := trackConfigurations(store, fileSnaps)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("group %d configuration index: %w", cfg.ID, err)
	}
	snaps := &configTrackingSnapshots{SnapshotStore: fileSnaps, cfg: configs}
	f, err := newFSM(cfg.ID, cfg.DB, cfg.SM, cfg.Log)
	if err != nil {
		store.Close()
		return nil, err
	}
	f.gate, f.disk = cfg.WriteGate, cfg.Disk
	if err := restoreIfBehind(f, snaps); err != nil {
		store.Close()
		return nil, err
	}
	logs, err := raft.NewLogCache(512, &configTrackingLog{LogStore: store, cfg: configs})
	if err != nil {
		store.Close()
		return nil, err
	}
	acks := newFreshAcks()
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hl
	rc.SnapshotThreshold = t.SnapshotThreshold
	rc.TrailingLogs = t.TrailingLogs
	rc.SnapshotInterval = t.SnapshotInterval
	rc.HeartbeatTimeout = t.HeartbeatTimeout
	rc.ElectionTimeout = t.ElectionTimeout
	// A leader steps down when it has not heard from a quorum for the lease. At half
	// the heartbeat timeout (hashicorp/raft's ratio), 250 ms, a list storm's CPU
	// starvation on 2 cores made leaders step down ("failed to contact quorum", gaps
	// of 310-395 ms) where no follower had timed out. Reads do not rely on the lease
	// (readindex.go confirms leadership with a fresh quorum), so it can be the whole
	// heartbeat timeout, the most hashicorp/raft allows.
	rc.LeaderLeaseTimeout = t.HeartbeatTimeout
	rc.MaxAppendEntries = 256
	// ringkv's state machine is persistent and restores itself (restoreIfBehind);
	// letting Raft restore the snapshot on every start would rewrite the whole group.
	rc.NoSnapshotRestoreOnStart = true
	g := &Group{
		id: cfg.ID, nodeID: cfg.NodeID, fsm: f, sm: cfg.SM, store: store, kind: storeKind, configs: configs,
		rc: *rc, logs: logs, snaps: snaps, mux: cfg.Mux, hl: hl,
		watch:   newTransferWatch(t.StuckTransferAfter),
		stopped: make(chan struct{}), log: cfg.Log,
	}
	g.reads = &readIndex{r: currentRaft{g}, self: rc.LocalID, acks: acks}
	inst, err := g.startInstance()
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("group %d: %w", cfg.ID, err)
	}
	g.cur.Store(inst)
	r := inst.r
	g.batch = newBatcher(currentRaft{g}, t.MaxInFlight)
	g.elections = watchElections(r, g.stopped)
	if cfg.Bootstrap != nil {
		has, err := raft.HasExistingState(logs, store, snaps)
		if err != nil {
			g.Stop()
			return nil, err
		}
		if !has {
			if err := r.BootstrapCluster(*cfg.Bootstrap).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				g.Stop()
				return nil, fmt.Errorf("bootstrap group %d: %w", cfg.ID, err)
			}
		}
	}
	return g, nil
}

// restoreIfBehind loads the newest snapshot when the state machine is behind it: Raft
// only replays entries after its snapshot, so without this the entries between the
// state machine's applied index and the snapshot would be skipped.
func restoreIfBehind(f *fsm, snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	meta := list[0]
	if f.Applied() >= meta.Index {
		return nil
	}
	_, rc, err := snaps.Open(meta.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", meta.ID, err)
	}
	return f.restore(rc)
}

// ID is the group id.
func (g *Group) ID() uint32 { return g.id }

// NodeID is the id of the node running this replica.
func (g *Group) NodeID() string { return g.nodeID }

// Raft exposes the running Raft instance for membership changes and status. A
// restart (transferwatch.go) replaces it: look it up for each use, not once.
func (g *Group) Raft() *raft.Raft { return g.cur.Load().r }

// SnapshotRestores is how many snapshots the replica loaded since it started.
func (g *Group) SnapshotRestores() uint64 { return g.fsm.restores.Load() }

// LogStoreKind is the log store this replica keeps its Raft log in.
func (g *Group) LogStoreKind() LogStoreKind { return g.kind }

// SM is the replica's state machine.
func (g *Group) SM() StateMachine { return g.sm }

// Applied is the last index the state machine holds.
func (g *Group) Applied() uint64 { return g.fsm.Applied() }

// IsLeader says whether this replica believes it leads (not enough for reads).
func (g *Group) IsLeader() bool { return g.Raft().State() == raft.Leader }

// Leader returns the node id and Raft address of the leader this replica knows of.
func (g *Group) Leader() (string, string) {
	addr, id := g.Raft().LeaderWithID()
	return string(id), string(addr)
}

// GroupCommit is how many packed entries this replica proposed while it led, and how
// many writes they carried: writes/entries is the group commit's packing ratio.
func (g *Group) GroupCommit() (entries, writes uint64) {
	return g.batch.entries.Load(), g.batch.writes.Load()
}

// Propose replicates one command and returns its answer from the state machine.
func (g *Group) Propose(ctx context.Context, cmd []byte) (any, error) {
	select {
	case <-g.stopped:
		return nil, ErrStopped
	default:
	}
	for {
		if g.Raft().State() != raft.Leader {
			return nil, ErrNotLeader
		}
		if err := g.hold.wait(ctx); err != nil {
			return nil, err
		}
		resp, err := g.batch.propose(ctx, cmd)
		if !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return resp, err
		}
		// This leader is handing its leadership off (leader balancing, a graceful
		// stop), and hashicorp/raft refused the entry: nothing was appended. Once the
		// transfer ends this replica either still leads (the transfer failed, e.g. to a
		// node that just stopped) and proposes again, or it does not and the caller
		// forwards to the new leader. A transfer ends within two election timeouts;
		// one that cannot end (hashicorp/raft#696) makes the transfer watch restart
		// this replica's Raft, and the next look finds it no longer leading.
		select {
		case <-ctx.Done():
			return nil, err
		case <-g.stopped:
			return nil, ErrStopped
		case <-time.After(transferPoll):
		}
	}
}

// transferPoll is how often a proposal refused during a leadership transfer checks
// whether the transfer has ended.
const transferPoll = 20 * time.Millisecond

// LinearizableRead returns once the local state machine reflects every write
// acknowledged before the call; it returns the index the read is valid at.
func (g *Group) LinearizableRead(ctx context.Context) (uint64, error) {
	idx, err := g.reads.confirm(ctx.Done())
	if err != nil {
		return 0, err
	}
	if err := g.fsm.WaitApplied(ctx, idx, g.stopped); err != nil {
		return 0, err
	}
	return idx, nil
}

// WaitApplied waits until the state machine holds idx, or ctx ends (its error), or the
// replica stops (ErrStopped: stopped or removed from the node; it applies nothing more).
func (g *Group) WaitApplied(ctx context.Context, idx uint64) error {
	return g.fsm.WaitApplied(ctx, idx, g.stopped)
}

// GroupStatus is a snapshot of the replica's Raft state.
type GroupStatus struct {
	Group       uint32
	State       string
	Term        uint64
	CommitIndex uint64
	Applied     uint64
	LastIndex   uint64
	LastContact time.Duration // since the last leader contact; 0 on the leader
	Leader      string
	Servers     []raft.Server // the latest configuration
	ConfigIndex uint64        // its log index: committed once CommitIndex reaches it
}

// Status reports the replica's Raft state.
func (g *Group) Status() GroupStatus {
	leader, _ := g.Leader()
	r := g.Raft()
	st := GroupStatus{
		Group: g.id, State: r.State().String(), Term: r.CurrentTerm(),
		CommitIndex: r.CommitIndex(), Applied: g.fsm.Applied(), LastIndex: r.LastIndex(),
		Leader: leader,
	}
	if r.State() != raft.Leader {
		if lc := r.LastContact(); !lc.IsZero() {
			st.LastContact = time.Since(lc)
		} else {
			st.LastContact = -1
		}
	}
	// Not the future's Index(): hashicorp/raft v1.7.3 leaves it 0 (configTracker).
	if f := r.GetConfiguration(); f.Error() == nil {
		st.Servers = f.Configuration().Servers
	}
	st.ConfigIndex = g.configs.Index()
	return st
}

// LogEntries is the number of entries in the replica's log store (what snapshots and
// compaction keep bounded).
func (g *Group) LogEntries() uint64 {
	first, err1 := g.store.FirstIndex()
	last, err2 := g.store.LastIndex()
	if err1 != nil || err2 != nil || last == 0 || last < first {
		return 0
	}
	return last - first + 1
}

// stopTimeout bounds how long Stop waits for hashicorp/raft's shutdown.
const stopTimeout = 10 * time.Second

// ErrStopTimeout: the replica's Raft instance did not shut down in time. Its stores
// are left open (closing them under a running Raft would corrupt them); the process
// is expected to exit, and the next start recovers as after a crash.
var ErrStopTimeout = errors.New("raftgroup: raft shutdown timed out")

// Stop shuts the replica down; its files stay. The transport is closed first
// (instance.shutdown). The wait is bounded: after ErrStopTimeout, Stop may be called
// again and waits for the same shutdown.
func (g *Group) Stop() error {
	g.stopOnce.Do(func() {
		// A restart in progress finishes first, so the instance stopped is the last.
		g.life.Lock()
		close(g.stopped)
		g.life.Unlock()
	})
	inst := g.cur.Load()
	select {
	case <-inst.shutdown():
	case <-time.After(stopTimeout):
		g.log.Error("raft did not shut down in time; leaving its stores open", "group", g.id, "waited", stopTimeout)
		return ErrStopTimeout
	}
	g.closeOnce.Do(func() {
		g.batch.close()
		g.closeErr = g.store.Close()
	})
	if inst.err != nil {
		return inst.err
	}
	return g.closeErr
}

// GroupDir is where replica id keeps its files under a node's data dir.
func GroupDir(dataDir string, id uint32) string {
	return filepath.Join(dataDir, "groups", strconv.FormatUint(uint64(id), 10))
}
