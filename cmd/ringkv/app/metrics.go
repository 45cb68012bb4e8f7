package app

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
)

// nodeMetrics are the metrics a node updates as it works; the Raft and placement
// gauges are read at scrape time by raftCollector instead.
type nodeMetrics struct {
	requestLatency *prometheus.HistogramVec // raft_request_latency_seconds{group,op}
	httpRequests   *prometheus.CounterVec
	httpDuration   *prometheus.HistogramVec
	watchDelay     func(time.Duration) // observes ringkv_watch_delivery_delay_seconds
}

func newNodeMetrics(reg prometheus.Registerer, n *Node) *nodeMetrics {
	m := &nodeMetrics{
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "raft_request_latency_seconds",
			Help:    "Time a request spent in its Raft group on this node (proposal to answer, or read-index wait), by group and op.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"group", "op"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringkv_http_requests_total",
			Help: "HTTP requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ringkv_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requestLatency, m.httpRequests, m.httpDuration, &raftCollector{n: n}, diskCollector{n: n})
	m.watchDelay = registerWatchMetrics(reg, n)
	for _, dir := range []string{"inbound", "outbound"} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "ringkv_cluster_handshake_failures_total",
			Help:        "TLS handshakes on the cluster port that failed: inbound, a peer (or anyone) this node refused, such as a forger without a node certificate of the cluster's CA; outbound, peers this node could not verify.",
			ConstLabels: prometheus.Labels{"direction": dir},
		}, func() float64 {
			f := n.mux.HandshakeFailures()
			if dir == "inbound" {
				return float64(f.Inbound)
			}
			return float64(f.Outbound)
		}))
	}
	return m
}

// requestOps are the op label values of raft_request_latency_seconds.
var requestOps = []string{"put", "delete", "get", "list"}

// seriesFor makes every group's raft_request_latency_seconds series exist before its
// first request, so a fresh node's dashboards show 0 rather than "no data".
func (m *nodeMetrics) seriesFor(groups []*raftgroup.Group) {
	for _, g := range groups {
		gl := strconv.FormatUint(uint64(g.ID()), 10)
		for _, op := range requestOps {
			m.requestLatency.WithLabelValues(gl, op)
		}
	}
}

// gatherer is what /metrics serves: the registry, after seriesFor the node's replicas.
func (m *nodeMetrics) gatherer(reg prometheus.Gatherer, host *raftgroup.Host) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		m.seriesFor(host.Groups())
		return reg.Gather()
	})
}

// observe records a request's time in its group.
func (m *nodeMetrics) observe(group uint32, op string, start time.Time) {
	m.requestLatency.WithLabelValues(strconv.FormatUint(uint64(group), 10), op).Observe(time.Since(start).Seconds())
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (a watch flushes each event).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// httpObserver is httpapi's Observe hook: count and time every request by route.
func (m *nodeMetrics) httpObserver(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.httpRequests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.httpDuration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

var (
	descTerm      = prometheus.NewDesc("raft_term", "Current Raft term of this node's replica.", []string{"group"}, nil)
	descState     = prometheus.NewDesc("raft_state", "Raft state of this node's replica: 0 follower, 1 candidate, 2 leader, -1 shut down.", []string{"group"}, nil)
	descCommitted = prometheus.NewDesc("raft_committed_index", "Commit index known to this node's replica.", []string{"group"}, nil)
	descApplied   = prometheus.NewDesc("raft_applied_index", "Index of the last entry this node's state machine holds.", []string{"group"}, nil)
	descLogSize   = prometheus.NewDesc("raft_log_size", "Entries in this node's Raft log store for the group.", []string{"group"}, nil)
	descLag       = prometheus.NewDesc("raft_replication_lag", "Entries a replica's applied index trails the leader's (reported by the leader).", []string{"group", "peer"}, nil)
	descHealth    = prometheus.NewDesc("raft_node_health", "1 when a replica is reachable and caught up, else 0 (reported by the leader).", []string{"group", "peer"}, nil)
	descNodes     = prometheus.NewDesc("ringkv_placement_nodes", "Nodes in the placement table by state (as the meta leader sees them; other nodes report the table's states).", []string{"state"}, nil)
	descReplicas  = prometheus.NewDesc("ringkv_placement_replicas", "Replicas the placement table assigns to a node.", []string{"node"}, nil)
	descRestarts  = prometheus.NewDesc("ringkv_raft_restarts_total", "Times this node restarted its replica's Raft instance because a stuck leadership-transfer flag made it refuse every write (hashicorp/raft#696; docs/RAFT-HAZARDS.md).", []string{"group"}, nil)
	descElections = prometheus.NewDesc("ringkv_raft_elections_total", "Elections this node's replica started (moves to candidate); summed over nodes, the group's elections.", []string{"group"}, nil)
	descEntries   = prometheus.NewDesc("ringkv_group_commit_entries_total", "Packed Raft entries this node proposed as the group's leader (group commit).", []string{"group"}, nil)
	descWrites    = prometheus.NewDesc("ringkv_group_commit_writes_total", "Writes carried by those entries: writes/entries is the packing ratio.", []string{"group"}, nil)
	descMoving    = prometheus.NewDesc("ringkv_placement_replicas_moving", "Replicas of groups led here that are joining (non-voters) or leaving (not in the table).", nil, nil)
)

// raftCollector reads the node's replicas and placement table at scrape time.
type raftCollector struct{ n *Node }

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTerm, descState, descCommitted, descApplied, descLogSize, descLag, descHealth, descElections, descRestarts, descEntries, descWrites, descNodes, descReplicas, descMoving} {
		ch <- d
	}
}

