package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// startProcCluster starts n `ringkv serve` processes on free loopback ports with
// extra flags (e.g. a low snapshot threshold): the first creates the cluster, the
// others join it. It returns once every group has min(n, 3) voters.
func startProcCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	return startProcClusterWith(t, n, clusterOpts{}, extra...)
}

// startSecureProcCluster is startProcCluster with TLS and authentication on: every
// node has --certs-dir (tls_test.go's certificates), its URLs are https, and the
// tests' clients authenticate with the admin client certificate.
func startSecureProcCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	return startProcClusterWith(t, n, clusterOpts{secure: true}, extra...)
}

// clusterOpts say how startProcClusterWith runs its nodes.
type clusterOpts struct {
	separateUsers bool // each node under its own uid (partition_test.go)
	secure        bool // TLS and authentication (tls_test.go)
}

// startPartitionableCluster is startProcCluster with every node under its own user
// id, so a firewall can cut traffic between them.
func startPartitionableCluster(t *testing.T, n int, extra ...string) (*cluster, *firewall) {
	t.Helper()
	return startPartitionableClusterWith(t, n, clusterOpts{}, extra...)
}

// startPartitionableClusterWith is startPartitionableCluster with opts (secure).
func startPartitionableClusterWith(t *testing.T, n int, opts clusterOpts, extra ...string) (*cluster, *firewall) {
	t.Helper()
	requirePartitions(t)
	opts.separateUsers = true
	c := startProcClusterWith(t, n, opts, extra...)
	return c, newFirewall(t, c)
}

func startProcClusterWith(t *testing.T, n int, opts clusterOpts, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), bin: binary(t), ports: portMap{}}
	if opts.separateUsers {
		c.runAs()
	}
	var seed string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("node%d", i+1)
		httpAddr, raftAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
		args := []string{"serve", "--id", id, "--data-dir", filepath.Join(c.dir, id), "--http-addr", httpAddr, "--raft-addr", raftAddr}
		if seed != "" {
			args = append(args, "--join", seed)
		}
		scheme := "http://"
		if opts.secure {
			args = append(args, "--certs-dir", c.nodeCertsDir(id))
			scheme = "https://"
		}
		args = append(args, extra...)
		p := &proc{args: args, httpURL: scheme + httpAddr, logPath: filepath.Join(c.dir, id+".log")}
		c.procs = append(c.procs, p)
		c.start(i)
		if i == 0 {
			c.waitReady(0)
			seed = httpAddr
		}
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
		// Before t.TempDir is removed: keep the logs and data dirs of a failed test, or
		// of every test with RINGKV_KEEP_ARTIFACTS=1.
		if t.Failed() || os.Getenv("RINGKV_KEEP_ARTIFACTS") != "" {
			t.Logf("node logs and data dirs kept in %s", keepArtifacts(t, c.dir))
		}
	})
	for i := range c.procs {
		c.waitReady(i)
	}
	if n >= 3 {
		c.waitReplicated()
	}
	return c
}

// artifactsDir is where a failed test's evidence is kept: e2e/artifacts/<test name>.
func artifactsDir(t *testing.T) string {
	dir, _ := filepath.Abs(filepath.Join("artifacts", strings.ReplaceAll(t.Name(), "/", "_")))
	_ = os.MkdirAll(dir, 0o755)
	return dir
}

// keepArtifacts copies a failed test's node logs and data dirs out of its temp dir.
func keepArtifacts(t *testing.T, nodesDir string) string {
	dir := filepath.Join(artifactsDir(t), "nodes")
	_ = os.RemoveAll(dir)
	if out, err := exec.Command("cp", "-r", nodesDir, dir).CombinedOutput(); err != nil {
		t.Logf("keeping artifacts: %v %s", err, out)
	}
	return dir
}
