package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/raftgroup"
)

// A consistent backup (`ringkv backup --consistent`) is one cut of every group at a
// single moment: every write acknowledged before the backup began is in it, and no
// write that began after the cut was taken is, on any group; of two writes where the
// second began after the first was acknowledged, the backup never holds the second
// without the first.
//
// It is taken in two phases across the nodes that lead the groups, run by the node
// assembling the backup:
//
//  1. hold: every leader holds new writes back on the groups it leads (raftgroup
//     HoldWrites; writes already proposed go on), noting its term;
//  2. open, once every group is held: every leader confirms a read index in the same
//     term (so it led throughout, and nothing entered the log that had not passed the
//     hold), opens a read view, and releases the hold.
//
// A write in a view passed its group's hold before phase 1 ended; a write acknowledged
// before that is below every group's read index of phase 2, so it is in the view of its
// group. What it costs writers: new writes to every group wait from the moment their
// group is held until its leader has opened its view, about two round trips between
// the nodes plus one read-index round (a heartbeat); the log says how long
// ("writes held"). A hold releases itself after raftgroup.MaxWriteHold, so a backup that
// dies mid-cut stalls writes for 5 s at most. A leader change during the cut fails it
// (503; retry). The views are then streamed like a per-group backup's, after the hold.

// cutTTL is how long a node keeps the read views of a cut after the last of its
// sections was fetched (an idle limit: a backup streaming for longer keeps them). A
// cut is dropped at once when its last view is taken, and when it was not opened
// within cutOpenWithin of its hold: a coordinator gone, or a caller (the endpoints are
// not authenticated yet) holding the node's one cut to keep consistent backups out.
const (
	cutTTL        = 2 * time.Minute
	cutOpenWithin = raftgroup.MaxWriteHold + time.Second
)

// maxCuts bounds the cuts a node keeps at once. Each holds a read view (pinning
// Badger's old versions) per group; a consistent backup needs one, and a second would
// find the groups held anyway (raftgroup.ErrHeld).
const maxCuts = 1

// cuts is a node's part of the consistent backups in progress.
type cuts struct {
	mu   sync.Mutex
	byID map[string]*cut
}

type cut struct {
	groups map[uint32]*heldGroup
	timer  *time.Timer
}

type heldGroup struct {
	term    uint64
	release func() bool // false: the hold had already ended (raftgroup.MaxWriteHold)
	view    *raftgroup.ReadView
	held    time.Time
}

// drop releases whatever cut id still holds on this node.
func (c *cuts) drop(id string) {
	c.mu.Lock()
	ct := c.byID[id]
	delete(c.byID, id)
	var held []*heldGroup
	if ct != nil {
		for _, h := range ct.groups { // under c.mu: HoldCut adds to it concurrently
			held = append(held, h)
		}
	}
	c.mu.Unlock()
	if ct == nil {
		return
	}
	ct.timer.Stop()
	for _, h := range held {
		if h.release != nil {
			h.release()
		}
		if h.view != nil {
			h.view.Close()
		}
	}
}

// HoldCut implements httpapi.Backup: phase 1 on this node, for the groups it leads.
func (b backupSource) HoldCut(ctx context.Context, id string, groups []uint32) error {
	c := b.node.cuts
	ct := &cut{groups: map[uint32]*heldGroup{}}
	c.mu.Lock()
	if c.byID == nil {
		c.byID = map[string]*cut{}
	}
	if c.byID[id] != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: cut %s is already held here", httpapi.ErrConflict, id)
	}
	if len(c.byID) >= maxCuts {
		c.mu.Unlock()
		return fmt.Errorf("%w: another consistent backup's cut is held on this node; retry once it is done", httpapi.ErrUnavailable)
	}
	c.byID[id] = ct
	ct.timer = time.AfterFunc(cutOpenWithin, func() { c.drop(id) })
	c.mu.Unlock()
	for _, gid := range groups {
		g := b.node.host.Group(gid)
		if g == nil {
			c.drop(id)
			return &httpapi.NotLeaderError{}
		}
		term, release, err := g.HoldWrites()
		if err != nil {
			c.drop(id)
			if errors.Is(err, raftgroup.ErrHeld) {
				return fmt.Errorf("%w: group %d: another consistent backup is taking its cut", httpapi.ErrUnavailable, gid)
			}
			if errors.Is(err, raftgroup.ErrHoldBudget) {
				return fmt.Errorf("%w: group %d: its writes were held for %s in the last minute already; retry later",
					httpapi.ErrUnavailable, gid, raftgroup.MaxWriteHold)
			}
			return kvBackend{b.node}.groupError(g, err)
		}
		c.mu.Lock()
		ct.groups[gid] = &heldGroup{term: term, release: release, held: time.Now()}
		c.mu.Unlock()
	}
	return nil
}

