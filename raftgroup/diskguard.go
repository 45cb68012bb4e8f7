package raftgroup

import (
	"errors"
	"fmt"
	"github.com/dustin/go-humanize"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrDiskFull is returned when a write would take the data dir's filesystem below its
// reserve: the write was refused before anything was proposed or stored.
var ErrDiskFull = errors.New("disk full")

// DefaultDiskReserve is the free space a node keeps back by default (--disk-reserve-bytes).
// It must cover what Badger and the Raft logs still write after client writes stop, or
// between two polls: a raft-wal segment per replica (8 MiB, preallocated when the one
// before fills), a memtable flush (an L0 table of up to 16 MiB), the touched pages of
// the mmapped memtable and value-log files (Badger maps them sparse, and a store into a
// page the filesystem cannot back is a SIGBUS, not an error), the meta group's entries,
// and a small compaction. Half of it is the floor below which the logs stop appending.
const DefaultDiskReserve = 128 << 20

// DiskGuard keeps the data dir's filesystem from filling up: it polls the free space
// (statfs) and refuses writes that would take it below the reserve, like etcd's NOSPACE
// alarm, so the node stays up and serves reads on a full disk, and takes writes again by
// itself once space is freed.
type DiskGuard struct {
	path     string
	reserve  uint64
	interval time.Duration
	statfs   func(path string) (free, total uint64, err error)

	free  atomic.Uint64
	total atomic.Uint64
	// pending: bytes admitted that the last poll may not have seen on disk yet: those
	// admitted since it, and those admitted in the interval before it (a write admitted
	// just before a poll is applied and written after it). Forgetting those at each poll
	// let writes run 12-35 MiB past a 24 MiB reserve when they came fast.
	pending atomic.Int64
	recent  atomic.Int64 // bytes admitted since the last poll
	full    atomic.Bool
	// refused is the size of the last write refused, 0 once one is admitted. A write
	// is refused when it would take the free space under the reserve, so with the
	// free space less than one write above it every write of that size is refused: a
	// poll then counts the disk full (free < reserve + refused), so a node never keeps
	// refusing writes while saying its disk is fine.
	refused atomic.Int64

	mu      sync.Mutex
	lastErr error
	stop    chan struct{}
	done    chan struct{}
}

// NewDiskGuard polls the filesystem holding path once and returns a guard that keeps
// reserve bytes (0 disables refusing) free; Start polls it every interval (100 ms when
// 0: a statfs costs microseconds, and at 1 s fast writes of 256 KiB on a quiet machine
// ran a tmpfs out past a 40 MiB reserve before the next poll: SIGBUS in Badger).
func NewDiskGuard(path string, reserve uint64, interval time.Duration) (*DiskGuard, error) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	d := &DiskGuard{path: path, reserve: reserve, interval: interval, statfs: statfs}
	if err := d.Poll(); err != nil {
		return nil, err
	}
	return d, nil
}

func statfs(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// Poll reads the free space now.
func (d *DiskGuard) Poll() error {
	free, total, err := d.statfs(d.path)
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
	if err != nil {
		return err
	}
	d.free.Store(free)
	d.total.Store(total)
	d.pending.Store(d.recent.Swap(0))
	d.full.Store(d.reserve > 0 && free < d.reserve+uint64(d.refused.Load()))
	return nil
}

// Start polls every interval until Stop.
func (d *DiskGuard) Start() {
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.done)
		t := time.NewTicker(d.interval)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				_ = d.Poll() // kept in lastErr; the previous figures stand meanwhile
			}
		}
	}()
}

// Stop ends the polling Start began.
func (d *DiskGuard) Stop() {
	if d.stop != nil {
		close(d.stop)
		<-d.done
		d.stop = nil
	}
}

// Admit reserves n bytes for a write about to be proposed, or returns ErrDiskFull
// (wrapped with the figures) when the free space, less what was admitted since the
// last poll and n, would fall below the reserve.
func (d *DiskGuard) Admit(n int64) error {
	return d.admit(n, d.reserve, "")
}

// AdmitDelete is Admit for a delete, held to half the reserve: as with etcd's NOSPACE
// alarm, deletes go on when the disk is full (a tombstone is small, and deleting is how
// an operator makes the value-log GC give space back).
func (d *DiskGuard) AdmitDelete(n int64) error {
	return d.admit(n, d.reserve/2, "half ")
}

func (d *DiskGuard) admit(n int64, limit uint64, of string) error {
	if d.reserve == 0 {
		return nil
	}
	// Check and reserve in one step (compare-and-swap): concurrent writes that each
	// checked the same pending figure could all pass and overshoot the reserve.
	for {
		pending := d.pending.Load()
		left := max(int64(d.free.Load())-pending, 0)
		if left-n < int64(limit) {
			d.refused.Store(n)
			return fmt.Errorf("%w: %s free on the data dir's filesystem, below %sthe %s reserve (--disk-reserve-bytes); writes resume once space is freed",
				ErrDiskFull, FormatBytes(uint64(left)), of, FormatBytes(d.reserve))
		}
		if d.pending.CompareAndSwap(pending, pending+n) {
			d.refused.Store(0)
			d.recent.Add(n)
			return nil
		}
	}
}

// belowFloor says whether the free space is under half the reserve, where the log
// store stops appending (see guardedStore).
func (d *DiskGuard) belowFloor() bool {
	return d.reserve > 0 && d.free.Load() < d.reserve/2
}

// DiskState is the guard's view at its last poll.
type DiskState struct {
	FreeBytes    uint64 // available to the node on the data dir's filesystem
	TotalBytes   uint64 // the filesystem's size
	ReserveBytes uint64 // kept free: writes are refused below it
	Full         bool   // free < reserve, or less than the last refused write above it

	Err error // the last poll's error, if it failed
}

// State reports the guard's view at its last poll.
func (d *DiskGuard) State() DiskState {
	d.mu.Lock()
	err := d.lastErr
	d.mu.Unlock()
	return DiskState{FreeBytes: d.free.Load(), TotalBytes: d.total.Load(), ReserveBytes: d.reserve, Full: d.full.Load(), Err: err}
}

// FormatBytes renders n in binary units (16 MiB) for messages, with go-humanize, as
// the dashboard does.
func FormatBytes(n uint64) string { return humanize.IBytes(n) }
