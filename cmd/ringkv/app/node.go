package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
)

// Node is one running ringkv node.
type Node struct {
	cfg       Config
	log       *slog.Logger
	httpLn    net.Listener
	httpAddr  string // advertised
	raftAddr  string // advertised
	mux       *raftgroup.Mux
	host      *raftgroup.Host
	meta      *placement.Meta
	metaGroup *raftgroup.Group
	service   *placement.Service
	prober    *httpProber
	peers     *clusterClient // every internal request goes through it
	tls       *nodeTLS       // nil without TLS
	leaders   *leaderCache
	cuts      *cuts            // this node's part of consistent backups in progress
	backups   *backupScheduler // nil without --backup-dir
	server    *http.Server
	api       *httpapi.Server // server's handler, under the drain's wrapper
	drain     drain           // a graceful stop's last requests (drain.go)
	registry  *prometheus.Registry
	metrics   *nodeMetrics
	idMu      sync.Mutex
	identity  identity       // from the data dir; read with ident()
	raftGate  *gatedListener // the cluster port, shut until a fresh node has joined
	fatal     chan error     // a reason to stop the node (a refused join), for Run

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens the node's listeners and stores and starts its meta replica; Run starts
// serving.
func New(cfg Config) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Join = NormalizeJoin(cfg.Join)
	n = &Node{cfg: cfg, log: cfg.Log.With("node", cfg.ID), leaders: &leaderCache{}, cuts: &cuts{}, fatal: make(chan error, 1)}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()
	if err := privateDir(cfg.DataDir, cfg.Log); err != nil {
		return nil, err
	}
	if n.identity, err = loadIdentity(cfg.DataDir); err != nil {
		return nil, err
	}
	restore, err := pendingRestore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	seedDir := ""
	if restore != nil {
		seedDir = filepath.Join(cfg.DataDir, restoreDirName)
	}
	if n.tls, err = loadTLS(cfg); err != nil {
		return nil, err
	}
	var peerTLS func(string) *tls.Config
	if n.tls != nil {
		peerTLS = n.tls.peer.PeerClientConfig
	}
	n.peers = newClusterClient(peerTLS, cfg.JoinToken)
	n.prober = &httpProber{client: n.peers}
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	closers = append(closers, n.httpLn.Close)
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.RaftAddr, err)
	}
	raftLn := newGatedListener(ln, len(cfg.Join) == 0) // a joining node: see below
	n.raftGate = raftLn
	closers = append(closers, raftLn.Close)
	if n.httpAddr, err = advertised(cfg.AdvertiseHTTP, n.httpLn.Addr(), "--advertise-http"); err != nil {
		return nil, err
	}
	if n.raftAddr, err = advertised(cfg.AdvertiseRaft, raftLn.Addr(), "--advertise-raft"); err != nil {
		return nil, err
	}
	var muxOpts []raftgroup.MuxOption
	if n.tls != nil {
		if err := n.tls.checkNames(n.httpAddr, n.raftAddr); err != nil {
			return nil, err
		}
		// Mutual TLS: only holders of a node certificate of the cluster's CA reach
		// hashicorp/raft, which trusts whoever connects.
		muxOpts = append(muxOpts, raftgroup.WithTLS(raftgroup.MuxTLS{Server: n.tls.peer.PeerServerConfig(), Client: n.tls.peer.PeerClientConfig}))
	}
	if n.mux, err = raftgroup.NewMux(raftLn, n.raftAddr, n.log, muxOpts...); err != nil {
		return nil, err
	}
	closers = append(closers, n.mux.Close)
	tuning := cfg.Tuning
	tuning.SnapshotThreshold, tuning.TrailingLogs = cfg.SnapshotThreshold, cfg.TrailingLogs
	if n.host, err = raftgroup.OpenHost(raftgroup.HostConfig{
		NodeID: cfg.ID, DataDir: cfg.DataDir, Mux: n.mux, Log: n.log, Tuning: tuning,
		DiskReserve: cfg.DiskReserveBytes, DiskPoll: cfg.DiskPoll, GC: cfg.GC, SeedDir: seedDir,
	}); err != nil {
		return nil, err
	}
	closers = append(closers, n.host.Close)
	if n.meta, err = placement.NewMeta(n.host.DB()); err != nil {
		return nil, err
	}
	if err := n.checkIdentity(); err != nil {
		return nil, err
	}
	if restore != nil && !n.meta.Table().Initialized() {
		// A data dir `ringkv restore` prepared: this node creates a new cluster of the
		// backup's layout, and its groups start from their seeds (raftgroup/seed.go).
		if len(cfg.Join) > 0 {
			return nil, fmt.Errorf("data dir %s was restored from a backup: it creates a new cluster, so start it without --join (the other nodes join it)", cfg.DataDir)
		}
		cfg.Partitions, cfg.Groups = restore.Partitions, len(restore.Groups)
		n.cfg = cfg
		n.log.Info("creating a new cluster from a restored backup", "backup_cluster_id", restore.From.ClusterID,
			"backup_created", restore.From.Created, "keys", restore.From.Keys, "partitions", cfg.Partitions, "groups", cfg.Groups)
	}
	if n.meta.Table().Initialized() {
		// A member's data dir (or one of a cluster from before identities): its Raft
		// state is its own. Only a data dir that never held the cluster's table waits
		// for its join to be accepted before it takes Raft traffic.
		raftLn.Open()
	}
	var boot *raft.Configuration
	if len(cfg.Join) == 0 {
		boot = &raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(n.raftAddr)}}}
	}
	if n.metaGroup, err = n.host.Start(placement.MetaGroup, n.meta, boot); err != nil {
		return nil, err
	}
	self := placement.Node{ID: cfg.ID, HTTPAddr: n.httpAddr, RaftAddr: n.raftAddr, UUID: n.identity.NodeUUID}
	n.service = placement.NewService(placement.ServiceConfig{
		Self: self, Partitions: cfg.Partitions, Groups: cfg.Groups, Replication: cfg.Replicas,
		Interval: cfg.ServiceInterval, DownAfter: cfg.DownAfter, DeadAfter: cfg.DeadAfter,
		JoinTimeout: cfg.JoinTimeout, AdminToken: adminTokenFile{dir: cfg.DataDir},
	}, n.meta, n.metaGroup, n.prober, n.log)
	if n.registry = cfg.Registry; n.registry == nil {
		n.registry = NewRegistry()
	}
	n.metrics = newNodeMetrics(n.registry, n)
	if cfg.BackupDir != "" {
		n.backups = newBackupScheduler(n, n.registry)
	}
	tokens := tokenBackend{n}
	var auth httpapi.Authenticator
	if cfg.Auth {
		auth = tokens
	}
	api := httpapi.New(httpapi.Config{
		KV: kvBackend{n}, Admin: adminBackend{n}, Backup: newBackupSource(n), Log: n.log, MaxValueBytes: cfg.MaxValueBytes, MaxInFlight: cfg.MaxInFlight,
		Metrics:      promhttp.HandlerFor(n.metrics.gatherer(n.registry, n.host), promhttp.HandlerOpts{}),
		Spec:         specHandler(),
		UI:           n.dashboard(),
		Debug:        pprofHandler(cfg.Pprof),
		Observe:      n.metrics.httpObserver,
		AllowedHosts: n.allowedHosts(),
		Peers:        n.peers,
		Auth:         auth, Peer: n.peer, Tokens: tokens,
		Watch: httpapi.NewWatch(watchBackend{n}, n.peers, cfg.ID), WatchDelay: n.metrics.watchDelay,
	})
	n.api = api
	n.server = httpapi.NewHTTPServer(n.drain.wrap(api), n.log)
	n.server.ConnState = n.drain.connState
	maxConns := cfg.MaxConnections
	if maxConns == 0 {
		maxConns = httpapi.DefaultMaxConnections
	}
	n.httpLn = httpapi.LimitConnections(n.server, n.httpLn, maxConns, n.log)
	if n.tls != nil {
		srvTLS := n.tls.http.HTTPServerConfig()
		// HTTP/1.1 only: the graceful stop (drain.go) closes connections by
		// Connection: close and counts them by ConnState, which HTTP/2 does not have.
		srvTLS.NextProtos = []string{"http/1.1"}
		n.httpLn = tls.NewListener(n.httpLn, srvTLS)
	}
	n.warnInsecure()
	return n, nil
}

