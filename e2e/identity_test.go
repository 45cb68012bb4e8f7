package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// Node identity through the binary: a node id is bound to the node that joined under
// it (the identity in its data dir), a data dir joins no other cluster, and a join at
// an address where nothing listens holds nothing back.

// nodeEntry returns node id as GET /admin/nodes on url lists it.
func nodeEntry(t *testing.T, url, id string) (openapi.Node, error) {
	t.Helper()
	resp, err := api(t, url).ListNodesWithResponse(context.Background())
	if err != nil {
		return openapi.Node{}, err
	}
	if resp.JSON200 == nil {
		return openapi.Node{}, fmt.Errorf("GET /admin/nodes: %s %s", resp.Status(), resp.Body)
	}
	for _, n := range resp.JSON200.Nodes {
		if n.Id == id {
			return n, nil
		}
	}
	return openapi.Node{}, fmt.Errorf("%s is not listed", id)
}

// postJoin is the hand-written `curl -X POST .../admin/nodes -d body`.
func postJoin(t *testing.T, url, body string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/admin/nodes", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// addProc starts one more serve process with args and returns its index.
func (c *cluster) addProc(name string, args ...string) int {
	c.t.Helper()
	p := &proc{args: append([]string{"serve"}, args...), logPath: filepath.Join(c.dir, name+".log")}
	scheme := "http://"
	if p.arg("--certs-dir") != "" {
		scheme = "https://"
	}
	p.httpURL = scheme + p.arg("--http-addr")
	c.procs = append(c.procs, p)
	c.start(len(c.procs) - 1)
	return len(c.procs) - 1
}

// exitStatus waits for process i to end by itself and returns its exit status.
func (c *cluster) exitStatus(i int, within time.Duration) int {
	c.t.Helper()
	p := c.procs[i]
	select {
	case <-p.exited:
	case <-time.After(within):
		c.t.Fatalf("%s still running after %v; its log ends:\n%s", p.logPath, within, c.lastLog(i))
	}
	return p.cmd.ProcessState.ExitCode() // set by the Wait in start
}

// mustPut writes key=value through url, retrying while the answer is a 503 that says
// nothing was done (a group electing a leader).
func mustPut(t *testing.T, url, key, value string) {
	t.Helper()
	eventually(t, 20*time.Second, "PUT "+key+" through "+url, func() error {
		resp, err := api(t, url).PutKeyWithBodyWithResponse(context.Background(), key, nil, "application/octet-stream", strings.NewReader(value))
		if err != nil {
			return err
		}
		if resp.StatusCode() != http.StatusOK && resp.StatusCode() != http.StatusCreated {
			return fmt.Errorf("%s %s", resp.Status(), resp.Body)
		}
		return nil
	})
}

func TestNodeIDCannotBeTakenOver(t *testing.T) {
	c := startProcCluster(t, 3)
	url := c.procs[0].httpURL
	held, err := nodeEntry(t, url, "node3")
	if err != nil || held.Identity == nil || *held.Identity == "" {
		t.Fatalf("node3: %+v %v; want it listed with its identity", held, err)
	}

	// The curl: re-address the live node3 by hand. Refused, naming the holder.
	status, ctype, body := postJoin(t, url, `{"id":"node3","http_addr":"127.0.0.7:8080","raft_addr":"127.0.0.7:7080"}`)
	var p openapi.Problem
	if status != http.StatusConflict || ctype != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Detail == nil {
		t.Fatalf("takeover POST: %d %s %s; want a 409 problem", status, ctype, body)
	}
	for _, s := range []string{*held.Identity, held.HttpAddr, held.RaftAddr} {
		if !strings.Contains(*p.Detail, s) {
			t.Errorf("the problem does not name the holder (%s): %s", s, *p.Detail)
		}
	}

	// The copy-paste slip: a second `serve --id node3 --join` with an empty data dir.
	// It is refused and exits non-zero, saying why.
	twin := c.addProc("node3-twin", "--id", "node3", "--data-dir", filepath.Join(c.dir, "node3-twin"),
		"--http-addr", "127.0.0.1:"+freePort(t), "--raft-addr", "127.0.0.1:"+freePort(t), "--join", strings.TrimPrefix(url, "http://"))
	if code := c.exitStatus(twin, 30*time.Second); code != 2 {
		t.Fatalf("the twin exited with %d, want 2; its log ends:\n%s", code, c.lastLog(twin))
	}
	if log := c.lastLog(twin); !strings.Contains(log, "join refused") || !strings.Contains(log, *held.Identity) {
		t.Fatalf("the twin's log does not say why it stopped:\n%s", log)
	}
	if now, err := nodeEntry(t, url, "node3"); err != nil || now.HttpAddr != held.HttpAddr || now.RaftAddr != held.RaftAddr {
		t.Fatalf("node3 was re-addressed: %+v -> %+v (%v)", held, now, err)
	}

	// The cluster keeps serving, node3 included.
	c.waitReplicated()
	for i, p := range c.procs[:3] {
		mustPut(t, p.httpURL, "identity-key", fmt.Sprint(i))
	}
	if status, v := readAnswered(t, c.procs[2].httpURL, "identity-key"); status != http.StatusOK || v != "2" {
		t.Fatalf("read through node3: %d %q", status, v)
	}
}

func TestNodeBackAtNewAddressesWithItsDataDirIsReaddressed(t *testing.T) {
	c := startProcCluster(t, 3)
	mustPut(t, c.procs[0].httpURL, "before-move", "v1")
	c.kill(2)
	p := c.procs[2]
	httpAddr, raftAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	for i, a := range p.args {
		switch a {
		case "--http-addr":
			p.args[i+1] = httpAddr
		case "--raft-addr":
			p.args[i+1] = raftAddr
		}
	}
	p.httpURL = "http://" + httpAddr
	c.start(2)
	c.waitReady(2)
	eventually(t, 30*time.Second, "node3 re-addressed and up", func() error {
		n, err := nodeEntry(t, c.procs[0].httpURL, "node3")
		if err != nil {
			return err
		}
		if n.HttpAddr != httpAddr || n.RaftAddr != raftAddr || n.State != "up" {
			return fmt.Errorf("node3 is %s at %s/%s", n.State, n.HttpAddr, n.RaftAddr)
		}
		return nil
	})
	c.waitReplicated()
	if status, v := readAnswered(t, p.httpURL, "before-move"); status != http.StatusOK || v != "v1" {
		t.Fatalf("read through the moved node3: %d %q", status, v)
	}
	mustPut(t, p.httpURL, "after-move", "v2")
}

func TestDataDirOfAnotherClusterExitsWithStatus2(t *testing.T) {
	c := startProcCluster(t, 1)
	// Another cluster, made by a single node of its own; then stopped.
	other := c.addProc("other", "--id", "other1", "--data-dir", filepath.Join(c.dir, "other1"),
		"--http-addr", "127.0.0.1:"+freePort(t), "--raft-addr", "127.0.0.1:"+freePort(t))
	c.waitReady(other)
	eventually(t, 10*time.Second, "the other cluster's id is in its data dir", func() error {
		raw, err := os.ReadFile(filepath.Join(c.dir, "other1", "identity.json"))
		if err != nil || !strings.Contains(string(raw), "cluster_id") {
			return fmt.Errorf("identity.json: %q %v", raw, err)
		}
		return nil
	})
	c.kill(other)
	// Its data dir started with --join to the first cluster: refused, exit status 2.
	again := c.addProc("other-joins", "--id", "other1", "--data-dir", filepath.Join(c.dir, "other1"),
		"--http-addr", "127.0.0.1:"+freePort(t), "--raft-addr", "127.0.0.1:"+freePort(t),
		"--join", strings.TrimPrefix(c.procs[0].httpURL, "http://"))
	if code := c.exitStatus(again, 30*time.Second); code != 2 {
		t.Fatalf("exit status %d, want 2; log:\n%s", code, c.lastLog(again))
	}
	if log := c.lastLog(again); !strings.Contains(log, "another cluster") {
		t.Fatalf("the log does not say why:\n%s", log)
	}
	if _, err := nodeEntry(t, c.procs[0].httpURL, "other1"); err == nil {
		t.Fatal("the other cluster's node was admitted")
	}
}

func TestJoinWhereNothingListensHoldsNothingBack(t *testing.T) {
	c := startProcCluster(t, 3, "--join-timeout", "5s")
	url := c.procs[0].httpURL
	ghost := fmt.Sprintf(`{"id":"ghost","http_addr":"127.0.0.1:%s","raft_addr":"127.0.0.1:%s"}`, freePort(t), freePort(t))
	if status, _, body := postJoin(t, url, ghost); status != http.StatusOK {
		t.Fatalf("join ghost: %d %s", status, body)
	}
	// A real node joins after it and receives replicas; the ghost is never up and
	// never holds any.
	n4 := c.addProc("node4", "--id", "node4", "--data-dir", filepath.Join(c.dir, "node4"),
		"--http-addr", "127.0.0.1:"+freePort(t), "--raft-addr", "127.0.0.1:"+freePort(t),
		"--join", strings.TrimPrefix(url, "http://"), "--join-timeout", "5s")
	c.waitReady(n4)
	eventually(t, 90*time.Second, "node4 holds replicas", func() error {
		g, err := nodeEntry(t, url, "ghost")
		if err != nil {
			return err
		}
		if g.State == "up" || (g.Replicas != nil && *g.Replicas > 0) {
			t.Fatalf("ghost is %s with %d replicas; it never answered a probe", g.State, deref(g.Replicas))
		}
		n, err := nodeEntry(t, url, "node4")
		if err != nil {
			return err
		}
		if n.Replicas == nil || *n.Replicas < 2 {
			return fmt.Errorf("node4 is %s with %v replicas", n.State, n.Replicas)
		}
		return nil
	})
	eventually(t, 30*time.Second, "ghost given up on", func() error {
		g, err := nodeEntry(t, url, "ghost")
		if err != nil {
			return err
		}
		if g.State != "down" || g.Detail == nil || !strings.Contains(*g.Detail, "not answered") {
			return fmt.Errorf("ghost is %s (%v)", g.State, g.Detail)
		}
		return nil
	})
	resp, err := api(t, url).DecommissionNodeWithResponse(context.Background(), "ghost", nil)
	if err != nil || resp.StatusCode() != http.StatusAccepted {
		t.Fatalf("decommission ghost: %v %s", err, resp.Body)
	}
	eventually(t, 60*time.Second, "ghost removed", func() error {
		g, err := nodeEntry(t, url, "ghost")
		if err != nil {
			return err
		}
		if g.State != "removed" {
			return fmt.Errorf("ghost is %s", g.State)
		}
		return nil
	})
	mustPut(t, c.procs[n4].httpURL, "after-ghost", "ok")
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
