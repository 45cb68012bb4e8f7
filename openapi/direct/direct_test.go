package direct

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// fakeCluster is a few HTTP servers that answer the admin API from one shared layout
// (4 partitions on equal arcs; partition p in group p%2+1) and answer /kv as ringkv
// would: served by the group's leader, or "forwarded" (answered naming the leader)
// when they do not lead it.
type fakeCluster struct {
	mu          sync.Mutex
	nodes       map[string]*httptest.Server
	addrs       map[string]string // node id -> http_addr, as /admin/nodes shows it
	leader      map[int64]string  // group -> leader node id
	unavailable map[string]bool   // nodes that answer /kv with 503
	served      map[string]int    // /kv requests a node served as the leader
	forwarded   int               // /kv requests that reached a node that does not lead
}

const fakePartitions = 4

func arcOf(p int) (start, end uint64) {
	width := ^uint64(0)/fakePartitions + 1
	return uint64(p) * width, uint64(p)*width + width - 1
}

// groupOf scans the arcs (no binary search: independent of the client's).
func groupOf(key string) int64 {
	h := HashKey(key)
	for p := range fakePartitions {
		if start, end := arcOf(p); start <= h && h <= end {
			return int64(p%2 + 1)
		}
	}
	panic("hash outside the ring")
}

func newFakeCluster(t *testing.T, ids ...string) *fakeCluster {
	return newFake(t, httptest.NewServer, ids)
}

// newFakeTLSCluster is a fakeCluster whose nodes serve HTTPS only (httptest's one
// certificate, which each node's srv.Client() trusts) and list their addresses as
// host:port, as secure ringkv nodes do.
func newFakeTLSCluster(t *testing.T, ids ...string) *fakeCluster {
	return newFake(t, httptest.NewTLSServer, ids)
}

func newFake(t *testing.T, start func(http.Handler) *httptest.Server, ids []string) *fakeCluster {
	c := &fakeCluster{nodes: map[string]*httptest.Server{}, addrs: map[string]string{}, leader: map[int64]string{},
		unavailable: map[string]bool{}, served: map[string]int{}}
	for _, id := range ids {
		srv := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serve(id, w, r) }))
		t.Cleanup(srv.Close)
		_, addr, _ := strings.Cut(srv.URL, "://")
		c.nodes[id], c.addrs[id] = srv, addr
	}
	return c
}

func (c *fakeCluster) set(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

func (c *fakeCluster) serve(self string, w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/admin/partitions":
		var ps []map[string]any
		for p := range fakePartitions {
			start, end := arcOf(p)
			ps = append(ps, map[string]any{"id": p, "group": p%2 + 1, "epoch": 1,
				"hash_start": fmt.Sprintf("%016x", start), "hash_end": fmt.Sprintf("%016x", end)})
		}
		reply(200, map[string]any{"epoch": 1, "partitions": ps})
	case "/admin/groups":
		var gs []map[string]any
		for g, l := range c.leader {
			gs = append(gs, map[string]any{"id": g, "leader": l, "term": 1, "commit_index": 1, "applied_index": 1,
				"replicas": []any{}, "partitions": []any{}})
		}
		reply(200, map[string]any{"groups": gs})
	case "/admin/nodes":
		var ns []map[string]any
		for id, addr := range c.addrs {
			ns = append(ns, map[string]any{"id": id, "http_addr": addr, "raft_addr": "-", "state": "up"})
		}
		reply(200, map[string]any{"nodes": ns})
	default:
		key, ok := strings.CutPrefix(r.URL.Path, "/kv/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		g := groupOf(key)
		if c.unavailable[self] || c.leader[g] == "" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(503)
			_, _ = io.WriteString(w, `{"title":"Service Unavailable","status":503}`)
			return
		}
		served := c.leader[g]
		if served == self {
			c.served[self]++
		} else {
			c.forwarded++
		}
		w.Header().Set("X-Ringkv-Node", served)
		w.Header().Set("X-Ringkv-Group", fmt.Sprint(g))
		w.Header().Set("X-Ringkv-Index", "1")
		w.Header().Set("ETag", `"1"`)
		switch r.Method {
		case http.MethodGet:
			reply(200, map[string]any{"key": key, "value": "v", "version": 1, "create_index": 1, "mod_index": 1, "group": g})
		case http.MethodPut:
			reply(200, map[string]any{"key": key, "version": 1, "created": false, "mod_index": 1})
		default:
			reply(200, map[string]any{"key": key, "deleted": true, "mod_index": 1})
		}
	}
}

