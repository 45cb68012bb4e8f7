package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/placement"
)

// runUntilExit starts a node from cfg and returns what Run returned, failing the test
// when it is still running after within (it must not take over anything meanwhile).
func runUntilExit(t *testing.T, cfg Config, within time.Duration) error {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		_ = n.Close()
		<-done
		t.Fatalf("%s still running after %v; it should have been refused", cfg.ID, within)
		return nil
	}
}

func TestANodeIDCannotBeTakenOver(t *testing.T) {
	c := startCluster(t, 3)
	n3 := c.nodes[2].cfg
	before, _ := c.leaderTable().Node("n3")

	// A hand-written POST re-addressing the live n3: refused, naming the holder.
	body := `{"id":"n3","http_addr":"127.0.0.7:8080","raft_addr":"127.0.0.7:7080"}`
	status, hdr, resp := c.do(0, http.MethodPost, "/admin/nodes", body)
	if status != http.StatusConflict || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("takeover POST: %d %s %s, want a 409 problem", status, hdr.Get("Content-Type"), resp)
	}
	for _, s := range []string{placement.Fingerprint(before.UUID), n3.HTTPAddr, n3.RaftAddr} {
		if !strings.Contains(string(resp), s) {
			t.Errorf("the problem does not name the holder (%s): %s", s, resp)
		}
	}
	// The identity is what re-addresses a node: no answer to anyone shows it, only
	// its fingerprint (the problem, the node list, a probe of the node itself).
	for _, path := range []string{"/admin/nodes", "/internal/status", "/internal/status?nonce=abc"} {
		_, _, got := c.do(2, http.MethodGet, path, "")
		if strings.Contains(string(got), before.UUID) {
			t.Errorf("GET %s shows n3's identity: %s", path, got)
		}
	}
	if strings.Contains(string(resp), before.UUID) {
		t.Errorf("the 409 shows n3's identity: %s", resp)
	}

	// A second `serve --id n3 --join` with an empty data dir: refused, and it stops.
	twin := n3
	twin.DataDir = t.TempDir()
	twin.HTTPAddr, twin.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	twin.Log = testLogger(t, "n3-twin")
	err := runUntilExit(t, twin, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "join refused") || !strings.Contains(err.Error(), placement.Fingerprint(before.UUID)) {
		t.Fatalf("the twin's Run: %v; want a join refusal naming the holder", err)
	}
	if after, _ := c.leaderTable().Node("n3"); after.HTTPAddr != before.HTTPAddr || after.RaftAddr != before.RaftAddr || after.UUID != before.UUID {
		t.Fatalf("n3 was re-addressed: %+v -> %+v", before, after)
	}
	c.waitReplicated(3)
	c.mustPut(0, "after-takeover-attempts", "ok")
	if status, kv := c.get(2, "after-takeover-attempts", ""); status != http.StatusOK || kv.Value != "ok" {
		t.Fatalf("read through n3: %d %+v", status, kv)
	}
}

func TestANodeBackAtNewAddressesIsReaddressed(t *testing.T) {
	c := startCluster(t, 3)
	c.mustPut(0, "before-move", "v1")
	c.stop(2)
	c.nodes[2].cfg.HTTPAddr, c.nodes[2].cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.start(2)
	c.waitReady(2)
	moved := c.nodes[2].cfg
	eventually(t, 30*time.Second, "n3 re-addressed", func() error {
		n, _ := c.leaderTable().Node("n3")
		if n.HTTPAddr != moved.HTTPAddr || n.RaftAddr != moved.RaftAddr || n.State != placement.NodeUp {
			return fmt.Errorf("n3 is %+v, want it up at %s/%s", n, moved.HTTPAddr, moved.RaftAddr)
		}
		return nil
	})
	c.waitReplicated(3)
	if status, kv := c.get(2, "before-move", ""); status != http.StatusOK || kv.Value != "v1" {
		t.Fatalf("read through the moved n3: %d %+v", status, kv)
	}
	c.mustPut(2, "after-move", "v2")
}

