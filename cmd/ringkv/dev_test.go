package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The dev tests run the real binary: `ringkv dev` starts `ringkv serve` processes by
// re-executing itself, which a test binary cannot stand in for.

// devTestBinary returns $RINGKV_BIN, or a ringkv built now.
func devTestBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("RINGKV_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "ringkv")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// devFreeBase finds a base port with base..base+n-1 and base-1000..base-1000+n-1 all
// free. Bases are drawn below Linux's ephemeral range (32768-) so that the ports are
// not handed to some other test's outgoing connection or :0 listener meanwhile.
func devFreeBase(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 11000 + rand.IntN(32768-11000-n)
		if devPortsFree(base, n) {
			return base
		}
	}
	t.Fatal("no free base port found")
	return 0
}

func devPortsFree(base, n int) bool {
	return devCheckPorts(devLayout(devConfig{Nodes: n, BasePort: base}, "")) == nil
}

// lockedBuffer collects a process's stderr for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type devRow struct{ id, http, raft, log string }

// devProc is a running `ringkv dev`.
type devProc struct {
	stdout  []string // what it printed up to its "Ctrl-C stops every node"
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	rows    []devRow
	dataDir string
	exited  chan error
	stopped bool
}

var (
	devRowRE  = regexp.MustCompile(`^\s+(node\d+)\s+(https?://\S+)\s+(\S+)\s+(\S+)$`)
	devDataRE = regexp.MustCompile(`data: (\S+)`)
)

// startDev runs `ringkv dev args...` with TMPDIR set to tmp and returns once it has
// printed its table of ready nodes.
func startDev(t *testing.T, bin, tmp string, args ...string) *devProc {
	t.Helper()
	p := &devProc{stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"dev"}, args...)...)
	// The test's own RINGKV_ variables (RINGKV_BIN, or a developer's RINGKV_DATA_DIR)
	// must not configure dev.
	p.cmd.Env = append(devEnv(), "TMPDIR="+tmp) // exec keeps the last TMPDIR
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Stop dev the way a user would if the test fails early; dev then stops its nodes.
	t.Cleanup(func() { p.interrupt(t, 30*time.Second) })

	// Buffered well beyond dev's output, so the reader never blocks and always gets
	// to Wait, whatever the test does.
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.exited <- p.cmd.Wait()
	}()
	deadline := time.After(120 * time.Second) // dev itself gives up after 60 s
	for table := false; !table; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before its nodes were ready; stderr:\n%s", p.stderr)
			}
			if m := devRowRE.FindStringSubmatch(l); m != nil {
				p.rows = append(p.rows, devRow{m[1], m[2], m[3], m[4]})
			}
			if m := devDataRE.FindStringSubmatch(l); m != nil {
				p.dataDir = m[1]
			}
			p.stdout = append(p.stdout, l)
			table = strings.HasPrefix(l, "Ctrl-C stops every node")
		case <-deadline:
			t.Fatalf("dev printed no table of ready nodes in time; stderr:\n%s", p.stderr)
		}
	}
	return p
}

// interrupt sends SIGINT, as Ctrl-C does, and returns dev's exit error, failing the
// test when dev does not exit within timeout. Calling it again returns nil.
func (p *devProc) interrupt(t *testing.T, timeout time.Duration) error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		t.Errorf("dev did not exit within %v of SIGINT; stderr:\n%s", timeout, p.stderr)
		devKillNodes(t, p.dataDir)
		return <-p.exited
	}
}

var devClient = &http.Client{Timeout: 15 * time.Second}

func devDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := devClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// devKV sends a /kv request, retrying while the node answers 503. dev prints its table
// once placement has settled (devSettled), so a 503 should not happen; but an election
// still can on a machine loaded by -race tests, and a client would retry it. The test
// logs how long any 503 lasted.
func devKV(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	start := time.Now()
	for tries := 1; ; tries++ {
		status, b := devDo(t, method, url, body)
		if status != http.StatusServiceUnavailable || time.Since(start) > 15*time.Second {
			if tries > 1 {
				t.Logf("%s %s: 503 for %v (%d tries) after every node was ready, then %d",
					method, url, time.Since(start).Round(time.Millisecond), tries, status)
			}
			return status, b
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a stand-in for the condition
	}
}

func devGetValue(t *testing.T, url string) string {
	t.Helper()
	status, body := devKV(t, http.MethodGet, url, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
	return v.Value
}

// stopDev interrupts dev, requires exit status 0, and requires that none of its nodes
// is left: dev returns only after its children have exited, so their ports must be
// closed the moment it has.
func stopDev(t *testing.T, p *devProc) {
	t.Helper()
	start := time.Now()
	if err := p.interrupt(t, 30*time.Second); err != nil {
		t.Fatalf("dev exited with %v after SIGINT; stderr:\n%s", err, p.stderr)
	}
	t.Logf("dev stopped %v after SIGINT", time.Since(start).Round(time.Millisecond))
	for _, r := range p.rows {
		for _, addr := range []string{strings.TrimPrefix(r.http, "http://"), r.raft} {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s: %s still accepts connections after dev exited", r.id, addr)
			}
		}
	}
	if leftovers := devServeProcesses(p.dataDir); len(leftovers) > 0 {
		t.Errorf("serve processes left after dev exited: %v", leftovers)
	}
}

// devKillNodes kills the nodes a killed dev left behind.
func devKillNodes(t *testing.T, dataDir string) {
	for _, proc := range devServeProcesses(dataDir) {
		pid, _ := strconv.Atoi(strings.SplitN(proc, ":", 2)[0])
		if pr, err := os.FindProcess(pid); err == nil {
			t.Logf("killing left-over node %s", proc)
			_ = pr.Kill()
		}
	}
}

// devServeProcesses lists (on Linux, through /proc) the processes whose command line
// mentions dataDir: the nodes of that dev cluster.
func devServeProcesses(dataDir string) []string {
	var found []string
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, " serve ") && strings.Contains(cmdline, dataDir) {
			found = append(found, filepath.Base(filepath.Dir(path))+": "+cmdline)
		}
	}
	return found
}

func TestDevCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster")
	}
	bin := devTestBinary(t)
	tmp := t.TempDir()
	base := devFreeBase(t, 3)
	start := time.Now()
	p := startDev(t, bin, tmp, "--nodes", "3", "--base-port", strconv.Itoa(base))
	t.Logf("3 nodes ready %v after starting dev", time.Since(start).Round(time.Millisecond))

	for i, r := range p.rows {
		want := devRow{fmt.Sprintf("node%d", i+1), fmt.Sprintf("http://127.0.0.1:%d", base+i),
			fmt.Sprintf("127.0.0.1:%d", base-1000+i), filepath.Join(p.dataDir, fmt.Sprintf("node%d.log", i+1))}
		if r != want {
			t.Errorf("row %d: %+v, want %+v", i, r, want)
		}
		if _, err := os.Stat(r.log); err != nil {
			t.Errorf("%s's log: %v", r.id, err)
		}
	}
	if filepath.Dir(p.dataDir) != tmp {
		t.Fatalf("data dir %q is not a new dir in TMPDIR %s", p.dataDir, tmp)
	}

	if status, body := devKV(t, http.MethodPut, p.rows[0].http+"/kv/dev-test", "hello from node1"); status/100 != 2 {
		t.Fatalf("PUT on node1: %d %s", status, body)
	}
	if v := devGetValue(t, p.rows[2].http+"/kv/dev-test"); v != "hello from node1" {
		t.Fatalf("GET on node3: value %q", v)
	}
	status, body := devDo(t, http.MethodGet, p.rows[0].http+"/admin/nodes", "")
	var nodes struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &nodes); status != http.StatusOK || err != nil {
		t.Fatalf("GET /admin/nodes: %d %v %s", status, err, body)
	}
	if len(nodes.Nodes) != 3 {
		t.Fatalf("/admin/nodes lists %d nodes, want 3: %s", len(nodes.Nodes), body)
	}

	// kill -9 of one node: dev says which, and the other two keep serving.
	var victim *os.Process
	for _, proc := range devServeProcesses(p.dataDir) {
		if strings.Contains(proc, "--id node3 ") {
			pid, _ := strconv.Atoi(strings.SplitN(proc, ":", 2)[0])
			victim, _ = os.FindProcess(pid)
		}
	}
	if victim == nil {
		t.Fatal("node3's process not found")
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "the other 2 nodes keep running; to start node3 again") {
		select {
		case err := <-p.exited:
			t.Fatalf("dev exited (%v) when one of its nodes died; stderr:\n%s", err, p.stderr)
		case <-time.After(50 * time.Millisecond): // polling dev's stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev did not say node3 died; stderr:\n%s", p.stderr)
		}
	}
	if status, body := devKV(t, http.MethodPut, p.rows[0].http+"/kv/dev-test", "after node3 died"); status/100 != 2 {
		t.Fatalf("PUT on node1 after node3 died: %d %s", status, body)
	}
	if v := devGetValue(t, p.rows[1].http+"/kv/dev-test"); v != "after node3 died" {
		t.Fatalf("GET on node2 after node3 died: value %q", v)
	}

	stopDev(t, p)
	if _, err := os.Stat(p.dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp data dir %s not removed: %v", p.dataDir, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("TMPDIR not empty after dev exited: %v", left)
	}
}

