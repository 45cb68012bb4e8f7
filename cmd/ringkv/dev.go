package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ringkv/ringkv/cmd/ringkv/app"
	"github.com/ringkv/ringkv/openapi"
)

// devConfig is what `ringkv dev` remembers in a --data-dir it was given, so that a
// second run with just --data-dir restarts the same cluster: the nodes' addresses are
// part of the cluster's state (Raft configurations, the placement table).
type devConfig struct {
	Nodes    int  `json:"nodes"`
	BasePort int  `json:"base_port"`
	Secure   bool `json:"secure,omitempty"` // --secure: TLS and auth (dev_secure.go)
}

const devConfigFile = "ringkv-dev.json"

// devStopTimeout is how long a node gets to shut down after SIGTERM before SIGKILL.
const devStopTimeout = 10 * time.Second

// devNode is one `ringkv serve` child process.
type devNode struct {
	id        string
	httpAddr  string   // also what the other nodes --join
	extraArgs []string // serve flags of this node only (its --certs-dir)
	raftAddr  string
	dataDir   string
	logPath   string
	cmd       *exec.Cmd
	logFile   *os.File
	done      chan struct{} // closed once the process has exited and waitErr is set
	waitErr   error
}

// dev runs a local cluster of --nodes real `ringkv serve` processes on loopback until
// ctx ends. The nodes are child processes, not in-process nodes, because a node in its
// own process is the thing being tried out (and one of them can be killed alone).
func dev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringkv dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := devConfig{Nodes: 3, BasePort: 8080}
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes")
	dataDir := fs.String("data-dir", "", "directory for the nodes' data and logs, kept and reused by the next run (default: a new temp dir, removed on exit)")
	keep := fs.Bool("keep", false, "keep the temp data dir on exit")
	fs.IntVar(&cfg.BasePort, "base-port", cfg.BasePort, "node i listens on HTTP port base+i-1 and cluster port base-1000+i-1")
	groups := fs.Int("groups", app.DefaultGroups, "data Raft groups (when the cluster is created)")
	partitions := fs.Int("partitions", app.DefaultPartitions, "hash-ring partitions (when the cluster is created)")
	replicas := fs.Int("replicas", app.DefaultReplicas, "replicas per group")
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for every node to be ready")
	fs.BoolVar(&cfg.Secure, "secure", false, "TLS on both ports and authentication: a throwaway CA and certificates in the data dir, and the admin token printed (kept by a --data-dir cluster)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dev takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}

	if *dataDir != "" {
		abs, err := filepath.Abs(*dataDir)
		if err != nil {
			return err
		}
		*dataDir = abs
		if cfg, err = devRemembered(abs, cfg, explicit(fs, getenv, "nodes"), explicit(fs, getenv, "base-port")); err != nil {
			return err
		}
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(stderr, "ringkv dev:", err)
		return exitCode(2)
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the ringkv binary to run the nodes: %w", err)
	}
	// Check the ports before making anything: a node that cannot listen would only say
	// so in its log, after the others have started.
	if err := devCheckPorts(devLayout(cfg, "")); err != nil {
		return err
	}
	dir, madeDir, err := devDataDir(*dataDir)
	if err != nil {
		return err
	}
	remove := madeDir && !*keep // a temp dir of our own, not asked to be kept
	if remove {
		defer os.RemoveAll(dir)
	}
	if !madeDir {
		if err := cfg.save(dir); err != nil {
			return err
		}
	}
	nodes := devLayout(cfg, dir)
	// A cluster made by this run has --replicas replicas per group; one restarted from
	// --data-dir keeps the count it was made with, which devSettled then does not check.
	settleReplicas := *replicas
	if _, err := os.Stat(nodes[0].dataDir); err == nil {
		settleReplicas = 0
	}
	shaping := []string{"--groups", strconv.Itoa(*groups), "--partitions", strconv.Itoa(*partitions), "--replicas", strconv.Itoa(*replicas)}
	access := devAccess{}
	if cfg.Secure {
		if access, err = devSecure(dir, nodes, stderr); err != nil {
			return err
		}
	}

	fmt.Fprintf(stderr, "ringkv dev: starting %d nodes; data in %s, each node's log in %s\n",
		len(nodes), dir, filepath.Join(dir, "nodeN.log"))
	dataNote := "data: " + dir + " (kept)"
	if remove {
		dataNote = "data: " + dir + " (removed on exit; --keep keeps it)"
	}
	err = devRun(ctx, bin, nodes, shaping, access, settleReplicas, *wait, dataNote, stdout, stderr)
	devStop(nodes, stderr)
	if remove {
		fmt.Fprintln(stderr, "ringkv dev: every node stopped; removing", dir)
	} else {
		fmt.Fprintln(stderr, "ringkv dev: every node stopped; data kept in", dir)
	}
	return err
}

// devSettleWait bounds the wait for placement to settle (devSettled) once every node
// is ready; a fresh 3-node cluster settles within a few seconds.
const devSettleWait = 30 * time.Second

