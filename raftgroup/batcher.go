package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Sentinel errors of a group operation. ErrNotLeader means the command was certainly
// not applied; ErrOutcomeUnknown means it was proposed and may or may not be applied.
var (
	ErrNotLeader      = errors.New("raftgroup: not the group leader")
	ErrOutcomeUnknown = errors.New("raftgroup: outcome unknown")
	ErrStopped        = errors.New("raftgroup: group stopped")
)

// batcher is the group commit of a group leader: proposals that arrive while earlier
// ones are in flight are packed into one Raft entry, so one log fsync (and one
// replication round) commits many writes. At most maxInFlight entries are proposed and
// unanswered at a time; the bound is what makes the queue fill and batches grow.
type batcher struct {
	r         raftLeader
	in        chan *proposal
	slots     chan struct{}
	maxCmds   int
	maxBytes  int
	applyWait time.Duration
	stop      chan struct{}
	stopped   chan struct{}
	// entries and writes count the packed entries proposed and the writes in them:
	// writes/entries is what group commit achieves.
	entries, writes atomic.Uint64
	// handingOff counts the leadership transfers about to be made (an admin transfer,
	// leader balancing and a graceful stop may overlap); while any is, new proposals
	// are refused (errHandingOff) so the entries in flight can commit first.
	handingOff atomic.Int32
}

// errHandingOff refuses a proposal while the leader hands its leadership off. It is a
// transfer in progress to callers (Group.Propose waits it out): nothing was appended.
var errHandingOff = fmt.Errorf("%w: %w", ErrNotLeader, raft.ErrLeadershipTransferInProgress)

// quiesce refuses new proposals and waits until none is in flight (every entry
// proposed has committed or failed), or ctx ends. resume undoes it.
func (b *batcher) quiesce(ctx context.Context) error {
	b.handingOff.Add(1)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for len(b.slots) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// resume ends one quiesce (each quiesce is paired with one resume).
func (b *batcher) resume() { b.handingOff.Add(-1) }

type proposal struct {
	cmd  []byte
	done chan proposalResult
}

type proposalResult struct {
	resp any
	err  error
}

func newBatcher(r raftLeader, maxInFlight int) *batcher {
	b := &batcher{
		r:         r,
		in:        make(chan *proposal, 1024),
		slots:     make(chan struct{}, maxInFlight),
		maxCmds:   512,
		maxBytes:  2 << 20,
		applyWait: 10 * time.Second,
		stop:      make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	go b.loop()
	return b
}

// propose replicates cmd and returns the state machine's answer to it.
func (b *batcher) propose(ctx context.Context, cmd []byte) (any, error) {
	p := &proposal{cmd: cmd, done: make(chan proposalResult, 1)}
	select {
	case b.in <- p:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: queue full: %v", ErrNotLeader, ctx.Err())
	case <-b.stop:
		return nil, ErrStopped
	}
	select {
	case r := <-p.done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrOutcomeUnknown, ctx.Err())
	}
}

func (b *batcher) close() {
	close(b.stop)
	<-b.stopped
}

func (b *batcher) loop() {
	defer close(b.stopped)
	for {
		var first *proposal
		select {
		case first = <-b.in:
		case <-b.stop:
			b.failQueued(ErrStopped)
			return
		}
		select {
		case b.slots <- struct{}{}:
		case <-b.stop:
			first.done <- proposalResult{err: ErrStopped}
			b.failQueued(ErrStopped)
			return
		}
		batch, size := []*proposal{first}, len(first.cmd)
	drain:
		for len(batch) < b.maxCmds && size < b.maxBytes {
			select {
			case p := <-b.in:
				batch = append(batch, p)
				size += len(p.cmd)
			default:
				break drain
			}
		}
		if b.handingOff.Load() > 0 {
			<-b.slots
			deliver(batch, nil, errHandingOff)
			continue
		}
		if b.r.State() != raft.Leader {
			<-b.slots
			deliver(batch, nil, ErrNotLeader)
			continue
		}
		b.entries.Add(1)
		b.writes.Add(uint64(len(batch)))
		cmds := make([][]byte, len(batch))
		for i, p := range batch {
			cmds[i] = p.cmd
		}
		fut := b.r.Apply(encodeBatch(cmds), b.applyWait)
		go func() {
			err := fut.Error()
			<-b.slots
			if err != nil {
				deliver(batch, nil, classifyApplyError(err))
				return
			}
			resp := fut.Response()
			if e, ok := resp.(error); ok {
				deliver(batch, nil, e)
				return
			}
			deliver(batch, resp.([]any), nil)
		}()
	}
}

func (b *batcher) failQueued(err error) {
	for {
		select {
		case p := <-b.in:
			p.done <- proposalResult{err: err}
		default:
			return
		}
	}
}

func deliver(batch []*proposal, resps []any, err error) {
	for i, p := range batch {
		if err != nil {
			p.done <- proposalResult{err: err}
			continue
		}
		p.done <- proposalResult{resp: resps[i]}
	}
}

// classifyApplyError sorts hashicorp/raft's apply errors into "certainly not applied"
// and "outcome unknown" (the DESIGN pitfall: ErrLeadershipLost is not a failure).
func classifyApplyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	default: // ErrLeadershipLost, ErrRaftShutdown, ErrAbortedByRestore, timeouts
		return fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
	}
}
