package app

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/placement"
)

// leaderCache remembers who leads the groups this node has no replica of, so a request
// for them can be forwarded straight to the leader. It is refreshed by probing the
// nodes that do hold them; a wrong entry costs one 503, never a wrong answer.
type leaderCache struct {
	mu        sync.Mutex
	leaders   map[uint32]string
	refreshed map[uint32]time.Time // when refresh last asked about a group
}

// refreshEvery spaces the refreshes of one group's leader.
const refreshEvery = 100 * time.Millisecond

// refresh asks the replicas of group id who leads it, in the background, when this
// node knows no leader of it (none was learned yet, or the last one was dropped when
// it refused a connection). A request waiting for the group then follows the new
// leader within about refreshEvery of the election, not at the next probe round up to
// a second later: a failover through a node without a replica of the group took
// 0.3-0.5 s longer for it.
func (c *leaderCache) refresh(n *Node, id uint32) {
	c.mu.Lock()
	if time.Since(c.refreshed[id]) < refreshEvery {
		c.mu.Unlock()
		return
	}
	if c.refreshed == nil {
		c.refreshed = map[uint32]time.Time{}
	}
	c.refreshed[id] = time.Now()
	c.mu.Unlock()
	tab := n.meta.Table()
	g, ok := tab.Group(id)
	if !ok {
		return
	}
	targets := map[string]string{}
	for _, r := range g.Replicas {
		if node, ok := tab.Node(r); ok {
			targets[r] = node.HTTPAddr
		}
	}
	go c.probe(context.Background(), n.prober, targets)
}

func (c *leaderCache) get(g uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaders[g]
}

func (c *leaderCache) set(g uint32, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaders == nil {
		c.leaders = map[uint32]string{}
	}
	c.leaders[g] = node
}

// forget drops g's entry if it still names node.
func (c *leaderCache) forget(g uint32, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaders[g] == node {
		delete(c.leaders, g)
	}
}

// run refreshes the cache every interval while some group has no local replica.
func (c *leaderCache) run(ctx context.Context, n *Node, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first { // the first probe runs at once: readiness waits for it
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		tab := n.meta.Table()
		if !tab.Initialized() {
			continue
		}
		targets := map[string]string{} // node id -> http addr, of nodes holding a group we lack
		for _, g := range tab.Groups {
			if n.host.Group(g.ID) != nil {
				continue
			}
			for _, id := range g.Replicas {
				if node, ok := tab.Node(id); ok {
					targets[id] = node.HTTPAddr
				}
			}
		}
		c.probe(ctx, n.prober, targets)
	}
}

func (c *leaderCache) probe(ctx context.Context, p placement.Prober, targets map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := p.Probe(ctx, addr)
			if err != nil {
				return
			}
			for _, r := range rep.Replicas {
				if r.State == raft.Leader.String() {
					c.set(r.Group, rep.Node)
				}
			}
		}()
	}
	wg.Wait()
}