func TestADataDirOfAnotherClusterDoesNotJoin(t *testing.T) {
	a := startCluster(t, 1)
	b := startCluster(t, 1)
	var ident identity
	raw, err := os.ReadFile(filepath.Join(a.nodes[0].cfg.DataDir, identityFile))
	if err != nil || json.Unmarshal(raw, &ident) != nil || ident.NodeUUID == "" {
		t.Fatalf("identity file: %v %s", err, raw)
	}
	eventually(t, 10*time.Second, "cluster id recorded in the data dir", func() error {
		raw, _ := os.ReadFile(filepath.Join(a.nodes[0].cfg.DataDir, identityFile))
		_ = json.Unmarshal(raw, &ident)
		if ident.ClusterID != a.leaderTable().ClusterID || ident.ClusterID == "" {
			return fmt.Errorf("identity file says cluster %q, the table %q", ident.ClusterID, a.leaderTable().ClusterID)
		}
		return nil
	})
	if a.leaderTable().ClusterID == b.leaderTable().ClusterID {
		t.Fatal("two clusters share an id")
	}
	a.stop(0)
	cfg := a.nodes[0].cfg
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join = []string{b.nodes[0].cfg.HTTPAddr}
	err = runUntilExit(t, cfg, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Fatalf("Run with a data dir of another cluster: %v", err)
	}
	if tab := b.leaderTable(); len(tab.Nodes) != 1 || tab.Nodes[0].ID != "n1" {
		t.Fatalf("cluster b's members changed: %+v", tab.Nodes)
	}
}

func TestAJoinWhereNothingListensHoldsNothingBack(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.JoinTimeout = 3 * time.Second })
	ghost := fmt.Sprintf(`{"id":"ghost","http_addr":"127.0.0.1:%s","raft_addr":"127.0.0.1:%s"}`, freePort(t), freePort(t))
	if status, _, body := c.do(0, http.MethodPost, "/admin/nodes", ghost); status != http.StatusOK {
		t.Fatalf("join ghost: %d %s", status, body)
	}
	// A real node joins after it: it gets replicas; the ghost never is up nor holds any.
	c.addNode(func(cfg *Config) { cfg.JoinTimeout = 3 * time.Second })
	eventually(t, 90*time.Second, "n4 holds replicas and the cluster settles", func() error {
		tab := c.table()
		if tab == nil {
			return fmt.Errorf("no meta leader")
		}
		if n, _ := tab.Node("ghost"); n.State != placement.NodeJoining || len(tab.GroupsOf("ghost")) > 0 {
			t.Fatalf("ghost is %s with %d replicas; it never answered a probe", n.State, len(tab.GroupsOf("ghost")))
		}
		if len(tab.GroupsOf("n4")) == 0 {
			return fmt.Errorf("n4 holds no replica")
		}
		if err := c.settled(); err != nil {
			return err
		}
		return c.balanced()
	})
	c.waitState("ghost", "down", 30*time.Second) // given up on after JoinTimeout
	var ns struct {
		Nodes []struct {
			ID, State, Detail string
		} `json:"nodes"`
	}
	c.getJSON(0, "/admin/nodes", &ns)
	i := slices.IndexFunc(ns.Nodes, func(n struct{ ID, State, Detail string }) bool { return n.ID == "ghost" })
	if i < 0 || !strings.Contains(ns.Nodes[i].Detail, "never answered") && !strings.Contains(ns.Nodes[i].Detail, "not answered") {
		t.Fatalf("ghost's state does not say why: %+v", ns.Nodes)
	}
	if status, _, body := c.do(0, http.MethodDelete, "/admin/nodes/ghost", ""); status != http.StatusAccepted {
		t.Fatalf("decommission ghost: %d %s", status, body)
	}
	c.waitState("ghost", "removed", 30*time.Second)
	c.mustPut(0, "after-ghost", "ok")
}

