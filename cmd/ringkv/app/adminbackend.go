package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
)

// adminBackend serves httpapi's Admin interface.
type adminBackend struct {
	node *Node
}

func (a adminBackend) MetaLeader() (bool, httpapi.Route) {
	g := a.node.metaGroup
	if g.IsLeader() {
		return true, httpapi.Route{}
	}
	id, _ := g.Leader()
	rt := httpapi.Route{Group: placement.MetaGroup, Local: true, LeaderID: id}
	if n, ok := a.node.meta.Table().Node(id); ok {
		rt.LeaderHTTP = n.HTTPAddr
	}
	return false, rt
}

func (a adminBackend) Nodes(ctx context.Context) ([]httpapi.Node, error) {
	t := a.node.meta.Table()
	health := a.node.service.Health()
	reports := a.node.service.Reports()
	out := make([]httpapi.Node, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		h := health[n.ID]
		state, detail := string(n.State), ""
		switch {
		case n.State == placement.NodeUp && (h.Down || h.Tracked.IsZero()):
			state = string(placement.NodeDown)
		case n.State == placement.NodeJoining && h.GaveUp:
			state = string(placement.NodeDown)
			detail = fmt.Sprintf("joined but has not answered a probe at %s within %s: it gets no replicas; start it there, or decommission it",
				n.HTTPAddr, a.node.service.JoinTimeout())
		case n.State == placement.NodeJoining:
			detail = "waiting for its first answer to a probe"
		}
		leaders := 0
		for _, r := range reports[n.ID].Replicas {
			if r.Group != placement.MetaGroup && r.State == raft.Leader.String() {
				leaders++
			}
		}
		out = append(out, httpapi.Node{
			ID: n.ID, HTTPAddr: n.HTTPAddr, RaftAddr: n.RaftAddr, State: state, LastSeen: h.LastSeen.UTC(),
			Replicas: len(t.GroupsOf(n.ID)), Leaders: leaders, Disk: nodeDisk(reports[n.ID].Disk),
			Identity: placement.Fingerprint(n.UUID), Detail: detail,
		})
	}
	return out, nil
}

func (a adminBackend) Join(ctx context.Context, req httpapi.JoinRequest) (httpapi.Node, error) {
	n, err := a.node.service.Join(ctx, placement.Node{ID: req.ID, HTTPAddr: req.HTTPAddr, RaftAddr: req.RaftAddr, UUID: req.NodeUUID}, req.ClusterID)
	switch {
	case errors.Is(err, placement.ErrAddressInUse), errors.Is(err, placement.ErrIdentityMismatch),
		errors.Is(err, placement.ErrClusterMismatch), errors.Is(err, placement.ErrBadTransition):
		return httpapi.Node{}, fmt.Errorf("%w: %v", httpapi.ErrConflict, err)
	case errors.Is(err, placement.ErrBadCommand):
		return httpapi.Node{}, fmt.Errorf("%w: %v", httpapi.ErrBadRequest, err)
	case errors.Is(err, placement.ErrNotCreated):
		return httpapi.Node{}, fmt.Errorf("%w: %v", httpapi.ErrUnavailable, err)
	case err != nil:
		return httpapi.Node{}, kvBackend{a.node}.groupError(a.node.metaGroup, err)
	}
	return httpapi.Node{ID: n.ID, HTTPAddr: n.HTTPAddr, RaftAddr: n.RaftAddr, State: string(n.State), Identity: placement.Fingerprint(n.UUID)}, nil
}

// Groups probes every node and puts together each group's picture from its replicas'
// reports: the leader's view of the configuration and commit index, each replica's own
// applied index.
func (a adminBackend) Groups(ctx context.Context) ([]httpapi.Group, error) {
	t := a.node.meta.Table()
	if !t.Initialized() {
		return nil, fmt.Errorf("%w: the cluster is not created yet", httpapi.ErrUnavailable)
	}
	reports := a.probeAll(ctx, t)
	var out []httpapi.Group
	for _, tg := range append([]placement.Group{{ID: placement.MetaGroup}}, t.Groups...) {
		g := httpapi.Group{ID: tg.ID, Partitions: slices.Clone(t.PartitionsOf(tg.ID)), Replicas: []httpapi.Replica{}}
		if g.Partitions == nil {
			g.Partitions = []uint32{}
		}
		var lead placement.ReplicaReport
		for node, rep := range reports {
			if r, ok := rep.Replica(tg.ID); ok && r.State == raft.Leader.String() && r.Term >= lead.Term {
				lead, g.Leader = r, node
			}
		}
		g.Term, g.CommitIndex, g.AppliedIndex = lead.Term, lead.CommitIndex, lead.Applied
		members := tg.Replicas
		if tg.ID == placement.MetaGroup || g.Leader != "" {
			members = append(slices.Clone(lead.Voters), lead.NonVoters...)
		}
		if len(members) == 0 {
			members = tg.Replicas
		}
		for _, id := range members {
			rep := httpapi.Replica{Node: id, Voter: slices.Contains(lead.Voters, id) || g.Leader == ""}
			if r, ok := reports[id].Replica(tg.ID); ok {
				rep.State, rep.MatchIndex, rep.AppliedIndex, rep.LastContactMs = r.State, r.LastIndex, r.Applied, r.LastContactMs
				if g.AppliedIndex > r.Applied { // applied vs applied: no-ops never reach an FSM
					rep.Lag = g.AppliedIndex - r.Applied
				}
				rep.Healthy = g.Leader != "" && rep.Lag <= 1000 && (r.State == raft.Leader.String() || (r.LastContactMs >= 0 && r.LastContactMs < 5000))
			} else {
				rep.State = "unreachable"
			}
			g.Replicas = append(g.Replicas, rep)
		}
		out = append(out, g)
	}
	return out, nil
}

