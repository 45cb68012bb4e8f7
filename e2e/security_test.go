package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue #14 through the binary: who may listen where, join, and which certificates a
// node serves after a reload.

// TestListeningBeyondLoopbackNeedsTLSOrInsecure: `serve` on 0.0.0.0 without TLS and
// auth refuses to start and says why; with --insecure it starts and warns.
func TestListeningBeyondLoopbackNeedsTLSOrInsecure(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir(), bin: binary(t), ports: portMap{}}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	i := c.addProc("refused", "--id", "n1", "--data-dir", filepath.Join(c.dir, "refused"),
		"--http-addr", "0.0.0.0:"+freePort(t), "--raft-addr", "127.0.0.1:"+freePort(t))
	if code := c.exitStatus(i, 20*time.Second); code == 0 {
		t.Fatalf("serve on 0.0.0.0 without TLS exited 0; want a refusal")
	}
	if log := fullLog(t, c.procs[i]); !strings.Contains(log, "listens beyond loopback without TLS and authentication") || !strings.Contains(log, "--insecure") {
		t.Fatalf("the refusal does not say why and what to do:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "refused")); err == nil {
		t.Errorf("a refused node made its data dir")
	}
	j := c.addProc("insecure", "--id", "n1", "--data-dir", filepath.Join(c.dir, "insecure"),
		"--http-addr", "0.0.0.0:"+freePort(t), "--raft-addr", "127.0.0.1:"+freePort(t), "--insecure")
	c.procs[j].httpURL = strings.Replace(c.procs[j].httpURL, "0.0.0.0", "127.0.0.1", 1)
	c.waitReady(j)
	if log := fullLog(t, c.procs[j]); !strings.Contains(log, "INSECURE") {
		t.Fatalf("--insecure started without its warning:\n%s", log)
	}
}

// TestJoinNeedsAClusterCertificate: a secure cluster admits a node with a node
// certificate of its CA and no other: not one of another CA (refused at the TLS
// handshake), not one without TLS.
func TestJoinNeedsAClusterCertificate(t *testing.T) {
	c := startSecureProcCluster(t, 1)
	seed := strings.TrimPrefix(c.procs[0].httpURL, "https://")
	other, err := newTestCA("another cluster's CA")
	if err != nil {
		t.Fatal(err)
	}
	otherDir := filepath.Join(c.dir, "other-certs")
	if err := os.MkdirAll(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := other.writeCA(otherDir); err != nil {
		t.Fatal(err)
	}
	if _, err := other.issueNode(otherDir, "node"); err != nil {
		t.Fatal(err)
	}
	start := func(id string, extra ...string) int {
		return c.addProc(id, append([]string{"--id", id, "--data-dir", filepath.Join(c.dir, id),
			"--http-addr", "127.0.0.1:" + freePort(t), "--raft-addr", "127.0.0.1:" + freePort(t), "--join", seed}, extra...)...)
	}
	foreign := start("foreign", "--certs-dir", otherDir)
	plain := start("plain")
	// Each outsider's join attempts fail, and say so in its log.
	for _, i := range []int{foreign, plain} {
		eventually(t, 20*time.Second, c.procs[i].logPath+" reports its join refused", func() error {
			if log := fullLog(t, c.procs[i]); !strings.Contains(log, "join attempt failed") && !strings.Contains(log, "join refused") {
				return fmt.Errorf("no refusal yet")
			}
			return nil
		})
	}
	// The positive control: a node with the cluster's certificate joins, through the
	// same seed, while the outsiders keep trying.
	member := start("member", "--certs-dir", c.nodeCertsDir("member"))
	c.waitReady(member)
	eventually(t, 30*time.Second, "member listed", func() error {
		nodes := listNodeIDs(t, c.procs[0].httpURL)
		if !nodes["member"] {
			return fmt.Errorf("nodes: %v", nodes)
		}
		return nil
	})
	nodes := listNodeIDs(t, c.procs[0].httpURL)
	if nodes["foreign"] || nodes["plain"] {
		t.Fatalf("an outsider was admitted: %v", nodes)
	}
	for _, i := range []int{foreign, plain} {
		if log := fullLog(t, c.procs[i]); strings.Contains(log, "joined cluster") {
			t.Fatalf("%s says it joined:\n%s", c.procs[i].logPath, log)
		}
	}
}

// fullLog is everything p wrote.
func fullLog(t *testing.T, p *proc) string {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listNodeIDs is the set of node ids /admin/nodes lists.
func listNodeIDs(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := api(t, url).ListNodesWithResponse(context.Background())
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("GET /admin/nodes: %v %v", resp, err)
	}
	ids := map[string]bool{}
	for _, n := range resp.JSON200.Nodes {
		ids[n.Id] = true
	}
	return ids
}

// TestCertificatesReloadWithoutRestart: a node serves a new certificate from the
// next connection on after SIGHUP, and keeps the one it has when the new files are
// broken.
func TestCertificatesReloadWithoutRestart(t *testing.T) {
	c := startSecureProcCluster(t, 1)
	dir := c.procs[0].arg("--certs-dir")
	addr := strings.TrimPrefix(c.procs[0].httpURL, "https://")
	first := servedSerial(t, addr)
	next, err := e2eCA.issueNode(dir, "node")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.procs[0].cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new certificate served", func() error {
		if got := servedSerial(t, addr); got.Cmp(next) != 0 {
			return fmt.Errorf("serial %x, want %x (first %x)", got, next, first)
		}
		return nil
	})
	// A half-written key: the reload fails, is reported, and the node keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "node.key"), []byte("-----BEGIN PRIVATE KEY-----\ntruncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.procs[0].cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the failed reload reported", func() error {
		if !strings.Contains(fullLog(t, c.procs[0]), "certificates not reloaded") {
			return fmt.Errorf("not in the log yet")
		}
		return nil
	})
	if got := servedSerial(t, addr); got.Cmp(next) != 0 {
		t.Fatalf("after a broken reload the node serves %x, want %x still", got, next)
	}
	mustPut(t, c.procs[0].httpURL, "after-reload", "ok")
}