func TestRemovedOnlyOnceOutOfTheMetaGroup(t *testing.T) {
	c := startCluster(t, 4)
	eventually(t, 60*time.Second, "4 nodes settled", c.settled)
	if status, _, body := c.do(0, http.MethodDelete, "/admin/nodes/n4", ""); status != http.StatusAccepted {
		t.Fatalf("decommission: %d %s", status, body)
	}
	// Watch the meta leader's table: the moment it says removed, the meta group's
	// configuration must already be without n4.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("n4 not removed after 90s")
		}
		var leader *Node
		for _, tn := range c.nodes {
			if tn.node != nil && tn.node.metaGroup.IsLeader() {
				leader = tn.node
			}
		}
		if leader == nil {
			time.Sleep(time.Millisecond) // poll interval while there is no meta leader
			continue
		}
		if n, _ := leader.meta.Table().Node("n4"); n.State == placement.NodeRemoved {
			f := leader.metaGroup.Raft().GetConfiguration()
			if err := f.Error(); err != nil {
				t.Fatal(err)
			}
			for _, s := range f.Configuration().Servers {
				if string(s.ID) == "n4" {
					t.Fatalf("n4 is removed while the meta group still has it (%v)", s.Suffrage)
				}
			}
			break
		}
		time.Sleep(time.Millisecond) // poll interval, not a stand-in for the condition
	}
	c.stop(c.indexOf("n4"))
	c.mustPut(0, "after-removal", "ok")
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func TestReplacingANodeWhoseDiskDied(t *testing.T) {
	c := startCluster(t, 3)
	c.mustPut(0, "before-disk-died", "v1")
	old, _ := c.leaderTable().Node("n3")
	c.stop(2)
	// Its disk died: the same id from an empty data dir is refused while the old
	// member is in the table...
	wiped := c.nodes[2].cfg
	wiped.DataDir = t.TempDir()
	wiped.HTTPAddr, wiped.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	if err := runUntilExit(t, wiped, 20*time.Second); err == nil || !strings.Contains(err.Error(), placement.Fingerprint(old.UUID)) {
		t.Fatalf("a wiped n3 joined while the old member is listed: %v", err)
	}
	// ...and admitted once the old member is decommissioned and removed.
	if status, _, body := c.do(0, http.MethodDelete, "/admin/nodes/n3", ""); status != http.StatusAccepted {
		t.Fatalf("decommission the dead n3: %d %s", status, body)
	}
	c.waitState("n3", "removed", 60*time.Second)
	c.nodes[2].cfg = wiped
	c.start(2)
	c.waitReady(2)
	c.waitReplicated(3)
	if n, _ := c.leaderTable().Node("n3"); n.UUID == old.UUID || n.UUID == "" || n.State != placement.NodeUp {
		t.Fatalf("the new n3: %+v (the old one was %s)", n, old.UUID)
	}
	if status, kv := c.get(2, "before-disk-died", ""); status != http.StatusOK || kv.Value != "v1" {
		t.Fatalf("read through the new n3: %d %+v", status, kv)
	}
}

func TestAWipedNodeAtAMembersAddressGetsNoRaftTraffic(t *testing.T) {
	c := startCluster(t, 3)
	c.mustPut(0, "before-wipe", "v1")
	c.stop(2)
	// n3's disk was wiped; it comes back at its own addresses, its --join pointing at
	// a member that does not answer, so its join stays unanswered.
	wiped := c.nodes[2].cfg
	wiped.DataDir = t.TempDir()
	wiped.Join = []string{"127.0.0.1:" + freePort(t)}
	n, err := New(wiped)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	defer func() {
		_ = n.Close()
		<-done
	}()
	// Over a few seconds (many heartbeats of the meta and data leaders, which still
	// send n3's share to this address), it must receive nothing: no meta log entry, no
	// data replica.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st := n.metaGroup.Status(); st.LastIndex > 0 || len(n.host.Groups()) > 1 {
			t.Fatalf("the wiped n3 took part in Raft before its join was accepted: meta last index %d, %d replicas", st.LastIndex, len(n.host.Groups()))
		}
		time.Sleep(20 * time.Millisecond) // poll interval of an invariant watched over the window
	}
	c.mustPut(0, "after-wipe", "v2")
}

