// Package e2e tests the real ringkv binary from the outside: processes started exactly
// as the README says, talked to over HTTP, killed with SIGKILL.
package e2e

import (
	"bufio"
	"context"
	"fmt"
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
	"syscall"
	"testing"
	"time"
)

// binary returns the ringkv binary under test: $RINGKV_BIN, or one built now.
func binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("RINGKV_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "ringkv")
	cmd := exec.Command("go", "build", "-o", out, "../cmd/ringkv")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// readmeBlock returns the lines of the fenced block between the README markers
// <!-- e2e:NAME:begin --> and <!-- e2e:NAME:end -->.
func readmeBlock(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	begin, end := "<!-- e2e:"+name+":begin -->", "<!-- e2e:"+name+":end -->"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README has no %s block", name)
	}
	var lines []string
	for _, l := range strings.Split(s[i+len(begin):j], "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "```") {
			lines = append(lines, l)
		}
	}
	return lines
}

var addrRE = regexp.MustCompile(`(127\.0\.0\.1|localhost):(\d{4,5})`)

// portMap gives every README port a free port of this machine, so the test can run
// beside anything already listening on the README's ports.
type portMap map[string]string

func (m portMap) rewrite(t *testing.T, s string) string {
	return addrRE.ReplaceAllStringFunc(s, func(a string) string {
		parts := addrRE.FindStringSubmatch(a)
		port, ok := m[parts[2]]
		if !ok {
			port = freePort(t)
			m[parts[2]] = port
		}
		return parts[1] + ":" + port
	})
}

// freePort returns a loopback port free now, below the kernel's ephemeral range
// (32768-60999 on Linux): a port the kernel hands out for ":0" can be given again as
// the source port of any outgoing connection (a node dialling another) before the
// test's node binds it, which failed a test with "address already in use". A port
// below the range is only ever taken by someone binding it on purpose; each is handed
// out once per test binary.
func freePort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return strconv.Itoa(p)
	}
	t.Fatal("no free loopback port in 20000-31999")
	return ""
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// proc is one ringkv serve process.
type proc struct {
	uid     int // the user id it runs as (0: the test's own)
	args    []string
	httpURL string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// cluster is the README's 3-node cluster, as processes in a scratch directory.
type cluster struct {
	separateUsers bool // each node under its own uid (see partition_test.go)
	t             *testing.T
	dir           string
	bin           string
	ports         portMap
	procs         []*proc
}

func startReadmeCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), bin: binary(t), ports: portMap{}}
	for _, line := range readmeBlock(t, "cluster") {
		fields := strings.Fields(c.ports.rewrite(t, line))
		if len(fields) < 2 || fields[0] != "./bin/ringkv" || fields[1] != "serve" {
			t.Fatalf("README cluster line is not ./bin/ringkv serve ...: %q", line)
		}
		p := &proc{args: fields[1:], logPath: filepath.Join(c.dir, fmt.Sprintf("node%d.log", len(c.procs)+1))}
		for i, f := range fields {
			if f == "--http-addr" && i+1 < len(fields) {
				p.httpURL = "http://" + fields[i+1]
			}
		}
		c.procs = append(c.procs, p)
		c.start(len(c.procs) - 1)
		if len(c.procs) == 1 {
			c.waitReady(0) // the first node creates the cluster the others join
		}
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
		if t.Failed() {
			for _, p := range c.procs {
				b, _ := os.ReadFile(p.logPath)
				t.Logf("---- %s (last 40 lines) ----\n%s", p.logPath, tail(string(b), 40))
			}
		}
	})
	return c
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *cluster) start(i int) {
	c.t.Helper()
	p := c.procs[i]
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	p.cmd = exec.Command(c.bin, p.args...)
	p.cmd.Dir = c.dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if c.separateUsers {
		p.uid = nodeUIDBase + i
		p.cmd.SysProcAttr = credential(p.uid)
		for _, dir := range []string{p.dataDir(), p.arg("--certs-dir")} {
			if dir != "" {
				_ = os.MkdirAll(dir, 0o755)
				_ = exec.Command("chown", "-R", fmt.Sprintf("%d:%d", p.uid, p.uid), dir).Run()
			}
		}
	}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
}

// dataDir is the node's --data-dir, absolute.
func (p *proc) dataDir() string { return p.arg("--data-dir") }

// arg is the value of flag in p's command line ("" when absent).
func (p *proc) arg(flag string) string {
	for i, a := range p.args {
		if a == flag && i+1 < len(p.args) {
			return p.args[i+1]
		}
	}
	return ""
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(i int) {
	p := c.procs[i]
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
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
		time.Sleep(50 * time.Millisecond) // poll interval, not a stand-in for the condition
	}
	t.Fatalf("%s: not true after %v: %v", what, timeout, err)
}

func (c *cluster) waitReady(i int) {
	c.t.Helper()
	eventually(c.t, 60*time.Second, fmt.Sprintf("node%d ready", i+1), func() error {
		if p := c.procs[i]; p.exited != nil {
			select {
			case <-p.exited: // waiting longer cannot help: say why it ended
				c.t.Fatalf("node%d exited while waiting for it to be ready; its log ends:\n%s", i+1, c.lastLog(i))
			default:
			}
		}
		resp, err := api(c.t, c.procs[i].httpURL).ReadyzWithResponse(context.Background())
		if err != nil {
			return err
		}
		if resp.StatusCode() != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status(), resp.Body)
		}
		return nil
	})
}

// nodeURLs maps each node's id to its HTTP URL.
func (c *cluster) nodeURLs() map[string]string {
	urls := map[string]string{}
	for i, p := range c.procs {
		urls[fmt.Sprintf("node%d", i+1)] = p.httpURL
	}
	return urls
}

// lastLog returns the last lines a node wrote, for failure messages.
func (c *cluster) lastLog(i int) string {
	f, err := os.Open(c.procs[i].logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