func (c *fakeCluster) counts() (served map[string]int, forwarded int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	served = map[string]int{}
	for k, v := range c.served {
		served[k] = v
	}
	return served, c.forwarded
}

func newClient(t *testing.T, c *fakeCluster, seed string, opts ...Option) *Client {
	t.Helper()
	dc, err := New([]string{c.nodes[seed].URL}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dc
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not a stand-in for the condition
	}
}

func TestRoutesByHashRangeToTheLeader(t *testing.T) {
	c := newFakeCluster(t, "n1", "n2", "n3")
	c.leader[1], c.leader[2] = "n2", "n3"
	dc := newClient(t, c, "n1")
	ctx := context.Background()
	want := map[string]int{}
	for i := range 200 {
		key := fmt.Sprintf("k/%d", i)
		if i%4 == 0 {
			key = fmt.Sprintf("user:{%d}:name", i) // a tag: only "i" is hashed
		}
		leader := c.leader[groupOf(key)]
		want[leader] += 4
		put, err := dc.Put(ctx, key, []byte("v"), nil)
		if err != nil || put.StatusCode() != 200 || put.Headers200.XRingkvNode != leader {
			t.Fatalf("put %s: %v %+v", key, err, put)
		}
		stale := openapi.GetKeyParamsConsistency("stale")
		get, err := dc.Get(ctx, key, &openapi.GetKeyParams{Consistency: &stale})
		if err != nil || get.JSON200 == nil || get.Headers200.XRingkvNode != leader {
			t.Fatalf("get %s: %v %+v", key, err, get)
		}
		resp, err := dc.Send(ctx, key, true, func(base string) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, base+"/kv/"+key, nil)
		})
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Ringkv-Node") != leader {
			t.Fatalf("send %s: %v %+v", key, err, resp)
		}
		resp.Body.Close()
		del, err := dc.Delete(ctx, key, nil)
		if err != nil || del.JSON200 == nil || !del.JSON200.Deleted || del.Headers200.XRingkvNode != leader {
			t.Fatalf("delete %s: %v %+v", key, err, del)
		}
	}
	served, forwarded := c.counts()
	if forwarded != 0 || fmt.Sprint(served) != fmt.Sprint(want) {
		t.Fatalf("served %v (want %v), %d forwarded", served, want, forwarded)
	}
	if s := dc.Stats(); s.Refreshes != 1 || s.Misrouted != 0 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestLeadersOfATLSClusterAreReachedByHTTPS: /admin/nodes lists host:port, and a
// cluster reached over https must have its leaders reached over https too (plain http
// to a TLS port is answered 400 and names no node).
func TestLeadersOfATLSClusterAreReachedByHTTPS(t *testing.T) {
	c := newFakeTLSCluster(t, "n1", "n2", "n3")
	c.leader[1], c.leader[2] = "n2", "n3"
	dc := newClient(t, c, "n1", WithHTTPClient(c.nodes["n1"].Client()))
	ctx := context.Background()
	want := map[string]int{}
	for i := range 50 {
		key := fmt.Sprintf("k/%d", i)
		leader := c.leader[groupOf(key)]
		want[leader]++
		put, err := dc.Put(ctx, key, []byte("v"), nil)
		if err != nil || put.StatusCode() != 200 || put.Headers200.XRingkvNode != leader {
			t.Fatalf("put %s: %v %d %s", key, err, put.StatusCode(), put.Body)
		}
	}
	served, forwarded := c.counts()
	if forwarded != 0 || fmt.Sprint(served) != fmt.Sprint(want) {
		t.Fatalf("served %v (want %v), %d forwarded", served, want, forwarded)
	}
	if s := dc.Stats(); s.Misrouted != 0 || s.Fallbacks != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// keyIn returns a key of group g.
func keyIn(g int64) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("key-%d", i); groupOf(k) == g {
			return k
		}
	}
}

