package placement

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/raftgroup"
)

// Prober asks a node (by HTTP address) for the state of its replicas.
type Prober interface {
	Probe(ctx context.Context, httpAddr string) (NodeReport, error)
	// TransferLeader asks the node at httpAddr, which leads group, to hand the
	// leadership to node.
	TransferLeader(ctx context.Context, httpAddr string, group uint32, node string) error
}

// NodeReport is what a node says of itself when probed.
type NodeReport struct {
	Node string `json:"node"`
	// IdentityProof proves the node holds its bound identity (IdentityProof over the
	// nonce the prober sent); Nonce is that nonce, filled in by the prober.
	IdentityProof string          `json:"identity_proof,omitempty"`
	Nonce         string          `json:"-"`
	Replicas      []ReplicaReport `json:"replicas"`
	Disk          *DiskReport     `json:"disk,omitempty"` // absent from nodes of older versions
	// Stopping: the node is stopping gracefully (SIGTERM). It hands its leaderships
	// off, and leader balancing must not give it any back.
	Stopping bool `json:"stopping,omitempty"`
}

// DiskReport is a node's disk: the free space of its data dir's filesystem and what
// the data dir holds by kind (bytes allocated).
type DiskReport struct {
	FreeBytes     uint64 `json:"free_bytes"`
	TotalBytes    uint64 `json:"total_bytes"`
	ReserveBytes  uint64 `json:"reserve_bytes"`
	Full          bool   `json:"full"` // below the reserve: writes refused
	StateBytes    int64  `json:"state_bytes"`
	RaftLogBytes  int64  `json:"raft_log_bytes"`
	SnapshotBytes int64  `json:"snapshot_bytes"`
}