func stateValue(s string) float64 {
	switch s {
	case raft.Follower.String():
		return 0
	case raft.Candidate.String():
		return 1
	case raft.Leader.String():
		return 2
	default:
		return -1
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.n.meta.Table()
	var peers map[string]placement.NodeReport
	moving := 0
	for _, g := range c.n.host.Groups() {
		st := g.Status()
		gl := strconv.FormatUint(uint64(st.Group), 10)
		ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.Term), gl)
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, stateValue(st.State), gl)
		ch <- prometheus.MustNewConstMetric(descCommitted, prometheus.GaugeValue, float64(st.CommitIndex), gl)
		ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.Applied), gl)
		ch <- prometheus.MustNewConstMetric(descLogSize, prometheus.GaugeValue, float64(g.LogEntries()), gl)
		ch <- prometheus.MustNewConstMetric(descElections, prometheus.CounterValue, float64(g.Elections()), gl)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(g.RaftRestarts()), gl)
		entries, writes := g.GroupCommit()
		ch <- prometheus.MustNewConstMetric(descEntries, prometheus.CounterValue, float64(entries), gl)
		ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(writes), gl)
		if st.State != raft.Leader.String() {
			continue
		}
		if peers == nil {
			peers = c.probePeers(t)
		}
		tg, _ := t.Group(st.Group)
		for _, srv := range st.Servers {
			id := string(srv.ID)
			if srv.Suffrage != raft.Voter || (st.Group != placement.MetaGroup && !slices.Contains(tg.Replicas, id)) {
				moving++
			}
			rep, ok := peers[id].Replica(st.Group)
			lag, healthy := float64(0), 0.0
			if ok {
				// Applied against applied: Raft's own no-op entries never reach a state
				// machine, so the commit index can sit one above every replica's.
				if st.Applied > rep.Applied {
					lag = float64(st.Applied - rep.Applied)
				}
				if lag <= 1000 && (id == c.n.cfg.ID || (rep.LastContactMs >= 0 && rep.LastContactMs < 5000)) {
					healthy = 1
				}
			}
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, lag, gl, id)
			ch <- prometheus.MustNewConstMetric(descHealth, prometheus.GaugeValue, healthy, gl, id)
		}
	}
	ch <- prometheus.MustNewConstMetric(descMoving, prometheus.GaugeValue, float64(moving))
	byState := map[string]int{}
	for _, s := range []placement.NodeState{placement.NodeJoining, placement.NodeUp, placement.NodeDraining, placement.NodeDown, placement.NodeRemoved} {
		byState[string(s)] = 0
	}
	if c.n.metaGroup.IsLeader() {
		nodes, _ := adminBackend{c.n}.Nodes(context.Background())
		for _, n := range nodes {
			byState[n.State]++
		}
	} else {
		for _, n := range t.Nodes {
			byState[string(n.State)]++
		}
	}
	for s, v := range byState {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(v), s)
	}
	for _, n := range t.Nodes {
		ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.GaugeValue, float64(len(t.GroupsOf(n.ID))), n.ID)
	}
}

// probePeers asks every node (itself included, without the network) for its report.
func (c *raftCollector) probePeers(t *placement.Table) map[string]placement.NodeReport {
	return adminBackend{c.n}.probeAll(context.Background(), t)
}
