package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// writeHold holds a group's new proposals back while a consistent backup takes its
// cut (HoldWrites). Proposals already past it go on; it releases itself after a bound,
// so a backup that dies half-way stalls writes for that long at most.
type writeHold struct {
	mu   sync.Mutex
	held chan struct{} // closed when released; nil when no hold
	// stillLeads, when set (tests), replaces the check that the replica still leads
	// in the hold's term once the hold is raised.
	stillLeads func(term uint64) bool
	// The hold budget: writes are held at most MaxWriteHold in all per holdWindow.
	window time.Time     // start of the current window
	spent  time.Duration // held in it so far
}

// holdWindow is the period the hold budget (MaxWriteHold) is counted over: whoever can
// call HoldWrites again and again stalls the group's writes for at most that share of
// the time (the endpoints that call it are not authenticated yet; a consistent
// backup's cut holds a group for milliseconds).
const holdWindow = time.Minute

// ErrHoldBudget: the group's writes were held for MaxWriteHold in this holdWindow
// already.
var ErrHoldBudget = errors.New("raftgroup: writes were held for long enough in the last minute")

// wait blocks while writes are held, until ctx ends.
func (h *writeHold) wait(ctx context.Context) error {
	h.mu.Lock()
	ch := h.held
	h.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: writes held for a consistent backup: %w", ErrNotLeader, ctx.Err())
	}
}

// ErrHeld: writes are already held (another consistent backup is taking its cut).
var ErrHeld = errors.New("raftgroup: writes already held")

// MaxWriteHold bounds how long HoldWrites holds writes.
const MaxWriteHold = 5 * time.Second

// HoldWrites makes new writes to the group wait, on this replica, which must lead,
// until release is called or MaxWriteHold passes (less what holds took in this
// holdWindow: ErrHoldBudget once they took it all); it returns the term it leads in.
// release reports whether the hold was still in place when it was called (false: it
// had already ended, by the time bound or an earlier release).
// Writes proposed before it are not waited for. Only the leader proposes, so while
// the leader's term is unchanged no write enters the group's log that was not past
// the hold when it was raised: a read view opened in that same term
// (OpenReadViewInTerm) is a cut no write that began after the hold is in.
func (g *Group) HoldWrites() (term uint64, release func() bool, err error) {
	if !g.IsLeader() {
		return 0, nil, ErrNotLeader
	}
	term = g.Raft().CurrentTerm()
	ch := make(chan struct{})
	g.hold.mu.Lock()
	if g.hold.held != nil {
		g.hold.mu.Unlock()
		return 0, nil, ErrHeld
	}
	raised := time.Now()
	if raised.Sub(g.hold.window) >= holdWindow {
		g.hold.window, g.hold.spent = raised, 0
	}
	if g.hold.spent >= MaxWriteHold {
		g.hold.mu.Unlock()
		return 0, nil, ErrHoldBudget
	}
	remaining := MaxWriteHold - g.hold.spent // the most this hold may last
	g.hold.held = ch
	// Unlocked before anything below: release takes the lock (it once ran with the
	// lock held here, and a leadership lost between the checks hung the group).
	g.hold.mu.Unlock()
	var once sync.Once
	// A local, not the named result: the timer below must not see the nil a failed
	// return leaves in release (a timer firing after one panicked the node).
	rel := func() bool {
		first := false
		once.Do(func() {
			first = true
			g.hold.mu.Lock()
			if g.hold.held == ch {
				g.hold.held = nil
			}
			g.hold.spent += min(time.Since(raised), remaining)
			g.hold.mu.Unlock()
			close(ch)
		})
		return first
	}
	time.AfterFunc(remaining, func() { rel() })
	stillLeads := func(term uint64) bool { return g.IsLeader() && g.Raft().CurrentTerm() == term }
	if g.hold.stillLeads != nil {
		stillLeads = g.hold.stillLeads
	}
	if !stillLeads(term) {
		rel()
		return 0, nil, ErrNotLeader
	}
	return term, rel, nil
}

// OpenReadViewInTerm is OpenReadView that fails with ErrNotLeader unless this replica
// still leads in term (as HoldWrites returned it), before and after the read index.
func (g *Group) OpenReadViewInTerm(ctx context.Context, term uint64) (*ReadView, error) {
	if g.Raft().CurrentTerm() != term {
		return nil, fmt.Errorf("%w: the term changed since writes were held", ErrNotLeader)
	}
	v, err := g.OpenReadView(ctx)
	if err != nil {
		return nil, err
	}
	if g.Raft().CurrentTerm() != term {
		v.Close()
		return nil, fmt.Errorf("%w: the term changed since writes were held", ErrNotLeader)
	}
	return v, nil
}