// ReplicaReport is one replica's Raft state.
type ReplicaReport struct {
	Group         uint32 `json:"group"`
	State         string `json:"state"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	Applied       uint64 `json:"applied_index"`
	LastIndex     uint64 `json:"last_index"`
	Leader        string `json:"leader"`
	LastContactMs int64  `json:"last_contact_ms"`
	// Voters and NonVoters are the group's configuration, reported by its leader.
	Voters    []string `json:"voters,omitempty"`
	NonVoters []string `json:"non_voters,omitempty"`
	// ConfigIndex is the log index of that configuration (leader only).
	ConfigIndex uint64 `json:"config_index,omitempty"`
}

// ConfigCommitted says whether the configuration a leader reported (Voters,
// NonVoters) has committed: a configuration takes effect when appended, and only once
// it has committed do the remaining members hold everything a removed replica helped
// commit. Meaningful on a leader's report only.
func (r ReplicaReport) ConfigCommitted() bool { return r.CommitIndex >= r.ConfigIndex }

// Replica returns the report of group g, if the node runs it.
func (r NodeReport) Replica(g uint32) (ReplicaReport, bool) {
	for _, rep := range r.Replicas {
		if rep.Group == g {
			return rep, true
		}
	}
	return ReplicaReport{}, false
}

// ReportFor describes a running replica.
func ReportFor(g *raftgroup.Group) ReplicaReport {
	st := g.Status()
	rep := ReplicaReport{
		Group: st.Group, State: st.State, Term: st.Term, CommitIndex: st.CommitIndex, Applied: st.Applied,
		LastIndex: st.LastIndex, Leader: st.Leader, LastContactMs: st.LastContact.Milliseconds(),
	}
	if st.State == raft.Leader.String() {
		rep.ConfigIndex = st.ConfigIndex
		for _, s := range st.Servers {
			if s.Suffrage == raft.Voter {
				rep.Voters = append(rep.Voters, string(s.ID))
			} else {
				rep.NonVoters = append(rep.NonVoters, string(s.ID))
			}
		}
	}
	return rep
}

// maxCatchUpLag is how far (in entries) a non-voter may trail the leader's commit index
// and still be promoted: close enough that it will not hold back the quorum it joins.
const maxCatchUpLag = 256

// member is one server a group's Raft configuration should have.
type member struct {
	id, addr, httpAddr string
	voter              bool
}

// reconcileConfig moves the Raft configuration of group g (led by this node) one step
// toward want: new members join as non-voters, are promoted once caught up, and members
// no longer wanted are removed only once every wanted voter votes, so the group never
// has fewer caught-up voters than it needs for a quorum.
func reconcileConfig(ctx context.Context, g *raftgroup.Group, want []member, prober Prober, log *slog.Logger) {
	r := g.Raft()
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	have := map[string]raft.Server{}
	for _, s := range f.Configuration().Servers {
		have[string(s.ID)] = s
	}
	wanted := map[string]bool{}
	allVoting := true
	for _, m := range want {
		wanted[m.id] = true
		s, ok := have[m.id]
		switch {
		case !ok:
			allVoting = allVoting && !m.voter
			if err := r.AddNonvoter(raft.ServerID(m.id), raft.ServerAddress(m.addr), 0, 5*time.Second).Error(); err != nil {
				log.Warn("add non-voter", "group", g.ID(), "node", m.id, "err", err)
				return
			}
			log.Info("added non-voter", "group", g.ID(), "node", m.id)
		case m.voter && s.Suffrage != raft.Voter:
			allVoting = false
			if !caughtUp(ctx, g, m, prober) {
				continue
			}
			if err := r.AddVoter(raft.ServerID(m.id), raft.ServerAddress(m.addr), 0, 5*time.Second).Error(); err != nil {
				log.Warn("promote", "group", g.ID(), "node", m.id, "err", err)
				return
			}
			log.Info("promoted to voter", "group", g.ID(), "node", m.id)
		case string(s.Address) != m.addr:
			// The node came back on a new address: re-adding with the same id updates it.
			add := r.AddNonvoter
			if s.Suffrage == raft.Voter {
				add = r.AddVoter
			}
			if err := add(raft.ServerID(m.id), raft.ServerAddress(m.addr), 0, 5*time.Second).Error(); err != nil {
				log.Warn("update address", "group", g.ID(), "node", m.id, "err", err)
			}
		}
	}
	if !allVoting {
		return
	}
	// Every wanted voter votes: now members may lose their vote or their place.
	for _, m := range want {
		s, ok := have[m.id]
		if !ok || m.voter || s.Suffrage != raft.Voter {
			continue
		}
		if m.id == g.NodeID() {
			// As with removal: the leader hands over and the next leader demotes it.
			if err := r.LeadershipTransfer().Error(); err != nil {
				log.Warn("leadership transfer before demotion", "group", g.ID(), "err", err)
			}
			return
		}
		if err := r.DemoteVoter(raft.ServerID(m.id), 0, 5*time.Second).Error(); err != nil {
			log.Warn("demote", "group", g.ID(), "node", m.id, "err", err)
			return
		}
		log.Info("demoted to non-voter", "group", g.ID(), "node", m.id)
	}
	for id := range have {
		if wanted[id] {
			continue
		}
		if id == g.NodeID() {
			// A leader does not remove itself: it hands leadership over and the next
			// leader removes it.
			if err := r.LeadershipTransfer().Error(); err != nil {
				log.Warn("leadership transfer before removal", "group", g.ID(), "err", err)
			}
			return
		}
		if err := r.RemoveServer(raft.ServerID(id), 0, 5*time.Second).Error(); err != nil {
			log.Warn("remove server", "group", g.ID(), "node", id, "err", err)
			return
		}
		log.Info("removed server", "group", g.ID(), "node", id)
	}
}

// caughtUp asks m's node how far its replica of g has applied.
func caughtUp(ctx context.Context, g *raftgroup.Group, m member, prober Prober) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rep, err := prober.Probe(ctx, m.httpAddr)
	if err != nil {
		return false
	}
	rr, ok := rep.Replica(g.ID())
	if !ok {
		return false
	}
	commit := g.Raft().CommitIndex()
	return rr.Applied+maxCatchUpLag >= commit
}