func (a adminBackend) probeAll(ctx context.Context, t *placement.Table) map[string]placement.NodeReport {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]placement.NodeReport{}
	)
	for _, n := range t.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rep placement.NodeReport
			var err error
			if n.ID == a.node.cfg.ID {
				rep = a.node.report("")
			} else if rep, err = a.node.prober.Probe(ctx, n.HTTPAddr); err != nil || rep.Node != n.ID {
				return
			}
			mu.Lock()
			out[n.ID] = rep
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (a adminBackend) Partitions() (httpapi.Partitions, error) {
	t := a.node.meta.Table()
	if !t.Initialized() {
		return httpapi.Partitions{}, fmt.Errorf("%w: the cluster is not created yet", httpapi.ErrUnavailable)
	}
	out := httpapi.Partitions{Epoch: t.Epoch, Partitions: make([]httpapi.PartitionInfo, 0, t.NumPartitions())}
	for i, p := range t.Partitions {
		start, end := placement.PartitionRange(uint32(i), t.NumPartitions())
		out.Partitions = append(out.Partitions, httpapi.PartitionInfo{
			ID: uint32(i), Group: p.Group, Epoch: p.Epoch, HashStart: placement.HexHash(start), HashEnd: placement.HexHash(end),
		})
	}
	return out, nil
}

// adminTransferTimeout bounds the wait for a group's entries in flight before an
// asked-for leadership transfer.
const adminTransferTimeout = time.Second