// checkIdentity refuses to start a data dir under another node's id: the table it
// holds would name this node as someone else; and a data dir whose identity file and
// table disagree on the cluster.
func (n *Node) checkIdentity() error {
	t := n.meta.Table()
	if !t.Initialized() {
		return nil
	}
	if c := n.identity.ClusterID; c != "" && t.ClusterID != "" && c != t.ClusterID {
		return fmt.Errorf("%w: %s names cluster %s but its placement table is of cluster %s", ErrOtherCluster, n.cfg.DataDir, c, t.ClusterID)
	}
	if me, ok := t.Node(n.cfg.ID); ok && me.UUID != "" && me.UUID != n.identity.NodeUUID && me.State != placement.NodeRemoved {
		return fmt.Errorf("data dir %s: its placement table binds node %q to identity %s, but this data dir is identity %s", n.cfg.DataDir, n.cfg.ID, placement.Fingerprint(me.UUID), placement.Fingerprint(n.identity.NodeUUID))
	}
	if len(n.host.Groups()) == 0 && len(t.GroupsOf(n.cfg.ID)) == 0 {
		if _, ok := t.Node(n.cfg.ID); !ok && len(t.Nodes) > 0 {
			return fmt.Errorf("data dir %s belongs to a cluster in which there is no node %q: use the id it was created with", n.cfg.DataDir, n.cfg.ID)
		}
	}
	return nil
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// HTTPAddr is the advertised HTTP address.
func (n *Node) HTTPAddr() string { return n.httpAddr }

// RaftAddr is the advertised cluster address.
func (n *Node) RaftAddr() string { return n.raftAddr }

// ID is the node id.
func (n *Node) ID() string { return n.cfg.ID }

// Run serves until ctx ends, then closes the node.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	n.cancel = cancel
	serveErr := make(chan error, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.server.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	reconciler := &placement.Reconciler{
		Self: n.cfg.ID, Host: n.host, Meta: n.meta, Prober: n.prober, Log: n.log, Interval: n.cfg.ServiceInterval,
		NewStateMachine: func(id uint32) raftgroup.StateMachine {
			kv := raftgroup.NewKV(id, func() []uint32 { return n.meta.Table().PartitionsOf(id) })
			kv.SetHistoryRetention(n.cfg.WatchHistory)
			return kv
		},
	}
	loops := []func(context.Context){n.service.Run, reconciler.Run, n.joinLoop, n.recordCluster, n.watchCertificates,
		func(ctx context.Context) { n.leaders.run(ctx, n, time.Second) }}
	if n.backups != nil {
		loops = append(loops, n.backups.run)
	}
	for _, run := range loops {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			run(ctx)
		}()
	}
	n.log.Info("node running", "http", n.httpAddr, "raft", n.raftAddr, "data_dir", n.cfg.DataDir)
	var err error
	graceful := false
	select {
	case <-ctx.Done():
		n.log.Info("node stopping: handing off leaderships, closing the HTTP server, every replica and the data store")
		graceful = true
	case err = <-serveErr:
	case err = <-n.fatal:
		n.log.Error("node stopping", "err", err)
	}
	if cerr := n.close(graceful); err == nil {
		err = cerr
	}
	if err == nil { // an error is the command's to print (main)
		n.log.Info("node stopped")
	}
	return err
}