// TestDevRestart: a --data-dir is kept, and a second `ringkv dev --data-dir X` with no
// other flags brings the same cluster back (same nodes, same ports, same data).
func TestDevRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster twice")
	}
	bin := devTestBinary(t)
	tmp, dir := t.TempDir(), filepath.Join(t.TempDir(), "cluster")
	base := devFreeBase(t, 3)
	p := startDev(t, bin, tmp, "--data-dir", dir, "--base-port", strconv.Itoa(base))
	if status, body := devKV(t, http.MethodPut, p.rows[0].http+"/kv/survives", "restart"); status/100 != 2 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	stopDev(t, p)

	start := time.Now()
	p = startDev(t, bin, tmp, "--data-dir", dir)
	t.Logf("restarted cluster ready in %v", time.Since(start).Round(time.Millisecond))
	if len(p.rows) != 3 || p.rows[0].http != fmt.Sprintf("http://127.0.0.1:%d", base) {
		t.Fatalf("restart did not reuse the first run's layout: %+v", p.rows)
	}
	if v := devGetValue(t, p.rows[2].http+"/kv/survives"); v != "restart" {
		t.Fatalf("GET after restart: value %q", v)
	}
	stopDev(t, p)
	if _, err := os.Stat(filepath.Join(dir, "node1")); err != nil {
		t.Errorf("given --data-dir not kept: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("dev made a temp dir although given --data-dir: %v", left)
	}
}

// TestDevUsage: errors that stop dev before it starts any node.
func TestDevUsage(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	noEnv := func(string) string { return "" }
	var stderr bytes.Buffer
	if err := dev(context.Background(), []string{"--base-port", "80"}, noEnv, io.Discard, &stderr); err != exitCode(2) {
		t.Errorf("--base-port 80: %v, want exit status 2", err)
	}
	if err := dev(context.Background(), []string{"--nodes", "0"}, noEnv, io.Discard, &stderr); err != exitCode(2) {
		t.Errorf("--nodes 0: %v, want exit status 2", err)
	}

	// A port in use (here node2's cluster port) is named in the error.
	base := devFreeBase(t, 3)
	busy := net.JoinHostPort("127.0.0.1", strconv.Itoa(base-1000+1))
	l, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = dev(context.Background(), []string{"--base-port", strconv.Itoa(base), "--keep"}, noEnv, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), busy) || !strings.Contains(err.Error(), "--base-port") {
		t.Errorf("with %s in use: %v, want an error naming it and --base-port", busy, err)
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) > 0 {
		t.Errorf("temp dir left behind: %v", left)
	}

	// A kept cluster cannot come back on other ports.
	dir := t.TempDir()
	if err := (devConfig{Nodes: 3, BasePort: base}).save(dir); err != nil {
		t.Fatal(err)
	}
	err = dev(context.Background(), []string{"--data-dir", dir, "--base-port", strconv.Itoa(base + 10)}, noEnv, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--base-port "+strconv.Itoa(base)) {
		t.Errorf("restart on other ports: %v, want an error naming the cluster's --base-port", err)
	}
}