func TestRefreshesAfterAForwardedAnswer(t *testing.T) {
	c := newFakeCluster(t, "n1", "n2", "n3")
	c.leader[1], c.leader[2] = "n2", "n3"
	dc := newClient(t, c, "n1", WithMinRefreshInterval(time.Millisecond))
	ctx := context.Background()
	key := keyIn(1)
	c.set(func() { c.leader[1] = "n1" }) // leadership moves; the client does not know yet
	resp, err := dc.Put(ctx, key, []byte("v"), nil)
	if err != nil || resp.StatusCode() != 200 || resp.Headers200.XRingkvNode != "n1" {
		t.Fatalf("put through the old leader: %v %+v", err, resp)
	}
	if _, forwarded := c.counts(); forwarded != 1 {
		t.Fatalf("%d forwarded, want 1", forwarded)
	}
	eventually(t, "refresh after the forwarded answer", func() error {
		if s := dc.Stats(); s.Misrouted != 1 || s.Refreshes != 2 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	before, _ := c.counts()
	if _, err := dc.Put(ctx, key, []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if after, forwarded := c.counts(); forwarded != 1 || after["n1"] != before["n1"]+1 {
		t.Fatalf("after the refresh: served %v, %d forwarded", after, forwarded)
	}
}

func TestRefreshesAfter503(t *testing.T) {
	c := newFakeCluster(t, "n1", "n2", "n3")
	c.leader[1], c.leader[2] = "n2", "n3"
	dc := newClient(t, c, "n1", WithMinRefreshInterval(time.Millisecond))
	ctx := context.Background()
	key := keyIn(2)
	// n3 lost its leadership and answers 503 until the client learns n2 leads.
	c.set(func() { c.unavailable["n3"], c.leader[2] = true, "n2" })
	if resp, err := dc.Get(ctx, key, nil); err != nil || resp.StatusCode() != 503 {
		t.Fatalf("get from the deposed leader: %v %+v", err, resp)
	}
	eventually(t, "refresh after 503", func() error {
		if s := dc.Stats(); s.Misrouted != 1 || s.Refreshes != 2 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	resp, err := dc.Get(ctx, key, nil)
	if err != nil || resp.StatusCode() != 200 || resp.Headers200.XRingkvNode != "n2" {
		t.Fatalf("get after the refresh: %v %+v", err, resp)
	}
}

func TestRefreshIsRateLimited(t *testing.T) {
	c := newFakeCluster(t, "n1", "n2")
	c.leader[1], c.leader[2] = "n1", "n2"
	dc := newClient(t, c, "n1", WithMinRefreshInterval(time.Hour))
	c.set(func() { c.leader[1] = "n2" })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := dc.Get(context.Background(), keyIn(1), nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// Count refreshes only once none is still running, so a broken limit cannot hide
	// behind refreshes in flight.
	for deadline := time.Now().Add(5 * time.Second); dc.refreshing.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a refresh is still running after 5 s")
		}
	}
	if s := dc.Stats(); s.Misrouted != 80 || s.Refreshes != 1 {
		t.Fatalf("stats %+v: 80 misrouted answers within the interval must not refresh", s)
	}
}

func TestFallsBackToASeedWhenTheLeaderIsUnreachable(t *testing.T) {
	c := newFakeCluster(t, "n1", "n2")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addrs["n3"] = ln.Addr().String()
	ln.Close() // n3 is in the table but refuses connections
	c.leader[1], c.leader[2] = "n2", "n3"
	dc := newClient(t, c, "n1", WithMinRefreshInterval(time.Hour))
	ctx := context.Background()
	key := keyIn(2)
	// The seed n1 answers in n3's name (as if it forwarded there): what counts is that
	// the request was answered instead of failing.
	put, err := dc.Put(ctx, key, []byte("v"), nil)
	if err != nil || put.StatusCode() != 200 {
		t.Fatalf("put: %v %+v", err, put)
	}
	get, err := dc.Get(ctx, key, nil)
	if err != nil || get.StatusCode() != 200 {
		t.Fatalf("get: %v %+v", err, get)
	}
	// The first request found n3 unreachable; the second went to the seed at once.
	if s := dc.Stats(); s.Fallbacks != 2 {
		t.Fatalf("stats %+v, want 2 fallbacks", s)
	}
	if _, forwarded := c.counts(); forwarded != 2 {
		t.Fatalf("%d requests reached the seed, want 2", forwarded)
	}
}

func TestUnknownLeaderGoesThroughASeed(t *testing.T) {
	c := newFakeCluster(t, "n1", "n2")
	c.leader[1] = "n2" // group 2 has no leader
	dc := newClient(t, c, "n1", WithMinRefreshInterval(time.Millisecond))
	if resp, err := dc.Get(context.Background(), keyIn(2), nil); err != nil || resp.StatusCode() != 503 {
		t.Fatalf("get without a leader: %v %+v", err, resp)
	}
	if s := dc.Stats(); s.Fallbacks != 1 {
		t.Fatalf("stats %+v, want a request through the seed", s)
	}
	c.set(func() { c.leader[2] = "n2" })
	eventually(t, "leader learned", func() error {
		if _, err := dc.Get(context.Background(), keyIn(2), nil); err != nil {
			return err
		}
		if served, _ := c.counts(); served["n2"] == 0 {
			return fmt.Errorf("not served by n2 directly yet; stats %+v", dc.Stats())
		}
		return nil
	})
}

func TestRoutingAllocatesNothing(t *testing.T) {
	c := newFakeCluster(t, "n1", "n2")
	c.leader[1], c.leader[2] = "n1", "n2"
	dc := newClient(t, c, "n1")
	if n := testing.AllocsPerRun(1000, func() { dc.pick(HashKey("user:{42}:name")) }); n != 0 {
		t.Fatalf("hashing and looking up a key allocates %v times", n)
	}
}

// BenchmarkGet compares a hand-made request with the direct client's, against a server
// that answers as cheaply as it can (so the client's share shows):
//
//	go test -run X -bench Get -benchmem ./openapi/direct/
func BenchmarkGet(b *testing.B) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		switch r.URL.Path {
		case "/admin/partitions":
			_, _ = io.WriteString(w, `{"epoch":1,"partitions":[{"id":0,"group":1,"epoch":1,"hash_start":"0000000000000000","hash_end":"ffffffffffffffff"}]}`)
		case "/admin/groups":
			_, _ = io.WriteString(w, `{"groups":[{"id":1,"leader":"n1","term":1,"commit_index":1,"applied_index":1,"replicas":[],"partitions":[]}]}`)
		case "/admin/nodes":
			_, _ = io.WriteString(w, `{"nodes":[{"id":"n1","http_addr":"`+srv.Listener.Addr().String()+`","raft_addr":"-","state":"up"}]}`)
		default:
			w.Header()["X-Ringkv-Node"] = []string{"n1"}
			_, _ = io.WriteString(w, `{"key":"k","value":"v","version":1,"create_index":1,"mod_index":1,"group":1}`)
		}
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	dc, err := New([]string{srv.URL}, WithHTTPClient(hc))
	if err == nil {
		err = dc.Refresh(context.Background())
	}
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	stale := openapi.GetKeyParamsConsistency("stale")
	params := &openapi.GetKeyParams{Consistency: &stale}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench/%08d", i)
	}
	drain := func(resp *http.Response, err error) {
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.Run("plain", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/kv/"+keys[i%len(keys)]+"?consistency=stale", nil)
			drain(hc.Do(req))
		}
	})
	b.Run("direct-send", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			key := keys[i%len(keys)]
			drain(dc.Send(ctx, key, true, func(base string) (*http.Request, error) {
				return http.NewRequestWithContext(ctx, http.MethodGet, base+"/kv/"+key+"?consistency=stale", nil)
			}))
		}
	})
	b.Run("direct-parsed", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := dc.Get(ctx, keys[i%len(keys)], params); err != nil {
				b.Fatal(err)
			}
		}
	})
}