// OpenCut implements httpapi.Backup: phase 2 on this node: a read view of every group
// it held, then the holds released; it answers each group's applied index.
func (b backupSource) OpenCut(ctx context.Context, id string) (map[uint32]uint64, error) {
	c := b.node.cuts
	c.mu.Lock()
	ct := c.byID[id]
	c.mu.Unlock()
	if ct == nil {
		return nil, fmt.Errorf("%w: no cut %s held here (expired?)", httpapi.ErrNotFound, id)
	}
	c.mu.Lock()
	held := make(map[uint32]*heldGroup, len(ct.groups))
	for gid, h := range ct.groups {
		held[gid] = h
	}
	c.mu.Unlock()
	// Each group's view is opened at once (a read-index round each), and its hold
	// released as soon as its own view is open.
	var (
		wg    sync.WaitGroup
		omu   sync.Mutex
		out   = map[uint32]uint64{}
		first error
	)
	for gid, h := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := b.node.host.Group(gid)
			var view *raftgroup.ReadView
			err := error(&httpapi.NotLeaderError{})
			if g != nil {
				view, err = g.OpenReadViewInTerm(ctx, h.term)
			}
			if !h.release() && err == nil {
				// The hold ended by its time bound before the view was open: writes that
				// began after the cut's first phase may be in it.
				view.Close()
				err = fmt.Errorf("%w: group %d: the cut took longer than the %s writes may be held", httpapi.ErrUnavailable, gid, raftgroup.MaxWriteHold)
			}
			omu.Lock()
			defer omu.Unlock()
			if err != nil {
				if first == nil {
					first = err
					if g != nil {
						first = kvBackend{b.node}.groupError(g, err)
					}
				}
				return
			}
			c.mu.Lock()
			if c.byID[id] != ct { // dropped meanwhile (expired): nobody would close it
				c.mu.Unlock()
				view.Close()
				return
			}
			h.view = view
			ct.timer.Reset(cutTTL) // opened: kept while its sections are fetched
			c.mu.Unlock()
			out[gid] = view.Applied
			b.node.log.Info("writes held for a consistent backup", "group", gid, "held", time.Since(h.held).Round(time.Microsecond), "cut", id)
		}()
	}
	wg.Wait()
	if first != nil {
		c.drop(id)
		return nil, first
	}
	return out, nil
}

// DropCut implements httpapi.Backup.
func (b backupSource) DropCut(id string) { b.node.cuts.drop(id) }

// takeView hands group gid's view of cut id to the caller (who closes it).
func (c *cuts) takeView(id string, gid uint32) (*raftgroup.ReadView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.byID[id]
	if ct == nil || ct.groups[gid] == nil || ct.groups[gid].view == nil {
		return nil, fmt.Errorf("%w: no view of group %d in cut %s here", httpapi.ErrNotFound, gid, id)
	}
	v := ct.groups[gid].view
	ct.groups[gid].view = nil
	ct.timer.Reset(cutTTL) // the backup is still streaming: keep the other views
	for _, h := range ct.groups {
		if h.view != nil {
			return v, nil
		}
	}
	// The last view is out (the holds were released when the views opened): nothing
	// is left to keep; free the node's cut.
	ct.timer.Stop()
	delete(c.byID, id)
	return v, nil
}