// devRun starts the nodes, waits for them to be ready and placement to settle, prints
// where they are, and then waits for ctx to end (nil) or for a node to exit on its own
// (an error). The caller stops whatever is still running.
func devRun(ctx context.Context, bin string, nodes []*devNode, shaping []string, access devAccess, replicas int, wait time.Duration, dataNote string, stdout, stderr io.Writer) error {
	exited := make(chan *devNode, len(nodes))
	for i, n := range nodes {
		args := append([]string{"serve", "--id", n.id, "--data-dir", n.dataDir,
			"--http-addr", n.httpAddr, "--raft-addr", n.raftAddr}, append(shaping, n.extraArgs...)...)
		if i > 0 {
			// Every node may start at once: a joining node retries until node1 answers,
			// and on a restart node1 may need the others for a quorum before it is ready.
			args = append(args, "--join", nodes[0].httpAddr)
		}
		if err := n.start(bin, args, exited); err != nil {
			return err
		}
	}
	client, err := access.client(2 * time.Second)
	if err != nil {
		return err
	}
	node1, err := openapi.NewClientWithResponses(access.conn.base(nodes[0].httpAddr), openapi.WithHTTPClient(client))
	if err != nil {
		return err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	notReady := map[*devNode]error{}
	for _, n := range nodes {
		notReady[n] = errors.New("not asked yet")
	}
	pollC, deadlineC := poll.C, deadline.C
	alive := len(nodes)
	var settleBy time.Time // once every node is ready: how long to wait for placement
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-exited:
			if ctx.Err() != nil {
				// Ctrl-C in a terminal signals the whole process group, so a node may
				// stop on its own just before this process notices ctx ending.
				return nil
			}
			fmt.Fprintf(stderr, "ringkv dev: %s exited unexpectedly (%v); the end of %s:\n%s",
				n.id, n.waitErr, n.logPath, tail(n.logPath, 20))
			alive--
			if pollC != nil || alive == 0 {
				// Still starting (a node that cannot start is a fault to fix), or nothing left.
				return fmt.Errorf("%s exited unexpectedly: %v", n.id, n.waitErr)
			}
			// A running cluster carries on without it: that is what trying failover
			// (kill -9 of a node) looks like.
			fmt.Fprintf(stderr, "ringkv dev: the other %d nodes keep running; to start %s again, in another terminal:\n  %s\n",
				alive, n.id, shellQuote(append([]string{bin}, n.cmd.Args[1:]...)))
		case <-deadlineC:
			var b strings.Builder
			for _, n := range nodes {
				if err, ok := notReady[n]; ok {
					fmt.Fprintf(&b, "%s: %v; the end of %s:\n%s", n.id, err, n.logPath, tail(n.logPath, 10))
				}
			}
			fmt.Fprint(stderr, b.String())
			return fmt.Errorf("%d of %d nodes not ready after %v", len(notReady), len(nodes), wait)
		case <-pollC:
			for n := range notReady {
				if err := readyz(ctx, client, access.conn.base(n.httpAddr)); err != nil {
					notReady[n] = err
				} else {
					delete(notReady, n)
				}
			}
			if len(notReady) > 0 {
				continue
			}
			if settleBy.IsZero() { // every node is ready: --wait is met
				settleBy, deadlineC = time.Now().Add(devSettleWait), nil
			}
			err := devSettled(ctx, node1, nodes, replicas)
			if err != nil && time.Now().Before(settleBy) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				fmt.Fprintf(stderr, "ringkv dev: placement still settling after %v (%v); requests may see a 503 while it does\n", devSettleWait, err)
			}
			devPrintTable(stdout, nodes, access, dataNote)
			// Nothing left to wait for but ctx or a node's exit.
			pollC, deadlineC = nil, nil
		}
	}
}

// start runs one node with its output appended to its log file (appended, so a
// restarted --data-dir keeps the previous runs' logs).
func (n *devNode) start(bin string, args []string, exited chan<- *devNode) error {
	if err := os.MkdirAll(filepath.Dir(n.logPath), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.logFile = f
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	n.cmd.Env = devEnv()
	if err := n.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	n.done = make(chan struct{})
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.done)
		exited <- n
	}()
	return nil
}

// devStop sends SIGTERM to every running node (a clean shutdown: Raft and Badger
// closed), waits for them together, and kills those still running after
// devStopTimeout.
func devStop(nodes []*devNode, stderr io.Writer) {
	running := map[*devNode]bool{}
	for _, n := range nodes {
		if n.done == nil {
			continue
		}
		select {
		case <-n.done: // exited already, and said so
		default:
			running[n] = true
			// An error here means it has exited meanwhile.
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	timeout := time.After(devStopTimeout)
	for _, n := range nodes {
		if n.done == nil {
			continue
		}
		select {
		case <-n.done:
			if running[n] && n.waitErr != nil {
				// serve exits 0 on SIGTERM; anything else is worth a look at its log.
				fmt.Fprintf(stderr, "ringkv dev: %s stopped with %v; the end of %s:\n%s", n.id, n.waitErr, n.logPath, tail(n.logPath, 10))
			}
		case <-timeout:
			fmt.Fprintf(stderr, "ringkv dev: %s did not stop within %v; killing it\n", n.id, devStopTimeout)
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		n.logFile.Close()
	}
}

// devEnv is this process's environment without RINGKV_ variables: they are serve's
// flags too, and one meant for a single node (RINGKV_JOIN, RINGKV_ADVERTISE_HTTP, ...)
// would misconfigure every node of the dev cluster. dev sets each node's flags itself.
func devEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RINGKV_") {
			env = append(env, kv)
		}
	}
	return env
}

