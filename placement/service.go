package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/raftgroup"
)

// ServiceConfig is the layout a new cluster is created with and the service's pace.
type ServiceConfig struct {
	Self        Node
	Partitions  int
	Groups      int
	Replication int
	MetaVoters  int           // voters of the meta group (3, or 5 once there are 5 nodes)
	Interval    time.Duration // between two passes (500ms)
	DownAfter   time.Duration // a node unseen this long is reported down (5s)
	DeadAfter   time.Duration // a node down this long has its replicas replaced (5m)
	// JoinTimeout: a joined node that has not answered a probe this long is shown down
	// (given up on) until it answers (60s). It never gets replicas before it answers.
	JoinTimeout time.Duration
	// ClusterID is the id of the cluster this node creates, when it creates one ("":
	// a new random one).
	ClusterID string
	// AdminToken keeps the bootstrap admin token this node makes the cluster with
	// (bootstrap.go); nil: the cluster is made without one.
	AdminToken AdminTokenStore
}

// Service is the placement service. Every node runs one; it acts only while the node's
// meta replica leads: creates the cluster, probes nodes, keeps the meta group's voters,
// and brings every group up to its replication factor on distinct nodes.
type Service struct {
	cfg    ServiceConfig
	meta   *Meta
	group  *raftgroup.Group
	prober Prober
	log    *slog.Logger

	mu sync.Mutex
	// lastSeen is when a node last answered a probe as itself (its id, and its
	// identity once bound); tracked is when this leader began probing it.
	lastSeen map[string]time.Time
	tracked  map[string]time.Time
	reports  map[string]NodeReport

	lastLeaderMove  time.Time    // of balanceLeaders, which runs on the service's goroutine
	moves           atomic.Int64 // replica moves proposed since start
	bootstrapWarned atomic.Bool  // a bootstrap token failure was logged
}

// NewService returns the service of a node whose meta replica is group.
func NewService(cfg ServiceConfig, meta *Meta, group *raftgroup.Group, prober Prober, log *slog.Logger) *Service {
	if cfg.MetaVoters == 0 {
		cfg.MetaVoters = 3
	}
	if cfg.Interval == 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.DownAfter == 0 {
		cfg.DownAfter = 5 * time.Second
	}
	if cfg.DeadAfter == 0 {
		cfg.DeadAfter = 5 * time.Minute
	}
	if cfg.JoinTimeout == 0 {
		cfg.JoinTimeout = 60 * time.Second
	}
	cfg.DeadAfter = max(cfg.DeadAfter, cfg.DownAfter)
	return &Service{cfg: cfg, meta: meta, group: group, prober: prober, log: log,
		lastSeen: map[string]time.Time{}, tracked: map[string]time.Time{}, reports: map[string]NodeReport{}}
}

// Run works until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if s.group.IsLeader() {
			s.pass(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Propose replicates a meta command and returns its answer.
func (s *Service) Propose(ctx context.Context, c Command) error {
	resp, err := s.group.Propose(ctx, c.Encode())
	if err != nil {
		return err
	}
	switch r := resp.(type) {
	case nil:
		return nil
	case error:
		return r
	default:
		return fmt.Errorf("meta: unexpected answer %T", resp)
	}
}

// Join records a node in the table (idempotent); the meta leader's passes then add it
// to the meta group and give it replicas once it has answered a probe. clusterID is
// the cluster the node's data dir belongs to ("" for a node that never joined one).
// It fails with ErrIdentityMismatch when the id is held by another identity and
// ErrClusterMismatch when clusterID names another cluster.
func (s *Service) Join(ctx context.Context, n Node, clusterID string) (Node, error) {
	if err := errors.Join(CheckNodeID(n.ID), CheckJoinAddr("http_addr", n.HTTPAddr), CheckJoinAddr("raft_addr", n.RaftAddr)); err != nil {
		return Node{}, err
	}
	cmd := Command{Op: "add_node", Node: &n, ClusterID: clusterID}
	// Checked against the table first: a join refused here costs no Raft entry, so a
	// client cannot grow the meta log (and make every voter fsync) with refused joins.
	// The state machine checks again when it applies the command (the authority).
	if _, err := Apply(s.meta.Table(), cmd); err != nil {
		return Node{}, err
	}
	if err := s.Propose(ctx, cmd); err != nil {
		return Node{}, err
	}
	got, _ := s.meta.Table().Node(n.ID)
	return got, nil
}

// Reports returns the latest probe report of every node (meta leader only).
func (s *Service) Reports() map[string]NodeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]NodeReport, len(s.reports))
	for k, v := range s.reports {
		out[k] = v
	}
	return out
}

// Health is what the meta leader knows of a node's liveness.
type Health struct {
	LastSeen time.Time // its last answer to a probe; zero when none since Tracked
	Tracked  time.Time // when this leader began probing it
	Down     bool      // no answer for DownAfter
	// GaveUp: the node has not answered a single probe within JoinTimeout of being
	// tracked (a join naming an address where nothing listens).
	GaveUp bool
}

// Health reports the liveness of every node probed by this service (meta leader only).
func (s *Service) Health() map[string]Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Health{}
	for id, first := range s.tracked {
		h := Health{LastSeen: s.lastSeen[id], Tracked: first}
		if h.LastSeen.IsZero() {
			h.Down = time.Since(first) > s.cfg.DownAfter
			h.GaveUp = time.Since(first) > s.cfg.JoinTimeout
		} else {
			h.Down = time.Since(h.LastSeen) > s.cfg.DownAfter
		}
		out[id] = h
	}
	return out
}

