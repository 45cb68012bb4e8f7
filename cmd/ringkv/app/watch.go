package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/raftgroup"
)

// watchBackend serves httpapi's WatchBackend: the change history of the node's own
// replicas (raftgroup.KV.ReadHistory), tailed by waiting on each replica's applied
// index, and the other nodes holding a group, for groups it has no replica of.
type watchBackend struct{ node *Node }

// Bounds of one read of a group's history: a watch reads page after page.
const (
	historyPageChanges = 256
	historyPageBytes   = 1 << 20
)

func (b watchBackend) kv(group uint32) (*raftgroup.Group, *raftgroup.KV, error) {
	g := b.node.host.Group(group)
	if g == nil {
		return nil, nil, httpapi.ErrNoReplica
	}
	kv, ok := g.SM().(*raftgroup.KV)
	if !ok {
		return nil, nil, fmt.Errorf("%w: group %d is not a data group", httpapi.ErrNotFound, group)
	}
	return g, kv, nil
}

// Changes implements httpapi.WatchBackend. The replica's applied index moving is what
// wakes a waiting reader (Group.WaitApplied): an apply commits history and data
// together before it moves.
func (b watchBackend) Changes(ctx context.Context, group uint32, after httpapi.Pos, wait bool) (httpapi.ChangePage, error) {
	g, kv, err := b.kv(group)
	if err != nil {
		return httpapi.ChangePage{}, err
	}
	if wait {
		// Changes after `after` are held once the replica applied the next index (or,
		// in the middle of an entry, that entry).
		next := after.Index
		if after.Seq == httpapi.EndSeq {
			next++
		}
		if err := g.WaitApplied(ctx, next); err != nil {
			if ctx.Err() != nil {
				return httpapi.ChangePage{Through: after}, nil
			}
			if errors.Is(err, raftgroup.ErrStopped) {
				// The replica moved off this node (or the node stops) while the watch
				// waited: its changes are read from another replica.
				return httpapi.ChangePage{}, httpapi.ErrNoReplica
			}
			return httpapi.ChangePage{}, err
		}
	}
	page, err := kv.ReadHistory(b.node.host.DB(), raftgroup.Revision{Index: after.Index, Seq: after.Seq}, historyPageChanges, historyPageBytes)
	var he *raftgroup.HistoryError
	if errors.As(err, &he) {
		return httpapi.ChangePage{}, &httpapi.CompactedError{Group: group, Floor: httpapi.Pos(he.Floor)}
	}
	if err != nil {
		return httpapi.ChangePage{}, err
	}
	out := httpapi.ChangePage{Through: httpapi.Pos(page.Through), Changes: make([]httpapi.Change, len(page.Changes))}
	for i, c := range page.Changes {
		out.Changes[i] = httpapi.Change{Group: group, At: httpapi.Pos(c.At), Delete: c.Op == raftgroup.OpDelete,
			Key: c.Key, Value: recordValue(c.Record), Prev: toValue(c.Prev), Committed: c.Time}
	}
	return out, nil
}

// Position implements httpapi.WatchBackend.
func (b watchBackend) Position(ctx context.Context, group uint32) (now, floor httpapi.Pos, err error) {
	_, kv, err := b.kv(group)
	if err != nil {
		return now, floor, err
	}
	f, applied, err := kv.HistoryFloor(b.node.host.DB())
	if err == nil && applied == 0 {
		err = fmt.Errorf("%w: the replica of group %d is loading a snapshot", httpapi.ErrUnavailable, group)
	}
	return httpapi.AtIndex(applied), httpapi.Pos(f), err
}

// Replicas implements httpapi.WatchBackend: the HTTP addresses of the group's other
// replicas, as the placement table has them.
func (b watchBackend) Replicas(group uint32) []string {
	t := b.node.meta.Table()
	g, ok := t.Group(group)
	if !ok {
		return nil
	}
	var out []string
	for _, id := range g.Replicas {
		if n, ok := t.Node(id); ok && id != b.node.cfg.ID && n.HTTPAddr != "" {
			out = append(out, n.HTTPAddr)
		}
	}
	return out
}