// cutPlan is who leads which groups at the start of a consistent backup.
type cutPlan struct {
	id     string
	byNode map[string][]uint32 // node id -> its groups
	addr   map[string]string   // node id -> HTTP address ("" for this node)
}

func newCutID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// takeCut runs both phases over the nodes that lead groups and returns the plan (the
// sections are then fetched from the node that holds each view). On failure every
// node's part is dropped.
func (b backupSource) takeCut(ctx context.Context, groups []uint32) (*cutPlan, error) {
	plan := &cutPlan{id: newCutID(), byNode: map[string][]uint32{}, addr: map[string]string{}}
	for _, gid := range groups {
		rt, err := b.awaitLeader(ctx, gid)
		if err != nil {
			return nil, err
		}
		node := b.node.cfg.ID
		if !rt.Leader {
			node = rt.LeaderID
			plan.addr[node] = rt.LeaderHTTP
		}
		plan.byNode[node] = append(plan.byNode[node], gid)
	}
	start := time.Now()
	if err := b.eachNode(plan, func(node string) error {
		if node == b.node.cfg.ID {
			return b.HoldCut(ctx, plan.id, plan.byNode[node])
		}
		body, _ := json.Marshal(map[string][]uint32{"groups": plan.byNode[node]})
		return b.call(ctx, http.MethodPost, plan.addr[node], "/internal/backup/cuts/"+plan.id+"/hold", body)
	}); err != nil {
		b.dropCut(plan)
		return nil, fmt.Errorf("holding writes for a consistent cut: %w", err)
	}
	if err := b.eachNode(plan, func(node string) error {
		if node == b.node.cfg.ID {
			_, err := b.OpenCut(ctx, plan.id)
			return err
		}
		return b.call(ctx, http.MethodPost, plan.addr[node], "/internal/backup/cuts/"+plan.id+"/open", nil)
	}); err != nil {
		b.dropCut(plan)
		return nil, fmt.Errorf("opening a consistent cut: %w", err)
	}
	b.node.log.Info("consistent cut taken", "cut", plan.id, "groups", len(groups), "nodes", len(plan.byNode),
		"took", time.Since(start).Round(time.Microsecond))
	return plan, nil
}

// eachNode runs fn for every node of plan at once and returns the first error.
func (b backupSource) eachNode(plan *cutPlan, fn func(node string) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(plan.byNode))
	for node := range plan.byNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(node); err != nil {
				errs <- fmt.Errorf("node %s: %w", node, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (b backupSource) dropCut(plan *cutPlan) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.eachNode(plan, func(node string) error {
		if node == b.node.cfg.ID {
			b.DropCut(plan.id)
			return nil
		}
		return b.call(ctx, http.MethodDelete, plan.addr[node], "/internal/backup/cuts/"+plan.id, nil)
	})
}

// call makes one internal request and turns an answer other than 2xx into an error.
func (b backupSource) call(ctx context.Context, method, addr, path string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.client.URL(addr, path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", httpapi.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var p httpapi.Problem
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		return fmt.Errorf("%w: %s %s answered %s: %s", httpapi.ErrUnavailable, method, path, resp.Status, p.Detail)
	}
	return nil
}

// awaitLeader waits, up to backupLeaderWait, for group gid to have a known leader.
func (b backupSource) awaitLeader(ctx context.Context, gid uint32) (httpapi.Route, error) {
	deadline := time.Now().Add(backupLeaderWait)
	for {
		rt, err := kvBackend{b.node}.GroupRoute(gid)
		if err != nil {
			return rt, err
		}
		if rt.Leader || rt.LeaderHTTP != "" {
			return rt, nil
		}
		if time.Now().After(deadline) {
			return rt, fmt.Errorf("%w: group %d has no known leader", httpapi.ErrUnavailable, gid)
		}
		select {
		case <-ctx.Done():
			return rt, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
