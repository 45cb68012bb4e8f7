package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
)

// kvBackend serves httpapi's KV interface from this node's replicas. It is the one
// place raftgroup's results and errors become httpapi's.
type kvBackend struct {
	node *Node
}

func (b kvBackend) NodeID() string { return b.node.cfg.ID }

func (b kvBackend) table() (*placement.Table, error) {
	t := b.node.meta.Table()
	if !t.Initialized() {
		return nil, fmt.Errorf("%w: the cluster is not created yet (this node has no placement table)", httpapi.ErrUnavailable)
	}
	return t, nil
}

func (b kvBackend) Route(key []byte) (httpapi.Route, error) {
	t, err := b.table()
	if err != nil {
		return httpapi.Route{}, err
	}
	p := placement.PartitionOf(key, t.NumPartitions())
	rt, err := b.GroupRoute(t.GroupOf(p))
	rt.Partition = p
	return rt, err
}

func (b kvBackend) Routes() ([]httpapi.Route, error) {
	t, err := b.table()
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.Route, 0, len(t.Groups))
	for _, g := range t.Groups {
		rt, err := b.GroupRoute(g.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

// GroupRoute says where group id is led: from the local replica when there is one,
// else from the leader cache.
func (b kvBackend) GroupRoute(id uint32) (httpapi.Route, error) {
	t, err := b.table()
	if err != nil {
		return httpapi.Route{}, err
	}
	if _, ok := t.Group(id); !ok && id != placement.MetaGroup {
		return httpapi.Route{}, fmt.Errorf("%w: no group %d", httpapi.ErrNotFound, id)
	}
	rt := httpapi.Route{Group: id}
	if g := b.node.host.Group(id); g != nil {
		rt.Local, rt.Leader = true, g.IsLeader()
		rt.LeaderID, _ = g.Leader()
	} else if rt.LeaderID = b.node.leaders.get(id); rt.LeaderID == "" {
		b.node.leaders.refresh(b.node, id)
	}
	if n, ok := t.Node(rt.LeaderID); ok {
		rt.LeaderHTTP = n.HTTPAddr
	}
	return rt, nil
}

// ForgetLeader drops a cached leader of a group this node has no replica of; a local
// replica's view is Raft's own and changes with the next election.
func (b kvBackend) ForgetLeader(id uint32, leader string) {
	if b.node.host.Group(id) == nil {
		b.node.leaders.forget(id, leader)
	}
}

// LeaderHint caches leader as the leader of a group this node has no replica of.
func (b kvBackend) LeaderHint(id uint32, leader string) {
	if id != placement.MetaGroup && leader != "" && b.node.host.Group(id) == nil {
		b.node.leaders.set(id, leader)
	}
}

func (b kvBackend) group(id uint32) (*raftgroup.Group, *raftgroup.KV, error) {
	g := b.node.host.Group(id)
	if g == nil {
		return nil, nil, &httpapi.NotLeaderError{}
	}
	kv, ok := g.SM().(*raftgroup.KV)
	if !ok {
		return nil, nil, fmt.Errorf("%w: group %d is not a data group", httpapi.ErrNotFound, id)
	}
	return g, kv, nil
}

func (b kvBackend) Put(ctx context.Context, in httpapi.PutInput) (httpapi.WriteOutput, error) {
	cmd := raftgroup.KVCommand{Op: raftgroup.OpPut, Partition: in.Route.Partition, Key: in.Key, Value: in.Value, WantPrev: in.WantPrev}
	return b.write(ctx, in.Route, cmd, in.Cond)
}

func (b kvBackend) Delete(ctx context.Context, in httpapi.DeleteInput) (httpapi.WriteOutput, error) {
	cmd := raftgroup.KVCommand{Op: raftgroup.OpDelete, Partition: in.Route.Partition, Key: in.Key, WantPrev: in.WantPrev}
	return b.write(ctx, in.Route, cmd, in.Cond)
}

func (b kvBackend) write(ctx context.Context, rt httpapi.Route, cmd raftgroup.KVCommand, cond httpapi.Condition) (httpapi.WriteOutput, error) {
	switch {
	case cond.Absent:
		cmd.Cond = raftgroup.CondAbsent
	case cond.Exists:
		cmd.Cond = raftgroup.CondExists
	case cond.ETag != "":
		rev, ok := raftgroup.ParseETag(cond.ETag)
		if !ok {
			// No stored revision renders as this tag, so it matches nothing.
			return httpapi.WriteOutput{}, fmt.Errorf("%w: If-Match %s is not an ETag of this store", httpapi.ErrConditionFailed, cond.ETag)
		}
		cmd.Cond, cmd.Match = raftgroup.CondMatch, rev
	}
	g, _, err := b.group(rt.Group)
	if err != nil {
		return httpapi.WriteOutput{}, err
	}
	// Refused here, on the group's leader, before proposing: the entry would be stored
	// in this node's Raft log and Badger DB (and on the followers; a follower whose own
	// disk is full stops appending and lags, see raftgroup.guardedStore).
	admit := b.node.host.Disk().Admit
	if cmd.Op == raftgroup.OpDelete {
		admit = b.node.host.Disk().AdmitDelete
	}
	if err := admit(writeCost(cmd, b.node.cfg.WatchHistory.Keeps())); err != nil {
		return httpapi.WriteOutput{}, fmt.Errorf("%w: %w", httpapi.ErrInsufficientStorage, err)
	}
	defer b.node.metrics.observe(rt.Group, opName(cmd.Op), time.Now())
	resp, err := g.Propose(ctx, cmd.Encode())
	if err != nil {
		return httpapi.WriteOutput{}, b.groupError(g, err)
	}
	res, ok := resp.(raftgroup.KVResult)
	if !ok {
		return httpapi.WriteOutput{}, fmt.Errorf("group %d answered %T", rt.Group, resp)
	}
	switch res.Status {
	case raftgroup.StatusOK:
	case raftgroup.StatusNotFound:
		return httpapi.WriteOutput{}, fmt.Errorf("%w: key %q", httpapi.ErrNotFound, cmd.Key)
	case raftgroup.StatusConditionFailed:
		return httpapi.WriteOutput{}, fmt.Errorf("%w: the key's current state does not satisfy the condition", httpapi.ErrConditionFailed)
	case raftgroup.StatusWrongGroup:
		return httpapi.WriteOutput{}, fmt.Errorf("%w: partition %d is not served by group %d at this epoch; retry", httpapi.ErrUnavailable, cmd.Partition, rt.Group)
	default:
		return httpapi.WriteOutput{}, fmt.Errorf("group %d rejected the command (status %d)", rt.Group, res.Status)
	}
	return httpapi.WriteOutput{
		Created: res.Created, Version: res.Version, ModIndex: res.Rev.Index, ETag: res.Rev.ETag(), Prev: toValue(res.Prev),
	}, nil
}

// writeCost is what a write is counted to take on disk until the next free-space poll:
// the entry in the Raft log, the value in Badger's value log or memtable, and headers.
func writeCost(cmd raftgroup.KVCommand, history bool) int64 {
	// The Raft log and the state hold the key and value once each; with watch history
	// (raftgroup/history.go) the group's history holds the new value and the previous
	// one too, estimated at the new one's size.
	copies := int64(2)
	if history {
		copies = 4
	}
	return copies*int64(len(cmd.Key)+len(cmd.Value)) + 512
}

func opName(op raftgroup.Op) string {
	if op == raftgroup.OpDelete {
		return "delete"
	}
	return "put"
}

func toValue(r *raftgroup.Record) *httpapi.Value {
	if r == nil {
		return nil
	}
	v := recordValue(*r)
	return &v
}

func recordValue(r raftgroup.Record) httpapi.Value {
	return httpapi.Value{Value: r.Value, Version: r.Version, CreateIndex: r.CreateIndex, ModIndex: r.Mod.Index, ETag: r.Mod.ETag()}
}

// groupError translates a raftgroup error, adding the leader hint to ErrNotLeader.
func (b kvBackend) groupError(g *raftgroup.Group, err error) error {
	switch {
	case errors.Is(err, raftgroup.ErrNotLeader), errors.Is(err, raftgroup.ErrStopped):
		id, _ := g.Leader()
		nl := &httpapi.NotLeaderError{Leader: id}
		if n, ok := b.node.meta.Table().Node(id); ok {
			nl.LeaderHTTP = n.HTTPAddr
		}
		return nl
	case errors.Is(err, raftgroup.ErrOutcomeUnknown) && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w: %v", httpapi.ErrTimeout, httpapi.ErrOutcomeUnknown, err)
	case errors.Is(err, raftgroup.ErrOutcomeUnknown):
		return fmt.Errorf("%w: %v", httpapi.ErrOutcomeUnknown, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", httpapi.ErrTimeout, err)
	}
	return err
}

// readAt returns the index a read of g is valid at: a confirmed read index, or for a
// stale read whatever the replica holds.
func (b kvBackend) readAt(ctx context.Context, g *raftgroup.Group, stale bool) (uint64, error) {
	if stale {
		return g.Applied(), nil
	}
	idx, err := g.LinearizableRead(ctx)
	if err != nil {
		return 0, b.groupError(g, err)
	}
	return idx, nil
}

func (b kvBackend) Get(ctx context.Context, rt httpapi.Route, key []byte, stale bool) (httpapi.GetOutput, error) {
	g, kv, err := b.group(rt.Group)
	if err != nil {
		return httpapi.GetOutput{}, err
	}
	defer b.node.metrics.observe(rt.Group, "get", time.Now())
	idx, err := b.readAt(ctx, g, stale)
	if err != nil {
		return httpapi.GetOutput{}, err
	}
	out := httpapi.GetOutput{Index: idx}
	if stale {
		out.Staleness = max(g.Status().LastContact, 0)
	}
	rec, found, applied, err := kv.GetAt(b.node.host.DB(), rt.Partition, key)
	if err != nil {
		return out, err
	}
	// The answer is exactly the state at the view's applied index (at least the read
	// index): what a watch from this read's cursor resumes after.
	out.Index = max(applied, idx)
	if !found {
		return out, fmt.Errorf("%w: key %q", httpapi.ErrNotFound, key)
	}
	out.Value = recordValue(rec)
	return out, nil
}

func (b kvBackend) List(ctx context.Context, in httpapi.ListInput) (httpapi.ListPage, error) {
	g, kv, err := b.group(in.Group)
	if err != nil {
		return httpapi.ListPage{}, err
	}
	defer b.node.metrics.observe(in.Group, "list", time.Now())
	idx, err := b.readAt(ctx, g, in.Stale)
	if err != nil {
		return httpapi.ListPage{}, err
	}
	items, truncated, applied, err := kv.ListAt(b.node.host.DB(), raftgroup.ListOptions{Prefix: in.Prefix, StartAfter: in.StartAfter,
		Limit: in.Limit, KeysOnly: in.KeysOnly, MaxBytes: in.MaxBytes, MaxValueBytes: in.MaxValueBytes})
	if err != nil {
		return httpapi.ListPage{}, err
	}
	// As for Get: the share is the state at the view's applied index.
	out := httpapi.ListPage{Items: make([]httpapi.ListItem, len(items)), Index: max(applied, idx), Truncated: truncated}
	for i, it := range items {
		out.Items[i] = httpapi.ListItem{Key: it.Key, Group: in.Group, Value: recordValue(it.Record), OmittedBytes: it.OmittedBytes}
	}
	return out, nil
}
