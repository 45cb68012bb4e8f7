package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ringkv/ringkv/placement"
)

// Helpers for the placement tests: growing the cluster, a client load that remembers
// every acknowledged write, and the checks that the cluster has settled.

// addNode starts one more node joining the cluster and waits until it is ready.
func (c *testCluster) addNode(opts ...func(*Config)) int {
	c.t.Helper()
	cfg := c.nodes[0].cfg
	cfg.ID = fmt.Sprintf("n%d", len(c.nodes)+1)
	cfg.DataDir = c.t.TempDir()
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join = []string{c.nodes[c.anyUp()].cfg.HTTPAddr}
	cfg.Log = testLogger(c.t, cfg.ID)
	for _, o := range opts {
		o(&cfg)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, &testNode{cfg: cfg})
	i := len(c.nodes) - 1
	c.mu.Unlock()
	c.start(i)
	c.waitReady(i)
	return i
}

// table is the placement table as the meta leader holds it.
func (c *testCluster) table() *placement.Table {
	for _, tn := range c.nodes {
		if tn.node != nil && tn.node.metaGroup.IsLeader() {
			return tn.node.meta.Table()
		}
	}
	return nil
}

// settled says why the cluster is not settled, or nil when: there is a meta leader,
// every data group has a leader whose voters are exactly the table's replicas (no
// non-voter left over), and no running node holds a replica the table does not give it.
func (c *testCluster) settled() error {
	t, gs, err := c.tableAndGroups()
	if err != nil {
		return err
	}
	for _, g := range gs.Groups {
		if g.ID == placement.MetaGroup {
			continue
		}
		tg, ok := t.Group(g.ID)
		if !ok {
			return fmt.Errorf("group %d is not in the table", g.ID)
		}
		var voters, members []string
		for _, r := range g.Replicas {
			members = append(members, r.Node)
			if r.Voter {
				voters = append(voters, r.Node)
			}
		}
		if g.Leader == "" || !sameNodes(voters, tg.Replicas) || !sameNodes(members, tg.Replicas) {
			return fmt.Errorf("group %d: leader %q, members %v, voters %v; the table says %v", g.ID, g.Leader, members, voters, tg.Replicas)
		}
	}
	for _, tn := range c.nodes {
		if tn.node == nil {
			continue
		}
		mine := t.GroupsOf(tn.cfg.ID)
		for _, g := range tn.node.host.Groups() {
			if g.ID() != placement.MetaGroup && !slices.Contains(mine, g.ID()) {
				return fmt.Errorf("%s still runs a replica of group %d the table does not give it", tn.cfg.ID, g.ID())
			}
		}
	}
	return nil
}

// tableAndGroups is the meta leader's table and the groups as GET /admin/groups shows them.
func (c *testCluster) tableAndGroups() (*placement.Table, groupsJSON, error) {
	var gs groupsJSON
	t := c.table()
	if t == nil {
		return nil, gs, fmt.Errorf("no meta leader")
	}
	if status := c.getJSON(c.anyUp(), "/admin/groups", &gs); status != http.StatusOK {
		return nil, gs, fmt.Errorf("GET /admin/groups: %d", status)
	}
	return t, gs, nil
}

func sameNodes(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// balanced says whether replica and leader counts of the running, not removed nodes
// differ by at most one.
func (c *testCluster) balanced() error {
	t, gs, err := c.tableAndGroups()
	if err != nil {
		return err
	}
	replicas, leaders := map[string]int{}, map[string]int{}
	for _, tn := range c.nodes {
		if n, ok := t.Node(tn.cfg.ID); ok && tn.node != nil && n.State != placement.NodeRemoved {
			replicas[n.ID], leaders[n.ID] = len(t.GroupsOf(n.ID)), 0
		}
	}
	for _, g := range gs.Groups {
		if g.ID != placement.MetaGroup {
			leaders[g.Leader]++
		}
	}
	for what, m := range map[string]map[string]int{"replicas": replicas, "leaders": leaders} {
		if d := placement.Spread(m); d > 1 {
			return fmt.Errorf("%s per node %v differ by %d", what, m, d)
		}
	}
	return nil
}

// load writes keys through whichever nodes run, remembering the last acknowledged
// value of each (and the writes of unknown outcome after it), and reads them back as
// it goes: a read older than the last acknowledged write of its key is a lost write.
type load struct {
	c     *testCluster
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	acked map[string]int // key -> last acknowledged sequence number
	// maybe: key -> sequence numbers of writes whose outcome is unknown (no answer, a
	// 504, or a 503 saying so): any of them may have been applied, so the final value
	// may be one of those written after the last acknowledged one.
	maybe map[string]map[int]bool
	reads int
	bad   []string
}

func (c *testCluster) startLoad(keys int) *load {
	l := &load{c: c, stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]int{}, maybe: map[string]map[int]bool{}}
	go func() {
		defer close(l.done)
		for n := 0; ; n++ {
			select {
			case <-l.stop:
				return
			default:
			}
			urls := c.running()
			if len(urls) == 0 {
				continue
			}
			key := fmt.Sprintf("load-%d", n%keys)
			status, body := l.send(http.MethodPut, urls[n%len(urls)]+"/kv/"+key, fmt.Sprint(n))
			l.mu.Lock()
			switch {
			case status == http.StatusOK || status == http.StatusCreated:
				l.acked[key] = n
			case status == 0 || status == http.StatusGatewayTimeout || strings.Contains(string(body), `"outcome":"unknown"`):
				if l.maybe[key] == nil {
					l.maybe[key] = map[int]bool{}
				}
				l.maybe[key][n] = true
			}
			l.mu.Unlock()
			l.check(urls[(n+1)%len(urls)], fmt.Sprintf("load-%d", (n*7)%keys))
		}
	}()
	return l
}

