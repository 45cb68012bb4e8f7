package direct

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/ringkv/ringkv/openapi"
)

// The routing table: partition hash ranges and their groups' leaders, as the admin API
// shows them, kept as a sorted slice swapped whole so lookups take no lock.

// HashKey is the ring position of key, exactly as placement.HashKey computes it: xxhash64
// of the key, or of its tag (the text between the first '{' and the next '}', when not
// empty). It is duplicated here because DESIGN.md lets openapi import nothing of the
// project; a test in cmd/ringkv/app checks that the two agree.
func HashKey(key string) uint64 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			return xxhash.Sum64String(key[open+1 : open+1+end])
		}
	}
	return xxhash.Sum64String(key)
}

// target is a node requests can be sent to. Seeds have no id: what they answer is
// never taken as a sign that the cache is stale, only as a detour.
type target struct {
	id   string
	base string // URL without a trailing slash
	api  *openapi.ClientWithResponses
	down atomic.Bool // a dial to it failed since the table was built
}

// arc is one partition's inclusive hash range and its group's leader (nil: unknown).
type arc struct {
	start, end uint64
	leader     *target
}

// pick returns the leader of the partition holding h, or a seed when that is unknown.
func (c *Client) pick(h uint64) *target {
	if p := c.arcs.Load(); p != nil {
		arcs := *p
		i, _ := slices.BinarySearchFunc(arcs, h, func(a arc, h uint64) int {
			if a.end < h {
				return -1
			}
			return 1
		})
		if i < len(arcs) && arcs[i].start <= h && arcs[i].leader != nil && !arcs[i].leader.down.Load() {
			return arcs[i].leader
		}
	}
	c.refreshSoon()
	return c.seed()
}

// Refresh loads the routing table now, asking the seeds and then the nodes it knows of
// until one answers.
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastStart.Store(time.Now().UnixNano())
	var bases []string // the seeds first, then every node met since
	for _, s := range c.seeds {
		bases = append(bases, s.base)
	}
	for base := range c.apis {
		if !slices.Contains(bases, base) {
			bases = append(bases, base)
		}
	}
	var errs []error
	for _, base := range bases {
		if ctx.Err() != nil {
			break
		}
		arcs, err := c.load(ctx, base)
		if err == nil {
			c.arcs.Store(&arcs)
			c.refreshes.Add(1)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", base, err))
	}
	return fmt.Errorf("direct: no node answered the admin API: %w", errors.Join(append(errs, ctx.Err())...))
}

// load reads partitions, group leaders and node addresses from the node at base. The
// nodes list their HTTP addresses as host:port; they are reached with base's scheme,
// since a cluster serves TLS on every node or on none.
func (c *Client) load(ctx context.Context, base string) ([]arc, error) {
	api := c.apiFor(base)
	parts, err := api.ListPartitionsWithResponse(ctx)
	if err != nil || parts.JSON200 == nil {
		return nil, answerErr("partitions", parts, err)
	}
	groups, err := api.ListGroupsWithResponse(ctx)
	if err != nil || groups.JSON200 == nil {
		return nil, answerErr("groups", groups, err)
	}
	nodes, err := api.ListNodesWithResponse(ctx)
	if err != nil || nodes.JSON200 == nil {
		return nil, answerErr("nodes", nodes, err)
	}
	addrs := map[string]string{}
	for _, n := range nodes.JSON200.Nodes {
		addrs[n.Id] = n.HttpAddr
	}
	leaders := map[int64]*target{}
	byNode := map[string]*target{}
	for _, g := range groups.JSON200.Groups {
		if addr := addrs[g.Leader]; addr != "" {
			if byNode[g.Leader] == nil {
				leader := baseURL(addr, schemeOf(base))
				byNode[g.Leader] = &target{id: g.Leader, base: leader, api: c.apiFor(leader)}
			}
			leaders[g.Id] = byNode[g.Leader]
		}
	}
	arcs := make([]arc, 0, len(parts.JSON200.Partitions))
	for _, p := range parts.JSON200.Partitions {
		start, err1 := strconv.ParseUint(p.HashStart, 16, 64)
		end, err2 := strconv.ParseUint(p.HashEnd, 16, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Id, err)
		}
		arcs = append(arcs, arc{start: start, end: end, leader: leaders[p.Group]})
	}
	slices.SortFunc(arcs, func(a, b arc) int { return cmp.Compare(a.start, b.start) })
	return arcs, nil
}

func answerErr(what string, r interface{ Status() string }, err error) error {
	if err != nil {
		return fmt.Errorf("GET /admin/%s: %w", what, err)
	}
	return fmt.Errorf("GET /admin/%s: %s", what, r.Status())
}