// servedSerial is the serial of the certificate the node at addr serves now, on a new
// connection.
func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	cfg := clientTLS.Clone()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestForgedRaftMessagesAreRefusedByASecureCluster is TestForgedRaftVoteReachesAPlaintextCluster
// against a cluster with mutual TLS on its cluster port: the same forged RequestVote
// and heartbeat fail at the handshake and no replica adopts their terms; a TLS client
// without a certificate, or with a node certificate of another CA, cannot open the port
// either; the node counts and logs the refusals.
func TestForgedRaftMessagesAreRefusedByASecureCluster(t *testing.T) {
	c := startSecureProcCluster(t, 3, "--groups", "2", "--partitions", "4")
	const group = 1
	victim := c.procs[1]
	var highest uint64
	for _, p := range c.procs {
		term, err := raftTerm(p.httpURL, group)
		if err != nil {
			t.Fatal(err)
		}
		highest = max(highest, term)
	}
	forged := highest + 1000
	if granted, err := forgeRequestVote(victim.raftAddr(), group, forged, "node1"); err == nil || granted {
		t.Fatalf("forged RequestVote over plaintext: granted %v, err %v; want refused at the handshake", granted, err)
	}
	if accepted, err := forgeAppendEntries(c.procs[2].raftAddr(), group, forged, "forger"); err == nil || accepted {
		t.Fatalf("forged AppendEntries over plaintext: accepted %v, err %v; want refused at the handshake", accepted, err)
	}
	other, err := newTestCA("another cluster's CA")
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	if _, err := other.issueNode(otherDir, "node"); err != nil {
		t.Fatal(err)
	}
	otherCert, err := tls.LoadX509KeyPair(filepath.Join(otherDir, "node.crt"), filepath.Join(otherDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	for what, cert := range map[string]*tls.Certificate{"no certificate": {}, "another CA's node certificate": &otherCert} {
		// Presented whatever CAs the node says it accepts (Go's client would otherwise
		// send none).
		cfg := &tls.Config{RootCAs: clientTLS.RootCAs, MinVersion: tls.VersionTLS13,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}
		if err := openClusterPort(victim.raftAddr(), cfg); err == nil {
			t.Fatalf("a TLS client with %s opened the cluster port and sent a group header", what)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	for _, p := range c.procs {
		if term, err := raftTerm(p.httpURL, group); err != nil || term >= forged {
			t.Fatalf("%s: raft_term{group=\"1\"} %d (%v); the forged term was %d", p.httpURL, term, err, forged)
		}
	}
	if n := metricValue(t, victim.httpURL, `ringkv_cluster_handshake_failures_total{direction="inbound"}`); n < 3 {
		t.Fatalf("the attacked node counted %v refused handshakes, want at least 3", n)
	}
	if log := fullLog(t, victim); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "handshake") {
		t.Fatalf("the refusals are not logged at WARN:\n%s", tail(log, 30))
	}
	mustPut(t, c.procs[0].httpURL, "after-forgery", "ok") // the cluster itself still works
}

// openClusterPort dials a cluster port with cfg, writes the header for group 1 and
// reads; it returns nil only if the node kept the connection open (a peer's).
func openClusterPort(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write(forgeMuxHeader(1)); err != nil {
		return err
	}
	// A TLS 1.3 server checks the client's certificate after the client's side of the
	// handshake is done: its refusal arrives as an alert on the first read. A peer's
	// connection stays open, silent until the peer sends an RPC.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, err = conn.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	if err == nil {
		return fmt.Errorf("the node sent a byte unasked")
	}
	return err
}

// metricValue is the value of the sample written exactly as series (name and labels,
// as /metrics prints them) on the node at url.
func metricValue(t *testing.T, url, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(metricsText(t, url), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in %s/metrics", series, url)
	return 0
}

// TestNodeRefusesACertificateWithoutItsAdvertisedName: a node whose certificate does
// not name the host it advertises would fail every handshake with its peers and
// itself; it refuses to start and says which name is missing.
func TestNodeRefusesACertificateWithoutItsAdvertisedName(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir(), bin: binary(t), ports: portMap{}}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	port := freePort(t)
	i := c.addProc("misnamed", "--id", "n1", "--data-dir", filepath.Join(c.dir, "n1"), "--certs-dir", c.nodeCertsDir("n1"),
		"--http-addr", "127.0.0.1:"+port, "--advertise-http", "node9.example:"+port, "--raft-addr", "127.0.0.1:"+freePort(t))
	if code := c.exitStatus(i, 20*time.Second); code == 0 {
		t.Fatal("a node whose certificate lacks its advertised name exited 0")
	}
	if log := fullLog(t, c.procs[i]); !strings.Contains(log, `does not name "node9.example"`) {
		t.Fatalf("the refusal does not name the missing host:\n%s", log)
	}
}
