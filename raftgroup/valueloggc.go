package raftgroup

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// valueLogFileSize is the size at which Badger starts a new value-log file. Value-log
// GC can only reclaim a file that is no longer the one being written, so with Badger's
// 1 GiB default a node overwriting and deleting large values never got space back
// until it had written a gigabyte; 16 MiB files bound what a node holds as dead values
// in its newest file, and keep the file count (one descriptor and one mapping each)
// near 64 per GiB of large values.
const valueLogFileSize = 16 << 20

// GCTuning says how often a node's value-log GC runs and how much one round may do.
// Zero values take the defaults noted.
type GCTuning struct {
	Interval     time.Duration // between rounds (1m); negative disables GC
	DiscardRatio float64       // a file is rewritten when this share of it is dead (0.5, Badger's advice)
	MaxRewrites  int           // value-log files rewritten per round at most (8)
	// FlushEvery is the least time between two forced memtable flushes (10m); see
	// valueLogGC.flush. Zero takes the default; negative flushes whenever it may help.
	FlushEvery time.Duration
}

func (t GCTuning) withDefaults() GCTuning {
	if t.Interval == 0 {
		t.Interval = time.Minute
	}
	if t.DiscardRatio == 0 {
		t.DiscardRatio = 0.5
	}
	if t.MaxRewrites == 0 {
		t.MaxRewrites = 8
	}
	if t.FlushEvery == 0 {
		t.FlushEvery = 10 * time.Minute
	}
	return t
}

// GCStats counts what value-log GC did since the node started.
type GCStats struct {
	Rounds         uint64        // rounds run
	Rewrites       uint64        // value-log files rewritten (and so deleted)
	Flushes        uint64        // forced memtable flushes
	ReclaimedBytes uint64        // the Badger dir's shrinkage summed over rounds that shrank it
	LastRound      time.Duration // how long the last round took
}

// gcFlushKey is a key no group or the placement table ever uses (theirs start with a
// letter): written and then dropped to make Badger flush its memtables.
var gcFlushKey = []byte{0xff, 'g', 'c'}

// valueLogGC reclaims the space of overwritten and deleted large values (those over
// the value threshold live in Badger's value log, not its LSM tree). Badger only knows
// which value-log bytes are dead from its discard statistics, which its LSM compactions
// collect; a node whose memtable holds only small pointers (large values overwritten a
// few hundred times) never flushes it, so nothing is compacted and RunValueLogGC finds
// nothing to do. When a round finds nothing and the value log spans several files, it
// forces a flush and an L0 compaction through DropPrefix of a sentinel key: DropPrefix
// blocks every write of the DB while it runs, so the node's state-machine writers hold
// gate's read side and the flush takes its write side.
type valueLogGC struct {
	db    *badger.DB
	dir   string
	gate  *sync.RWMutex
	t     GCTuning
	log   *slog.Logger
	stats struct {
		sync.Mutex
		GCStats
	}
	lastFlush time.Time
	stop      chan struct{}
	done      chan struct{}
}

func newValueLogGC(db *badger.DB, dir string, gate *sync.RWMutex, t GCTuning, log *slog.Logger) *valueLogGC {
	return &valueLogGC{db: db, dir: dir, gate: gate, t: t.withDefaults(), log: log, lastFlush: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
}

func (g *valueLogGC) start() {
	if g.t.Interval < 0 {
		close(g.done)
		return
	}
	go func() {
		defer close(g.done)
		tick := time.NewTicker(g.t.Interval)
		defer tick.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-tick.C:
				g.round()
			}
		}
	}()
}

func (g *valueLogGC) close() {
	close(g.stop)
	<-g.done
}

// round rewrites up to MaxRewrites value-log files whose dead share passes the ratio,
// forcing a flush first when nothing qualifies but dead values may hide in memtables.
func (g *valueLogGC) round() {
	began := time.Now()
	before := dirBytes(g.dir)
	rewrites := g.rewrite()
	flushed := false
	if rewrites == 0 && g.valueLogFiles() >= 2 && (g.t.FlushEvery < 0 || time.Since(g.lastFlush) >= g.t.FlushEvery) {
		if err := g.flush(); err != nil {
			g.log.Warn("value-log GC: forcing a memtable flush failed", "err", err)
		} else {
			flushed = true
			rewrites = g.rewrite()
		}
	}
	after := dirBytes(g.dir)
	took := time.Since(began)
	g.stats.Lock()
	g.stats.Rounds++
	g.stats.Rewrites += uint64(rewrites)
	if flushed {
		g.stats.Flushes++
	}
	if after < before {
		g.stats.ReclaimedBytes += uint64(before - after)
	}
	g.stats.LastRound = took
	g.stats.Unlock()
	if rewrites > 0 {
		g.log.Info("value-log GC", "files_rewritten", rewrites, "flushed", flushed, "badger_bytes_before", before, "badger_bytes_after", after, "took", took)
	}
}

// rewrite calls RunValueLogGC until it finds nothing more or MaxRewrites is reached.
// Each call holds the write gate: badger v4.9.6's rewrite reads the memtable's
// maxVersion (DB.MaxVersion, for its fix of deleted keys coming back, dgraph-io/badger
// #2310) without the lock its writer uses, a data race the race detector caught in
// TestValueLogGCGivesSpaceBack. With the gate held, no write of ours is in Badger.
func (g *valueLogGC) rewrite() int {
	n := 0
	for ; n < g.t.MaxRewrites; n++ {
		select {
		case <-g.stop:
			return n
		default:
		}
		if !g.lockGate() {
			return n
		}
		err := g.db.RunValueLogGC(g.t.DiscardRatio)
		g.gate.Unlock()
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				g.log.Warn("value-log GC", "err", err)
			}
			return n
		}
	}
	return n
}

// flush makes Badger write its memtables out and compact level 0, which records the
// dead value-log bytes of every overwritten or deleted key in them.
//
// The gate's write side is taken only when it is free at once: a writer that holds the
// read side for long (a snapshot restore, a replica's removal) would otherwise keep a
// waiting Lock pending, and a pending Lock blocks every new reader (sync.RWMutex), so
// every group's applies would stall behind it. A busy gate skips the flush this round.
func (g *valueLogGC) flush() error {
	if !g.lockGate() {
		return errGateBusy
	}
	defer g.gate.Unlock()
	g.lastFlush = time.Now()
	if err := g.db.Update(func(txn *badger.Txn) error { return txn.Set(gcFlushKey, nil) }); err != nil {
		return err
	}
	return g.db.DropPrefix(gcFlushKey)
}

// lockGate takes the gate's write side if it comes free within a second, between the
// applies that hold its read side briefly and often; false when it did not.
func (g *valueLogGC) lockGate() bool {
	for try := 0; try < 200; try++ {
		if g.gate.TryLock() {
			return true
		}
		time.Sleep(5 * time.Millisecond) // between applies; no event marks a free gate
	}
	return false
}

// errGateBusy: a Badger writer held the write gate; the forced flush waits a round.
var errGateBusy = errors.New("a long Badger write is running; flush skipped this round")

func (g *valueLogGC) valueLogFiles() int {
	m, _ := filepath.Glob(filepath.Join(g.dir, "*.vlog"))
	return len(m)
}

func (g *valueLogGC) snapshot() GCStats {
	g.stats.Lock()
	defer g.stats.Unlock()
	return g.stats.GCStats
}
