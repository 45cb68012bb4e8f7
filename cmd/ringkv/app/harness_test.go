package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/raftgroup"
)

// The in-process harness: N real nodes (real Badger and bolt files in t.TempDir(), real
// TCP on loopback) in one test process, each a full Node as `ringkv serve` builds it.

type testNode struct {
	cfg    Config
	node   *Node
	done   chan error
	cancel context.CancelFunc // ends Run: a graceful stop
}

type testCluster struct {
	t      *testing.T
	nodes  []*testNode
	client *http.Client
	// mu guards nodes and each node's node and addresses against the goroutines of
	// a client load (placement tests), which read them through running().
	mu sync.Mutex
}

// running returns the HTTP base URLs of the running nodes.
func (c *testCluster) running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, tn := range c.nodes {
		if tn.node != nil {
			out = append(out, "http://"+tn.cfg.HTTPAddr)
		}
	}
	return out
}

// testTuning shortens Raft's timers, within what -race on 2 cores tolerates.
var testTuning = raftgroup.Tuning{HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}

func testLogger(t *testing.T, id string) *slog.Logger {
	if os.Getenv("RINGKV_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCluster starts n nodes: the first creates the cluster, the others join it; it
// returns once every group has min(3, n) voting replicas.
func startCluster(t *testing.T, n int, opts ...func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, client: &http.Client{Timeout: 15 * time.Second}}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		cfg := Default()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = filepath.Join(dir, cfg.ID)
		cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Tuning = testTuning
		cfg.ServiceInterval = 100 * time.Millisecond
		cfg.DownAfter = 2 * time.Second
		cfg.Log = testLogger(t, cfg.ID)
		if i > 0 {
			cfg.Join = []string{c.nodes[0].node.HTTPAddr()}
		}
		for _, o := range opts {
			o(&cfg)
		}
		tn := &testNode{cfg: cfg}
		c.mu.Lock()
		c.nodes = append(c.nodes, tn)
		c.mu.Unlock()
		c.start(i)
		if i == 0 {
			c.waitReady(0)
		}
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.waitReplicated(min(3, n))
	return c
}

// start runs node i; after the first start it reuses the addresses it was given.
func (c *testCluster) start(i int) {
	c.t.Helper()
	tn := c.nodes[i]
	node, err := New(tn.cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", tn.cfg.ID, err)
	}
	c.mu.Lock()
	tn.node = node
	tn.cfg.HTTPAddr, tn.cfg.RaftAddr = node.HTTPAddr(), node.RaftAddr()
	c.mu.Unlock()
	tn.done = make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	go func() { tn.done <- node.Run(ctx) }()
}

// stopGracefully stops node i as SIGTERM does: leaderships handed off, requests
// drained.
func (c *testCluster) stopGracefully(i int) {
	tn := c.nodes[i]
	if tn.node == nil {
		return
	}
	tn.cancel()
	if err := <-tn.done; err != nil {
		c.t.Errorf("graceful stop of %s: %v", tn.cfg.ID, err)
	}
	c.mu.Lock()
	tn.node = nil
	c.mu.Unlock()
}

// stop shuts node i down (as abruptly as an in-process node can go: its groups stop
// answering without handing leadership over).
func (c *testCluster) stop(i int) {
	tn := c.nodes[i]
	if tn.node == nil {
		return
	}
	_ = tn.node.Close()
	<-tn.done
	c.mu.Lock()
	tn.node = nil
	c.mu.Unlock()
}

// addr is node i's base URL; it locks because watchers read it while nodes are added.
func (c *testCluster) addr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "http://" + c.nodes[i].cfg.HTTPAddr
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not a stand-in for the condition
	}
	t.Fatalf("%s: not true after %v: %v", what, timeout, err)
}