func (a adminBackend) TransferLeader(ctx context.Context, group uint32, node string) (string, error) {
	g := a.node.host.Group(group)
	if g == nil {
		return "", &httpapi.NotLeaderError{}
	}
	// The group's own transfer: proposals are held back and those in flight commit
	// first, so no write in flight is answered "outcome unknown" for it.
	var err error
	if node == "" {
		err = g.TransferLeadership(adminTransferTimeout)
	} else {
		n, ok := a.node.meta.Table().Node(node)
		if !ok {
			return "", fmt.Errorf("%w: no node %q", httpapi.ErrNotFound, node)
		}
		if node == a.node.cfg.ID {
			return node, nil // already leads
		}
		err = g.TransferLeadershipTo(n.ID, n.RaftAddr, adminTransferTimeout)
	}
	if errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		// Another transfer (leader balancing's) runs: nothing was done. Said as "not
		// the leader", the request is tried again here or follows the new leader.
		return "", &httpapi.NotLeaderError{}
	}
	if err != nil {
		return "", fmt.Errorf("%w: leadership transfer of group %d: %v", httpapi.ErrConflict, group, err)
	}
	// Report the leader once this replica has heard of the new one.
	for ctx.Err() == nil {
		if id, _ := g.Leader(); id != "" && id != a.node.cfg.ID {
			return id, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%w: no new leader of group %d was seen", httpapi.ErrTimeout, group)
}

func (a adminBackend) Ready() ([]string, error) {
	if err := a.ready(); err != nil {
		return nil, err
	}
	return a.node.degraded(), nil
}

func (a adminBackend) ready() error {
	if a.node.drain.stopping.Load() {
		// A load balancer that checks readiness stops sending here while the node
		// still serves what it was sent (drain.go), so nobody is sending when its
		// listener closes.
		return fmt.Errorf("%w: this node is stopping (SIGTERM): it serves what it was sent, and takes nothing new for long", httpapi.ErrUnavailable)
	}
	t := a.node.meta.Table()
	if _, ok := t.Node(a.node.cfg.ID); !ok {
		return fmt.Errorf("%w: this node has not joined a cluster yet", httpapi.ErrUnavailable)
	}
	for _, id := range t.GroupsOf(a.node.cfg.ID) {
		if a.node.host.Group(id) == nil {
			return fmt.Errorf("%w: replica of group %d not started yet", httpapi.ErrUnavailable, id)
		}
	}
	for _, g := range t.Groups {
		// A group with no replica here is served by forwarding: its leader must be known.
		if a.node.host.Group(g.ID) == nil && a.node.leaders.get(g.ID) == "" {
			return fmt.Errorf("%w: the leader of group %d is not known yet", httpapi.ErrUnavailable, g.ID)
		}
	}
	for _, g := range a.node.host.Groups() {
		st := g.Status()
		if st.Leader == "" {
			return fmt.Errorf("%w: group %d has no leader", httpapi.ErrUnavailable, st.Group)
		}
		if st.CommitIndex > st.Applied+placementCatchUp {
			return fmt.Errorf("%w: group %d is catching up (applied %d of %d)", httpapi.ErrUnavailable, st.Group, st.Applied, st.CommitIndex)
		}
	}
	return nil
}

// placementCatchUp is how far a replica may trail its commit index and be ready.
const placementCatchUp = 256

func (a adminBackend) Internal(ctx context.Context, nonce string) (any, error) {
	return a.node.report(nonce), nil
}

// Digest is a replica's applied index and the hash of its data at that index.
type Digest struct {
	Group   uint32 `json:"group"`
	Node    string `json:"node"`
	Applied uint64 `json:"applied_index"`
	Keys    int    `json:"keys"`
	SHA256  string `json:"sha256"`
}

func (a adminBackend) Digest(group uint32) (any, error) {
	g := a.node.host.Group(group)
	if g == nil {
		return nil, fmt.Errorf("%w: no replica of group %d on this node", httpapi.ErrNotFound, group)
	}
	kv, ok := g.SM().(*raftgroup.KV)
	if !ok {
		return nil, fmt.Errorf("%w: group %d is not a data group", httpapi.ErrNotFound, group)
	}
	applied, sum, keys, err := kv.Digest(a.node.host.DB())
	if err != nil {
		return nil, err
	}
	return Digest{Group: group, Node: a.node.cfg.ID, Applied: applied, Keys: keys, SHA256: fmt.Sprintf("%x", sum)}, nil
}

// Decommission drains node id, or with dryRun only plans it.
func (a adminBackend) Decommission(ctx context.Context, id string, dryRun bool) (httpapi.DecommissionPlan, error) {
	t := a.node.meta.Table()
	n, ok := t.Node(id)
	if !ok {
		return httpapi.DecommissionPlan{}, fmt.Errorf("%w: no node %q", httpapi.ErrNotFound, id)
	}
	others := 0
	for _, o := range t.Nodes {
		if o.ID != id && (o.State == placement.NodeUp || o.State == placement.NodeJoining) {
			others++
		}
	}
	if n.State != placement.NodeDraining && others == 0 {
		return httpapi.DecommissionPlan{}, fmt.Errorf("%w: %s is the last node; its data would have nowhere to go", httpapi.ErrConflict, id)
	}
	moves, after, err := a.node.service.DryRun(id)
	if err != nil {
		return httpapi.DecommissionPlan{}, placementError(err)
	}
	plan := httpapi.DecommissionPlan{Node: id, DryRun: dryRun, Moves: make([]httpapi.Move, 0, len(moves)), After: after}
	for _, m := range moves {
		plan.Moves = append(plan.Moves, httpapi.Move{Group: m.Group, From: m.From, To: m.To})
	}
	if dryRun {
		return plan, nil
	}
	if err := a.node.service.Decommission(ctx, id); err != nil {
		return httpapi.DecommissionPlan{}, placementError(err)
	}
	return plan, nil
}

// placementError maps the placement service's refusals to API errors.
func placementError(err error) error {
	switch {
	case errors.Is(err, placement.ErrUnknownNode):
		return fmt.Errorf("%w: %v", httpapi.ErrNotFound, err)
	case errors.Is(err, placement.ErrBadTransition):
		return fmt.Errorf("%w: %v", httpapi.ErrConflict, err)
	}
	return err
}

func nodeDisk(d *placement.DiskReport) *httpapi.NodeDisk {
	if d == nil {
		return nil
	}
	return &httpapi.NodeDisk{
		FreeBytes: d.FreeBytes, TotalBytes: d.TotalBytes, ReserveBytes: d.ReserveBytes, Full: d.Full,
		StateBytes: d.StateBytes, RaftLogBytes: d.RaftLogBytes, SnapshotBytes: d.SnapshotBytes,
	}
}