// joinLoop asks the --join members to admit this node until the table lists it with
// its current addresses and identity. A refusal (409: the id is held by another node,
// or this data dir belongs to another cluster) stops the node: retrying cannot help
// until an operator acts, and the error says what to do.
func (n *Node) joinLoop(ctx context.Context) {
	if len(n.cfg.Join) == 0 {
		return
	}
	backoff := 200 * time.Millisecond
	for i := 0; ctx.Err() == nil; i++ {
		if me, ok := n.meta.Table().Node(n.cfg.ID); ok && me.HTTPAddr == n.httpAddr && me.RaftAddr == n.raftAddr &&
			me.UUID == n.ident().NodeUUID {
			n.raftGate.Open()
			return
		}
		body, _ := json.Marshal(httpapi.JoinRequest{ID: n.cfg.ID, HTTPAddr: n.httpAddr, RaftAddr: n.raftAddr,
			NodeUUID: n.ident().NodeUUID, ClusterID: n.clusterID()})
		seed := n.cfg.Join[i%len(n.cfg.Join)]
		status, p, err := n.postJoin(ctx, seed, body)
		switch {
		case err != nil:
			n.log.Warn("join attempt failed", "via", seed, "err", err)
		case status == http.StatusOK:
			n.log.Info("joined cluster", "via", seed)
			n.raftGate.Open() // the cluster knows this node by its identity now
			// Keep looping until the table reaches this node through the meta group.
			backoff = 200 * time.Millisecond
		case status == http.StatusConflict:
			n.fatal <- fmt.Errorf("join refused by %s: %s", seed, p.Detail)
			return
		default:
			n.log.Warn("join refused", "via", seed, "status", status, "detail", p.Detail)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// postJoin asks the member at seed (an HTTP address) to admit this node and returns
// its answer's status and, when it refused, its problem. The cluster client shows this
// node's credentials (its node certificate, or the join secret).
func (n *Node) postJoin(ctx context.Context, seed string, body []byte) (int, httpapi.Problem, error) {
	var p httpapi.Problem
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.peers.URL(seed, "/admin/nodes"), bytes.NewReader(body))
	if err != nil {
		return 0, p, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.peers.Do(req)
	if err != nil {
		return 0, p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
	}
	return resp.StatusCode, p, nil
}

// clusterID is the cluster this node's data dir belongs to: as its identity file
// records it, else as its placement table does ("" when it never joined one).
func (n *Node) clusterID() string {
	if id := n.ident().ClusterID; id != "" {
		return id
	}
	return n.meta.Table().ClusterID
}

// recordCluster writes the cluster id into the data dir's identity file once the
// table lists this node with its identity: from then on the data dir joins no other
// cluster.
func (n *Node) recordCluster(ctx context.Context) {
	for ctx.Err() == nil {
		changed := n.meta.Changed()
		t := n.meta.Table()
		if me, ok := t.Node(n.cfg.ID); ok && me.UUID == n.ident().NodeUUID && t.ClusterID != "" {
			id := n.ident()
			if id.ClusterID == t.ClusterID {
				return
			}
			id.ClusterID = t.ClusterID
			if err := saveIdentity(n.cfg.DataDir, id); err != nil {
				n.log.Error("record cluster id in the data dir", "err", err)
			} else {
				n.idMu.Lock()
				n.identity = id
				n.idMu.Unlock()
				n.log.Info("member of cluster", "cluster_id", id.ClusterID, "identity", placement.Fingerprint(id.NodeUUID))
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// ident is what the data dir says of this node.
func (n *Node) ident() identity {
	n.idMu.Lock()
	defer n.idMu.Unlock()
	return n.identity
}

// report is this node's NodeReport.
//
// It proves the node's identity over the prober's nonce without revealing it: an
// identity is what lets a node re-address itself, so it is kept secret. (A member the
// table binds no identity to is bound by its own join, which carries it.)
func (n *Node) report(nonce string) placement.NodeReport {
	rep := placement.NodeReport{Node: n.cfg.ID, Replicas: []placement.ReplicaReport{}, Disk: n.diskReport(), Stopping: n.drain.stopping.Load()}
	if nonce != "" {
		rep.IdentityProof = placement.IdentityProof(n.ident().NodeUUID, n.cfg.ID, nonce)
	}
	for _, g := range n.host.Groups() {
		rep.Replicas = append(rep.Replicas, placement.ReportFor(g))
	}
	return rep
}

// handOffAndDrain hands this node's leaderships off, then serves until nobody still
// sends it requests (drain.go). Its probe answers say it is stopping from the start,
// so leader balancing gives it no leadership back; one given before the meta leader
// heard (a probe is up to a second old) is handed off again, up to handOffRounds times.
func (n *Node) handOffAndDrain() {
	n.drain.stopping.Store(true)
	for round := 1; round <= handOffRounds; round++ {
		h := n.host.HandOffLeaderships(handOffTimeout)
		if round > 1 && h.Led == 0 {
			return
		}
		n.log.Info("stopping: leaderships handed off", "round", round, "led", h.Led, "transferred", h.Transferred,
			"took", h.Took.Round(time.Millisecond))
		waited := n.drain.await(drainQuiet, drainMax)
		n.log.Info("stopping: no more requests coming", "waited", waited.Round(time.Millisecond))
	}
}

const handOffRounds = 3

// handOffTimeout bounds the leadership hand-off of a graceful stop: a transfer takes a
// round trip or two, or fails within hashicorp/raft's election timeout.
const handOffTimeout = 3 * time.Second

// Close stops serving and closes every replica and the stores at once, without
// handing leaderships off: as close to a crash as an orderly close gets (the
// in-process test harness uses it so). Run's graceful stop is close(true).
func (n *Node) Close() error { return n.close(false) }

// close stops the node. Graceful: the placement loops are told to stop first (so
// leader balancing does not hand a leadership back), then this node's leaderships are
// handed off while the HTTP server still takes requests (those for a group that
// changes leader are forwarded to the new one), then it goes on serving until nobody
// still sends it requests (drain.go), then the requests in flight drain.
func (n *Node) close(graceful bool) error {
	n.closeOnce.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		start := time.Now()
		// Watch streams never end by themselves: end them first (each with a last
		// event saying so), so their clients move to another node and they do not hold
		// the drain or the server's shutdown.
		n.api.EndWatches()
		if graceful {
			n.handOffAndDrain()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Connections that never carried a request would hold Shutdown for 5 s; those
		// too young to tell are closed once they are old enough, if still unused.
		n.drain.closeFresh()
		late := time.AfterFunc(freshFor, n.drain.closeFresh)
		_ = n.server.Shutdown(ctx)
		late.Stop()
		n.log.Info("stopping: HTTP requests drained", "took", time.Since(start).Round(time.Millisecond))
		n.wg.Wait()
		n.log.Info("stopping: placement loops ended", "took", time.Since(start).Round(time.Millisecond))
		n.closeErr = errors.Join(n.host.Close(), n.mux.Close())
		n.log.Info("stopping: replicas and stores closed", "took", time.Since(start).Round(time.Millisecond))
	})
	return n.closeErr
}