// leaderTable is the meta leader's table, once there is a meta leader.
func (c *testCluster) leaderTable() *placement.Table {
	c.t.Helper()
	var tab *placement.Table
	eventually(c.t, 20*time.Second, "a meta leader", func() error {
		if tab = c.table(); tab == nil {
			return fmt.Errorf("no meta leader")
		}
		return nil
	})
	return tab
}

// TestJoinsAreCheckedBeforeTheyCostAnEntry: a refused join (an id held by another
// identity, a malformed id or address) is answered without a Raft entry, so a client
// cannot grow the meta log with refusals; a node whose id needs escaping in a URL can
// be decommissioned by it.
func TestJoinsAreCheckedBeforeTheyCostAnEntry(t *testing.T) {
	c := startCluster(t, 3)
	c.waitReplicated(3)
	metaIndex := func() uint64 {
		for _, tn := range c.nodes {
			if tn.node != nil && tn.node.metaGroup.IsLeader() {
				return tn.node.metaGroup.Status().LastIndex
			}
		}
		t.Fatal("no meta leader")
		return 0
	}
	before := metaIndex()
	for i := range 20 {
		body := fmt.Sprintf(`{"id":"n1","http_addr":"127.0.0.9:%d","raft_addr":"127.0.0.9:7080","node_uuid":"%d"}`, 9000+i, i)
		if status, _, resp := c.do(0, http.MethodPost, "/admin/nodes", body); status != http.StatusConflict {
			t.Fatalf("a join naming n1 with another identity: %d %s", status, resp)
		}
	}
	if after := metaIndex(); after > before+2 {
		t.Fatalf("20 refused joins grew the meta log from %d to %d", before, after)
	}
	for _, body := range []string{
		`{"id":"../../etc","http_addr":"127.0.0.9:1","raft_addr":"127.0.0.9:2"}`,
		`{"id":"a b","http_addr":"127.0.0.9:1","raft_addr":"127.0.0.9:2"}`,
		`{"id":"x2","http_addr":"not an addr","raft_addr":"127.0.0.9:2"}`,
		`{"id":"x3","http_addr":"127.0.0.9:1","raft_addr":"::::"}`,
	} {
		if status, hdr, resp := c.do(0, http.MethodPost, "/admin/nodes", body); status != http.StatusBadRequest || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("join %s: %d %s, want a 400 problem", body, status, resp)
		}
	}
	if status, _, resp := c.do(0, http.MethodPost, "/admin/nodes", `{"id":"<odd>id","http_addr":"127.0.0.9:1","raft_addr":"127.0.0.9:2"}`); status != http.StatusOK {
		t.Fatalf("join of an id that needs escaping: %d %s", status, resp)
	}
	if status, _, resp := c.do(0, http.MethodDelete, "/admin/nodes/%3Codd%3Eid", ""); status != http.StatusAccepted {
		t.Fatalf("decommission by the escaped id: %d %s", status, resp)
	}
	c.waitState("<odd>id", "removed", 60*time.Second)
}

// TestDataDirIsItsOwnersAlone: the data dir holds every member's identity (in the meta
// group's log), so it is made 0700, and an existing one open to others is narrowed.
func TestDataDirIsItsOwnersAlone(t *testing.T) {
	quiet := testLogger(t, "dir")
	fresh := filepath.Join(t.TempDir(), "new")
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{fresh, open} {
		if err := privateDir(dir, quiet); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v, want 0700", dir, st.Mode().Perm(), err)
		}
	}
}