func (c *testCluster) waitReady(i int) {
	c.t.Helper()
	eventually(c.t, 30*time.Second, c.nodes[i].cfg.ID+" ready", func() error {
		resp, err := c.client.Get(c.addr(i) + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		return nil
	})
}

type groupsJSON struct {
	Groups []struct {
		ID       uint32 `json:"id"`
		Leader   string `json:"leader"`
		Replicas []struct {
			Node  string `json:"node"`
			Voter bool   `json:"voter"`
		} `json:"replicas"`
	} `json:"groups"`
}

// waitReplicated waits until every data group has a leader and r voting replicas, and
// the meta group a leader and at least r voters.
func (c *testCluster) waitReplicated(r int) {
	c.t.Helper()
	eventually(c.t, 60*time.Second, fmt.Sprintf("every group has %d voters", r), func() error {
		var gs groupsJSON
		if status := c.getJSON(0, "/admin/groups", &gs); status != http.StatusOK {
			return fmt.Errorf("GET /admin/groups: %d", status)
		}
		for _, g := range gs.Groups {
			voters := 0
			for _, rep := range g.Replicas {
				if rep.Voter {
					voters++
				}
			}
			if g.ID == 0 && g.Leader != "" && voters >= r {
				continue // the meta group: 3 or 5 voters, every other node a non-voter
			}
			if g.Leader == "" || voters != r || len(g.Replicas) != r {
				return fmt.Errorf("group %d: leader %q, %d voters of %d replicas", g.ID, g.Leader, voters, len(g.Replicas))
			}
		}
		return nil
	})
}

// do sends one request to node i and returns the status, headers and body.
func (c *testCluster) do(i int, method, path, body string, hdr ...string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.addr(i)+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if method == http.MethodPost && body != "" {
		// The API's POST bodies are JSON, and must say so (httpapi/guard.go).
		req.Header.Set("Content-Type", "application/json")
	}
	for j := 0; j+1 < len(hdr); j += 2 {
		req.Header.Set(hdr[j], hdr[j+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (c *testCluster) getJSON(i int, path string, v any) int {
	c.t.Helper()
	status, _, body := c.do(i, http.MethodGet, path, "")
	if status == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			c.t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return status
}

type keyValue struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	Group   uint32 `json:"group"`
}

// mustPut writes key=value through node i, retrying while the cluster says (with a
// 503 that says nothing was done) that it cannot take the write yet.
func (c *testCluster) mustPut(i int, key, value string) {
	c.t.Helper()
	eventually(c.t, 20*time.Second, "PUT "+key, func() error {
		status, _, body := c.do(i, http.MethodPut, "/kv/"+key, value)
		if status == http.StatusOK || status == http.StatusCreated {
			return nil
		}
		var p struct {
			Outcome string `json:"outcome"`
		}
		_ = json.Unmarshal(body, &p)
		if p.Outcome == "unknown" {
			// Retrying an unconditional put is idempotent for what this helper checks.
			return fmt.Errorf("outcome unknown: %s", body)
		}
		return fmt.Errorf("%d %s", status, body)
	})
}

// get reads key through node i (linearizable unless extra query says otherwise).
func (c *testCluster) get(i int, key, query string) (int, keyValue) {
	c.t.Helper()
	var kv keyValue
	status, _, body := c.do(i, http.MethodGet, "/kv/"+key+query, "")
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &kv); err != nil {
			c.t.Fatalf("GET %s: %v in %s", key, err, body)
		}
	}
	return status, kv
}

// leaderOf returns the index of the node leading the group that serves key.
func (c *testCluster) leaderOf(key string) int {
	c.t.Helper()
	var idx int
	eventually(c.t, 20*time.Second, "leader of "+key, func() error {
		_, hdr, _ := c.do(c.anyUp(), http.MethodGet, "/kv/"+key+"?consistency=stale", "")
		group := hdr.Get("X-Ringkv-Group")
		if group == "" {
			return fmt.Errorf("no group header")
		}
		var g struct {
			Leader string `json:"leader"`
		}
		if status := c.getJSON(c.anyUp(), "/admin/groups/"+group, &g); status != http.StatusOK || g.Leader == "" {
			return fmt.Errorf("group %s has no leader yet", group)
		}
		for i, tn := range c.nodes {
			if tn.cfg.ID == g.Leader && tn.node != nil {
				idx = i
				return nil
			}
		}
		return fmt.Errorf("leader %s is not running", g.Leader)
	})
	return idx
}

func (c *testCluster) anyUp() int {
	for i, tn := range c.nodes {
		if tn.node != nil {
			return i
		}
	}
	c.t.Fatal("no node is running")
	return -1
}
