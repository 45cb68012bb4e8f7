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

	mu       sync.Mutex
	lastSeen map[string]time.Time
	reports  map[string]NodeReport

	lastLeaderMove time.Time    // of balanceLeaders, which runs on the service's goroutine
	moves          atomic.Int64 // replica moves proposed since start
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
	cfg.DeadAfter = max(cfg.DeadAfter, cfg.DownAfter)
	return &Service{cfg: cfg, meta: meta, group: group, prober: prober, log: log,
		lastSeen: map[string]time.Time{}, reports: map[string]NodeReport{}}
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
// to the meta group and give it replicas.
func (s *Service) Join(ctx context.Context, n Node) (Node, error) {
	err := s.Propose(ctx, Command{Op: "add_node", Node: &n})
	if err != nil {
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
	LastSeen time.Time
	Down     bool
}

// Health reports the liveness of every node probed by this service (meta leader only).
func (s *Service) Health() map[string]Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Health{}
	for id, t := range s.lastSeen {
		out[id] = Health{LastSeen: t, Down: time.Since(t) > s.cfg.DownAfter}
	}
	return out
}

func (s *Service) pass(ctx context.Context) {
	t := s.meta.Table()
	if !t.Initialized() {
		self := s.cfg.Self
		err := s.Propose(ctx, Command{Op: "init", Partitions: s.cfg.Partitions, Groups: s.cfg.Groups,
			Replication: s.cfg.Replication, Node: &self})
		if err != nil && !errors.Is(err, ErrInitialized) {
			s.log.Warn("create cluster", "err", err)
		}
		return
	}
	s.probeAll(ctx, t)
	s.markJoined(ctx, t)
	s.reconcileMeta(ctx, t)
	s.place(ctx, t)
}

// Moves is the number of replica moves this node's service has proposed.
func (s *Service) Moves() int64 { return s.moves.Load() }

// markJoined moves joining nodes that answer probes to up.
func (s *Service) markJoined(ctx context.Context, t *Table) {
	for _, n := range t.Nodes {
		if n.State != NodeJoining || !s.isUp(n.ID) {
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
			if _, seen := s.lastSeen[n.ID]; !seen {
				// First pass of this leader: count from now, not from the epoch.
				s.lastSeen[n.ID] = time.Now().Add(-time.Second)
			}
			if err == nil && rep.Node == n.ID {
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
	var want []member
	voters := 0
	for _, n := range nodes {
		if n.State == NodeRemoved {
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
