package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// composeRun is a compose project started from the repository's compose.yaml.
type composeRun struct {
	t       *testing.T
	cmd     []string // "docker compose" or "docker-compose"
	project string
	env     []string
	urls    map[string]string // service -> published API URL
}

func (c *composeRun) run(args ...string) (string, error) {
	full := append(append(append([]string{}, c.cmd[1:]...), "-p", c.project, "-f", "../compose.yaml"), args...)
	cmd := exec.Command(c.cmd[0], full...)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *composeRun) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("compose %v: %v\n%s", args, err, out)
	}
	return out
}

func (c *composeRun) container(service string) string {
	return strings.TrimSpace(c.must("ps", "-q", service))
}

func (c *composeRun) waitHealthy(service string) {
	c.t.Helper()
	eventually(c.t, 90*time.Second, service+" healthy", func() error {
		id := c.container(service)
		out, err := exec.Command("docker", "inspect", "--format", "{{.State.Health.Status}}", id).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if s := strings.TrimSpace(string(out)); s != "healthy" {
			return fmt.Errorf("health %s", s)
		}
		return nil
	})
}

func composeCommand() []string {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	return nil
}

// TestComposeCluster builds the image with `make image`, runs compose.yaml's 3-node
// cluster, cuts the container leading a group off the network, reconnects it, and
// restarts every container in turn, checking that no acknowledged write is lost.
func TestComposeCluster(t *testing.T) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("\n\n*** SKIPPED: no Docker engine answers (%v: %s): the container tests did not run ***\n", err, bytes.TrimSpace(out))
	}
	cc := composeCommand()
	if cc == nil {
		t.Fatal("a Docker engine answers but neither `docker compose` nor `docker-compose` is installed")
	}
	if out, err := exec.Command("make", "-C", "..", "image").CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	sweepOldProjects(t)
	t.Run("docker run gives a working single node", testSingleContainer)
	c := &composeRun{t: t, cmd: cc, project: fmt.Sprintf("ringkve2e%d", rand.IntN(1_000_000)), urls: map[string]string{}}
	for i, svc := range []string{"node1", "node2", "node3"} {
		port := freePort(t)
		c.env = append(c.env, fmt.Sprintf("RINGKV_PORT%d=%s", i+1, port))
		c.urls[svc] = "https://127.0.0.1:" + port
	}
	// compose.yaml runs the cluster secure; its certs step signs with the tests' CA
	// (RINGKV_CERTS), so the tests' clients (tls_test.go) trust the nodes and
	// authenticate with their admin certificate.
	c.env = append(c.env, "RINGKV_CERTS="+composeCertsDir(t))
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.run("logs", "--tail", "30")
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := c.run("down", "-v", "--remove-orphans", "--timeout", "5"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	c.must("up", "-d")
	for _, svc := range []string{"node1", "node2", "node3"} {
		c.waitHealthy(svc)
	}
	cl := &cluster{t: t}
	for _, svc := range []string{"node1", "node2", "node3"} {
		cl.procs = append(cl.procs, &proc{httpURL: c.urls[svc]})
	}
	cl.waitReplicated()

	w := &writer{t: t, acked: map[string]string{}}
	for i := 0; i < 60; i++ {
		key := fmt.Sprintf("docker-%d", i)
		eventually(t, 10*time.Second, "write "+key, func() error {
			if !w.put(cl.procs[i%3].httpURL, key, fmt.Sprintf("v%d", i)) {
				return fmt.Errorf("not acknowledged")
			}
			return nil
		})
	}

	// Cut the leader of the group serving "docker-0" off the network.
	node1 := api(t, c.urls["node1"])
	resp, err := node1.GetKeyWithResponse(context.Background(), "docker-0", nil)
	if err != nil || resp.Headers200 == nil {
		t.Fatalf("GET docker-0: %v %v", resp, err)
	}
	group := resp.Headers200.XRingkvGroup
	var g openapi.Group
	eventually(t, 10*time.Second, "group leader known", func() error {
		r, err := node1.GetGroupWithResponse(context.Background(), group)
		if err != nil {
			return err
		}
		if r.JSON200 == nil || r.JSON200.Leader == "" {
			return fmt.Errorf("no leader: %s", r.Status())
		}
		g = *r.JSON200
		return nil
	})
	network := c.project + "_ringkv"
	victim := c.container(g.Leader)
	if out, err := exec.Command("docker", "network", "disconnect", network, victim).CombinedOutput(); err != nil {
		t.Fatalf("network disconnect: %v\n%s", err, out)
	}
	var majority []string
	for svc, u := range c.urls {
		if svc != g.Leader {
			majority = append(majority, u)
		}
	}
	start := time.Now()
	eventually(t, 15*time.Second, "the majority takes a write to the cut-off leader's group", func() error {
		if !w.put(majority[0], "docker-0", "cut-0") {
			return fmt.Errorf("not acknowledged")
		}
		return nil
	})
	t.Logf("group %d's leader %s cut off; the majority took writes again after %v", group, g.Leader, time.Since(start))
	for i := 1; i < 10; i++ {
		if !w.put(majority[i%2], "docker-0", fmt.Sprintf("cut-%d", i)) {
			t.Fatalf("write %d through the majority failed once it had a leader", i)
		}
	}
	if out, err := exec.Command("docker", "network", "connect", "--alias", g.Leader, network, victim).CombinedOutput(); err != nil {
		t.Fatalf("network connect: %v\n%s", err, out)
	}
	waitDigestsAgree(t, c.urls)

	// Rolling restart: one container at a time, each back to healthy before the next.
	for _, svc := range []string{"node1", "node2", "node3"} {
		c.must("restart", "--timeout", "10", svc)
		c.waitHealthy(svc)
		cl.waitReplicated()
	}
	for svc, u := range c.urls {
		for k, v := range w.acked {
			var status int
			var got string
			eventually(t, 20*time.Second, "read "+k+" via "+svc, func() error {
				var err error
				status, got, err = readValue(t, u, k)
				if err != nil || status != http.StatusOK {
					return fmt.Errorf("%d %v", status, err)
				}
				return nil
			})
			if got != v {
				t.Fatalf("%s via %s = %q, want %q", k, svc, got, v)
			}
		}
	}
	waitDigestsAgree(t, c.urls)
}