// devDataDir creates the data dir, a new temp dir unless given, and says whether it
// is that temp dir.
func devDataDir(given string) (dir string, temp bool, err error) {
	if given == "" {
		dir, err = os.MkdirTemp("", "ringkv-dev-")
		return dir, true, err
	}
	return given, false, os.MkdirAll(given, 0o755)
}

// devRemembered applies the --nodes and --base-port saved in a reused data dir, unless
// given again. A different --base-port is refused: the nodes would come back at
// addresses the cluster does not know.
func devRemembered(dir string, cfg devConfig, nodesGiven, portGiven bool) (devConfig, error) {
	path := filepath.Join(dir, devConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	} else if err != nil {
		return cfg, err
	}
	var saved devConfig
	if err := json.Unmarshal(b, &saved); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if !nodesGiven {
		cfg.Nodes = saved.Nodes
	}
	cfg.Secure = cfg.Secure || saved.Secure // a secure cluster stays secure
	if !portGiven {
		cfg.BasePort = saved.BasePort
	} else if cfg.BasePort != saved.BasePort {
		return cfg, fmt.Errorf("the cluster in %s has --base-port %d, not %d: its nodes' addresses are part of its state", dir, saved.BasePort, cfg.BasePort)
	}
	return cfg, nil
}

// save records c in dir for the next run (see devRemembered).
func (c devConfig) save(dir string) error {
	b, _ := json.Marshal(c)
	return os.WriteFile(filepath.Join(dir, devConfigFile), append(b, '\n'), 0o644)
}

// explicit reports whether flag name was set on the command line or in its
// environment variable, rather than left at its default.
func explicit(fs *flag.FlagSet, getenv func(string) string, name string) bool {
	set := getenv(envName(name)) != ""
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (c devConfig) validate() error {
	if c.Nodes < 1 || c.Nodes > 100 {
		return fmt.Errorf("--nodes %d: want 1 to 100", c.Nodes)
	}
	if c.BasePort-1000 < 1 || c.BasePort+c.Nodes-1 > 65535 {
		return fmt.Errorf("--base-port %d: want 1001 to %d, so that every HTTP port (base+i) and cluster port (base-1000+i) exists",
			c.BasePort, 65536-c.Nodes)
	}
	return nil
}

// devLayout names the nodes and their addresses as the README's hand-made cluster
// does: node1 on 8080 (cluster port 7080), node2 on 8081 (7081), ...; their data and
// logs go under dir.
func devLayout(c devConfig, dir string) []*devNode {
	nodes := make([]*devNode, c.Nodes)
	for i := range nodes {
		id := fmt.Sprintf("node%d", i+1)
		nodes[i] = &devNode{
			id:       id,
			httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.BasePort+i)),
			raftAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.BasePort-1000+i)),
			dataDir:  filepath.Join(dir, id),
			logPath:  filepath.Join(dir, id+".log"),
		}
	}
	return nodes
}

// devCheckPorts reports every port some other process already listens on.
func devCheckPorts(nodes []*devNode) error {
	var busy []string
	for _, n := range nodes {
		for _, a := range []struct{ what, addr string }{{"HTTP", n.httpAddr}, {"cluster", n.raftAddr}} {
			l, err := net.Listen("tcp", a.addr)
			if err != nil {
				busy = append(busy, fmt.Sprintf("%s (%s %s port): %v", a.addr, n.id, a.what, err))
				continue
			}
			l.Close()
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("ports in use, is another ringkv running? choose another --base-port:\n  %s", strings.Join(busy, "\n  "))
	}
	return nil
}

func devPrintTable(w io.Writer, nodes []*devNode, access devAccess, dataNote string) {
	fmt.Fprintf(w, "ringkv dev: %d nodes ready; %s\n\n", len(nodes), dataNote)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tHTTP\tCLUSTER\tLOG")
	for _, n := range nodes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.id, access.conn.base(n.httpAddr), n.raftAddr, n.logPath)
	}
	tw.Flush()
	first, last := nodes[0].httpAddr, nodes[len(nodes)-1].httpAddr
	if access.conn.secure() {
		devPrintSecureTry(w, nodes, access)
		return
	}
	fmt.Fprintf(w, "\nTry:\n  curl -X PUT %s/kv/hello -d world\n  curl %s/kv/hello\n  curl %s/admin/nodes\n\nCtrl-C stops every node.\n",
		first, last, first)
}

// tail returns about the last n lines of the file at path, for saying why a node
// failed without sending anyone to a log that may be in a removed temp dir.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (" + err.Error() + ")\n"
	}
	defer f.Close()
	const max = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ") + "\n"
}

// shellQuote renders args as a command line a POSIX shell reads back as args.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