// JoinTimeout is how long a joined node may stay silent before it is given up on.
func (s *Service) JoinTimeout() time.Duration { return s.cfg.JoinTimeout }

func (s *Service) pass(ctx context.Context) {
	t := s.meta.Table()
	if !t.Initialized() {
		self := s.cfg.Self
		id := s.cfg.ClusterID
		if id == "" {
			id = NewIdentity()
		}
		cmd := Command{Op: "init", Partitions: s.cfg.Partitions, Groups: s.cfg.Groups,
			Replication: s.cfg.Replication, Node: &self, ClusterID: id}
		if rec, ok := s.bootstrapToken(); ok {
			cmd.Token = &rec
		}
		err := s.Propose(ctx, cmd)
		if err != nil && !errors.Is(err, ErrInitialized) {
			s.log.Warn("create cluster", "err", err)
		}
		if err == nil && cmd.Token != nil {
			s.log.Info("created the cluster with a bootstrap admin token, kept in this node's data dir", "token_id", cmd.Token.ID)
		}
		return
	}
	s.bootstrapTokens(ctx)
	if t.ClusterID == "" { // a table from before cluster ids: give the cluster one
		if err := s.Propose(ctx, Command{Op: "set_cluster_id", ClusterID: NewIdentity()}); err != nil {
			s.log.Warn("set cluster id", "err", err)
		}
	}
	s.probeAll(ctx, t)
	s.markJoined(ctx, t)
	s.reconcileMeta(ctx, t)
	s.place(ctx, t)
}

// Moves is the number of replica moves this node's service has proposed.
func (s *Service) Moves() int64 { return s.moves.Load() }

// markJoined binds the identity of a member recorded without one to the identity it
// answers probes with, and moves joining nodes to up once they have answered a probe
// with their bound identity: a node is up only once it has been heard from.
func (s *Service) markJoined(ctx context.Context, t *Table) {
	for _, n := range t.Nodes {
		if n.State == NodeRemoved || !s.isUp(n.ID) {
			continue
		}
		if n.UUID == "" {
			// Bound by the node's own join, which carries its identity: a probe answer
			// never shows it (anyone can probe).
			continue
		}
		if n.State != NodeJoining {
			continue
		}
		if err := s.Propose(ctx, Command{Op: "set_node_state", NodeID: n.ID, State: NodeUp}); err != nil {
			s.log.Warn("mark node up", "node", n.ID, "err", err)
		}
	}
}

func (s *Service) probeAll(ctx context.Context, t *Table) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range t.Nodes {
		if n.State == NodeRemoved {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := s.prober.Probe(ctx, n.HTTPAddr)
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, ok := s.tracked[n.ID]; !ok {
				// First pass of this leader (or of the node): count from now.
				s.tracked[n.ID] = time.Now()
			}
			// Only the node itself counts: its id, and its identity once bound (whoever
			// else listens at its address does not make it live).
			if err == nil && rep.Node == n.ID && (n.UUID == "" || rep.Proves(n.UUID)) {
				s.lastSeen[n.ID] = time.Now()
				s.reports[n.ID] = rep
			}
		}()
	}
	wg.Wait()
}

func (s *Service) isUp(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, ok := s.lastSeen[id]
	return ok && time.Since(seen) <= s.cfg.DownAfter
}

// reconcileMeta keeps every node in the meta group: the first MetaVoters live nodes
// (current voters first) vote, the others follow as non-voters.
func (s *Service) reconcileMeta(ctx context.Context, t *Table) {
	f := s.group.Raft().GetConfiguration()
	if f.Error() != nil {
		return
	}
	voting := map[string]bool{}
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voting[string(srv.ID)] = true
		}
	}
	c := s.cluster(t)
	nodes := slices.Clone(t.Nodes)
	sort.SliceStable(nodes, func(i, j int) bool { return voting[nodes[i].ID] && !voting[nodes[j].ID] })
	wantVoters, candidates := s.cfg.MetaVoters, 0
	for _, n := range nodes {
		if c.eligible(n) {
			candidates++
		}
	}
	if candidates >= 5 && wantVoters < 5 {
		wantVoters = 5 // tolerate two failures once there are enough nodes
	}
	views := s.views()
	var want []member
	voters := 0
	for _, n := range nodes {
		// A joining node enters the meta group once it has answered a probe (an address
		// where nothing listens would otherwise be a member for ever); a drained node
		// leaves it, and is removed once that configuration has committed.
		if n.State == NodeRemoved || (n.State == NodeJoining && !c.Live[n.ID]) || drained(t, n, views) {
			continue
		}
		m := member{id: n.ID, addr: n.RaftAddr, httpAddr: n.HTTPAddr}
		// Current voters keep their vote unless draining or dead; new ones must be live.
		canVote := n.State != NodeDraining && !c.Dead[n.ID] && (voting[n.ID] || c.eligible(n))
		if voters < wantVoters && canVote {
			m.voter = true
			voters++
		}
		want = append(want, m)
	}
	reconcileConfig(ctx, s.group, want, s.prober, s.log)
}