// composeCertsDir is a directory holding the tests' CA, for compose's certs step (which
// runs as root) to make the nodes' certificates with.
func composeCertsDir(t *testing.T) string {
	dir := t.TempDir()
	for _, f := range []string{"ca.crt", "ca.key"} {
		b, err := os.ReadFile(filepath.Join(testCerts, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testSingleContainer is the README's `docker run -p 8080:8080 ringkv` (on a free
// port): the image's defaults make a single-node cluster whose health check passes.
func testSingleContainer(t *testing.T) {
	port := freePort(t)
	// The compose label lets sweepOldProjects find it if this run is killed.
	name := fmt.Sprintf("ringkve2e-single-%d", rand.IntN(1_000_000))
	out, err := exec.Command("docker", "run", "-d", "--name", name, "--label", "com.docker.compose.project="+name,
		"-p", "127.0.0.1:"+port+":8080", "ringkv:latest", "serve", "--insecure").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	eventually(t, 60*time.Second, name+" healthy", func() error {
		out, err := exec.Command("docker", "inspect", "--format", "{{.State.Health.Status}}", name).CombinedOutput()
		if s := strings.TrimSpace(string(out)); err != nil || s != "healthy" {
			return fmt.Errorf("health %q %v", s, err)
		}
		return nil
	})
	url := "http://127.0.0.1:" + port
	mustPutVia(t, url, "hello", "container")
	if status, got, err := readValue(t, url, "hello"); err != nil || status != http.StatusOK || got != "container" {
		t.Fatalf("GET hello from the container: %d %q %v", status, got, err)
	}
}

// sweepOldProjects removes what an earlier run killed by `go test -timeout` (whose
// cleanup never ran) left behind: containers, networks and volumes of ringkve2e*
// projects.
func sweepOldProjects(t *testing.T) {
	for _, kind := range []struct{ list, id, rm []string }{
		{list: []string{"ps", "-a"}, id: []string{"{{.ID}}"}, rm: []string{"rm", "-f"}},
		{list: []string{"network", "ls"}, id: []string{"{{.ID}}"}, rm: []string{"network", "rm"}},
		{list: []string{"volume", "ls"}, id: []string{"{{.Name}}"}, rm: []string{"volume", "rm", "-f"}},
	} {
		format := kind.id[0] + ` {{.Label "com.docker.compose.project"}}`
		out, err := exec.Command("docker", append(kind.list, "--filter", "label=com.docker.compose.project", "--format", format)...).Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			id, project, ok := strings.Cut(line, " ")
			if !ok || !strings.HasPrefix(project, "ringkve2e") {
				continue
			}
			if out, err := exec.Command("docker", append(kind.rm, id)...).CombinedOutput(); err != nil {
				t.Logf("sweeping %s of %s: %v %s", id, project, err, out)
			}
		}
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// waitDigestsAgree waits until, for every data group, every node reports the same
// applied index and data hash.
func waitDigestsAgree(t *testing.T, urls map[string]string) {
	t.Helper()
	eventually(t, 30*time.Second, "replica digests agree", func() error {
		var groups []int64
		for _, u := range urls {
			r, err := api(t, u).ListGroupsWithResponse(context.Background())
			if err != nil || r.JSON200 == nil {
				return fmt.Errorf("listing groups: %v %v", r, err)
			}
			for _, g := range r.JSON200.Groups {
				if len(g.Partitions) > 0 { // data groups; the meta group (0) serves none
					groups = append(groups, g.Id)
				}
			}
			break
		}
		if len(groups) == 0 {
			return fmt.Errorf("no data groups listed")
		}
		for _, g := range groups {
			var first string
			for svc, u := range urls {
				r, err := api(t, u).GetGroupDigestWithResponse(context.Background(), g)
				if err != nil {
					return err
				}
				if r.JSON200 == nil {
					return fmt.Errorf("group %d digest on %s: %s", g, svc, r.Status())
				}
				s := fmt.Sprintf("%d/%s", r.JSON200.AppliedIndex, r.JSON200.Sha256)
				if first == "" {
					first = s
				} else if s != first {
					return fmt.Errorf("group %d: %s has %s, another node %s", g, svc, s, first)
				}
			}
		}
		return nil
	})
}