// send is one request of the load (off the test goroutine, so it reports no failure
// itself).
func (l *load) send(method, url, body string) (int, []byte) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	resp, err := l.c.client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// check reads key through base and records a value older than the last acknowledged.
func (l *load) check(base, key string) {
	l.mu.Lock()
	want, ok := l.acked[key]
	l.mu.Unlock()
	status, body := l.send(http.MethodGet, base+"/kv/"+key, "")
	var kv keyValue
	if !ok || status != http.StatusOK || json.Unmarshal(body, &kv) != nil {
		return
	}
	var got int
	fmt.Sscan(kv.Value, &got)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if got < want {
		l.bad = append(l.bad, fmt.Sprintf("%s: read %d after %d was acknowledged", key, got, want))
	}
}

// finish stops the load and checks every acknowledged key through every running node.
func (l *load) finish() {
	t := l.c.t
	t.Helper()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) == 0 {
		t.Fatal("no write was acknowledged during the test")
	}
	for i, tn := range l.c.nodes {
		if tn.node == nil {
			continue
		}
		for key, want := range l.acked {
			// A 503 (a leadership change the read waited out) is asked again; a wrong
			// value is not.
			var status int
			var body []byte
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if status, _, body = l.c.do(i, http.MethodGet, "/kv/"+key, ""); status != http.StatusServiceUnavailable {
					break
				}
			}
			var kv keyValue
			_ = json.Unmarshal(body, &kv)
			var got int
			_, err := fmt.Sscan(kv.Value, &got)
			// The last acknowledged value, or a later write whose outcome was unknown.
			if status != http.StatusOK || err != nil || (got != want && !(got > want && l.maybe[key][got])) {
				l.bad = append(l.bad, fmt.Sprintf("%s via %s: %d %s, want %d", key, tn.cfg.ID, status, body, want))
			}
		}
	}
	if len(l.bad) > 0 {
		t.Fatalf("%d lost or stale writes, e.g. %v", len(l.bad), l.bad[:min(5, len(l.bad))])
	}
	if l.reads == 0 {
		t.Fatal("no read was checked during the load")
	}
	t.Logf("load: %d keys acknowledged, %d reads checked during the test, all found at the end", len(l.acked), l.reads)
}

// waitState waits until GET /admin/nodes shows node id in state.
func (c *testCluster) waitState(id, state string, within time.Duration) {
	c.t.Helper()
	eventually(c.t, within, id+" "+state, func() error {
		var ns struct {
			Nodes []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"nodes"`
		}
		if status := c.getJSON(c.anyUp(), "/admin/nodes", &ns); status != http.StatusOK {
			return fmt.Errorf("GET /admin/nodes: %d", status)
		}
		for _, n := range ns.Nodes {
			if n.ID == id {
				if n.State != state {
					return fmt.Errorf("%s is %s", id, n.State)
				}
				return nil
			}
		}
		return fmt.Errorf("%s is not listed", id)
	})
}

// indexOf returns the harness index of node id.
func (c *testCluster) indexOf(id string) int {
	for i, tn := range c.nodes {
		if tn.cfg.ID == id {
			return i
		}
	}
	c.t.Fatalf("no node %s", id)
	return -1
}
