package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Fault runs in the spirit of etcd's robustness tests: a workload of gets, puts,
// compare-and-swaps and deletes on a few keys while nodes are killed (SIGKILL) and
// paused (SIGSTOP), then a linearizability check of the whole history (porcupine), a
// final read of every key (so a lost acknowledged write is a violation), the replica
// digests of every group, and a write and read on every group after healing. Three
// watchers follow the keys throughout, and what they saw is checked against the
// history (watchcheck_test.go).

var faultKinds = []string{"kill-random", "kill-leader", "pause-leader", "kill-meta-leader", "partition-leader", "partition-pair", "partition-snapshot"}

// The fault runs' nodes snapshot after 300 entries and keep 100, checked every 200 ms,
// so a follower cut off for snapshotFaultWrites writes to its group comes back behind
// the leader's compacted log and can only catch up by InstallSnapshot.
var faultNodeFlags = []string{"--snapshot-threshold", "300", "--trailing-logs", "100", "--snapshot-interval", "200ms"}

const snapshotFaultWrites = 600

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestFaultRuns is the bounded run `make test` does; `make soak` sets
// RINGKV_FAULT_RUNS and RINGKV_FAULT_SECONDS higher, and RINGKV_FAULT_KINDS (a comma
// separated subset of faultKinds) focuses the runs on some kinds.
func TestFaultRuns(t *testing.T) {
	kinds := faultKinds
	if v := os.Getenv("RINGKV_FAULT_KINDS"); v != "" {
		kinds = strings.Split(v, ",")
		for _, k := range kinds {
			if !slices.Contains(faultKinds, k) {
				t.Fatalf("RINGKV_FAULT_KINDS: unknown kind %q (known: %v)", k, faultKinds)
			}
		}
	}
	runs, seconds := envInt("RINGKV_FAULT_RUNS", len(kinds)), envInt("RINGKV_FAULT_SECONDS", 15)
	seed := uint64(envInt("RINGKV_FAULT_SEED", int(time.Now().UnixNano()%1_000_000)))
	t.Logf("fault runs: %d x %ds, seed %d (RINGKV_FAULT_SEED reproduces the fault schedule)", runs, seconds, seed)
	for i := 0; i < runs; i++ {
		kind := kinds[i%len(kinds)]
		t.Run(fmt.Sprintf("%s-%d", kind, seed+uint64(i)), func(t *testing.T) {
			runFaults(t, kind, seed+uint64(i), time.Duration(seconds)*time.Second)
		})
	}
}

// faultState tracks which nodes are down, for the clients.
type faultState struct {
	c      *cluster
	fw     *firewall // nil unless the run partitions
	mu     sync.Mutex
	down   map[int]bool
	counts map[string]int

	snapshotVictims []snapshotVictim
}

func (f *faultState) urls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.c.procs))
	for i, p := range f.c.procs {
		if !f.down[i] {
			out[i] = p.httpURL
		}
	}
	return out
}

func (f *faultState) setDown(i int, down bool) {
	f.mu.Lock()
	f.down[i] = down
	f.mu.Unlock()
}

// leaderOf returns the index of the node leading group g, asked of a live node.
func (f *faultState) leaderOf(g int) (int, bool) {
	for _, u := range f.urls() {
		if u == "" {
			continue
		}
		resp, err := apiWithTimeout(f.c.t, u, 5*time.Second).GetGroupWithResponse(context.Background(), int64(g))
		if err != nil || resp.JSON200 == nil {
			continue
		}
		if leader := resp.JSON200.Leader; strings.HasPrefix(leader, "node") {
			n, _ := strconv.Atoi(strings.TrimPrefix(leader, "node"))
			return n - 1, true
		}
	}
	return 0, false
}

// inject applies one fault of kind and heals it after a while.
func (f *faultState) inject(kind string, rng *rand.Rand) {
	victim := rng.IntN(len(f.c.procs))
	switch kind {
	case "kill-leader", "pause-leader":
		if i, ok := f.leaderOf(1 + rng.IntN(8)); ok {
			victim = i
		}
	case "kill-meta-leader":
		if i, ok := f.leaderOf(0); ok {
			victim = i
		}
	case "partition-leader":
		if i, ok := f.leaderOf(rng.IntN(9)); ok { // a data group's or the meta group's
			victim = i
		}
	}
	hold := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
	if kind == "pause-leader" {
		hold = time.Duration(1000+rng.IntN(9000)) * time.Millisecond // 1-10 s, past the election timeout
	}
	f.mu.Lock()
	f.counts[kind]++
	f.mu.Unlock()
	switch kind {
	case "partition-leader": // the leader on the minority side, clients still reach it
		f.fw.isolate(victim)
		time.Sleep(hold) // the fault's duration, chosen at random
		f.fw.heal()
		return
	case "partition-snapshot":
		f.cutUntilSnapshotNeeded(rng)
		return
	case "partition-pair": // two nodes cannot talk; both still reach the third
		f.fw.cut(victim, (victim+1+rng.IntN(len(f.c.procs)-1))%len(f.c.procs))
		time.Sleep(hold) // the fault's duration, chosen at random
		f.fw.heal()
		return
	}
	if strings.HasPrefix(kind, "pause") {
		p := f.c.procs[victim].cmd.Process
		_ = p.Signal(syscall.SIGSTOP)
		time.Sleep(hold) // the fault's duration, chosen at random
		_ = p.Signal(syscall.SIGCONT)
		return
	}
	f.setDown(victim, true)
	f.c.kill(victim)
	time.Sleep(hold) // the fault's duration, chosen at random
	f.c.start(victim)
	f.c.waitReady(victim)
	f.setDown(victim, false)
}

// cutUntilSnapshotNeeded isolates a follower of the group holding the {snapfault}
// keys, writes snapshotFaultWrites entries to that group through the majority (far
// past the snapshot threshold plus the kept tail), then heals: the follower must be
// brought back by a snapshot, which checkSnapshotInstalled looks for in its log.
func (f *faultState) cutUntilSnapshotNeeded(rng *rand.Rand) {
	t := f.c.t
	const probeKey = "{snapfault}/0"
	mustPutVia(t, f.c.procs[0].httpURL, probeKey, "start")
	leader := groupLeader(t, f.c, probeKey)
	resp, err := api(t, f.c.procs[leader].httpURL).GetKeyWithResponse(context.Background(), probeKey, nil)
	if err != nil || resp.Headers200 == nil {
		t.Errorf("GET %s: %v %v", probeKey, resp, err)
		return
	}
	group := resp.Headers200.XRingkvGroup
	victim := (leader + 1 + rng.IntN(len(f.c.procs)-1)) % len(f.c.procs)
	logFrom := logSize(f.c.procs[victim].logPath) // a restore logged after this comes from this cut
	f.fw.isolate(victim)
	f.setDown(victim, true) // its clients would only see errors; let them wait
	// One writer, so group commit cannot pack two writes into one entry: every write
	// is one more entry in the group's log.
	w := &writer{t: t, acked: map[string]string{}}
	for n := 0; n < snapshotFaultWrites; n++ {
		url := f.c.procs[(victim+1+n%2)%len(f.c.procs)].httpURL
		// Retried until acknowledged: a leader change inside the majority is allowed,
		// the number of entries written is what matters.
		for attempt := 0; attempt < 50 && !w.put(url, fmt.Sprintf("{snapfault}/%d", n%40), fmt.Sprintf("v%d", n)); attempt++ {
			time.Sleep(20 * time.Millisecond) // back off before the retry
		}
	}
	f.fw.heal()
	f.setDown(victim, false)
	f.mu.Lock()
	f.snapshotVictims = append(f.snapshotVictims, snapshotVictim{node: victim, group: group, logFrom: logFrom})
	f.mu.Unlock()
	t.Logf("node%d cut off while %d writes went to its group; %d acknowledged", victim+1, snapshotFaultWrites, w.count)
}

// snapshotVictim is a follower cut off until its group's leader compacted its log.
type snapshotVictim struct {
	node    int
	group   int64
	logFrom int64 // its log's size when it was cut off: the restore is logged after
}

// checkSnapshotInstalled waits until every follower cut off by cutUntilSnapshotNeeded
// has logged restoring its group's state from a snapshot sent by the leader.
func (f *faultState) checkSnapshotInstalled() {
	for _, v := range f.snapshotVictims {
		want := fmt.Sprintf(`msg="restored snapshot" node=node%d group=%d `, v.node+1, v.group)
		eventually(f.c.t, 30*time.Second, fmt.Sprintf("node%d restores group %d from a snapshot", v.node+1, v.group), func() error {
			b, err := os.ReadFile(f.c.procs[v.node].logPath)
			if err != nil {
				return err
			}
			if int64(len(b)) < v.logFrom || !strings.Contains(string(b[v.logFrom:]), want) {
				return fmt.Errorf("no %q in node%d's log since it was cut off", want, v.node+1)
			}
			return nil
		})
	}
}

func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func runFaults(t *testing.T, kind string, seed uint64, d time.Duration) {
	extra := faultNodeFlags
	var c *cluster
	var fw *firewall
	// With TLS and authentication on (the secure-by-default mode): the runs check the
	// data path through the cluster client and the mutual-TLS cluster port too.
	opts := clusterOpts{secure: os.Getenv("RINGKV_FAULT_PLAIN") == ""}
	if strings.HasPrefix(kind, "partition") {
		c, fw = startPartitionableClusterWith(t, 3, opts, extra...)
	} else {
		c = startProcClusterWith(t, 3, opts, extra...)
	}
	f := &faultState{c: c, fw: fw, down: map[int]bool{}, counts: map[string]int{}}
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("jk-%d", i)
	}
	w := newWorkload(t, f.urls, keys, 12)
	checkWatches := startFaultWatchers(t, f, w, "jk-", 3, seed)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	rng := rand.New(rand.NewPCG(seed, seed))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(500+rng.IntN(1500)) * time.Millisecond): // time between faults
			f.inject(kind, rng)
		}
	}
	<-done
	for i := range c.procs { // heal: everything up and ready
		c.waitReady(i)
	}
	checkAfterHealing(t, c, w)
	checkWatches()
	f.checkSnapshotInstalled()
	if len(f.counts) == 0 {
		t.Fatalf("no %s fault was injected: the run tested nothing", kind)
	}
	if w.counts["ok"] < 100 {
		t.Fatalf("only %d operations completed: the run checked too little (%v)", w.counts["ok"], w.counts)
	}
	t.Logf("faults injected: %v; operations: %v", f.counts, w.counts)
}

// checkAfterHealing runs the checks every fault run ends with.
func checkAfterHealing(t *testing.T, c *cluster, w *workload) {
	t.Helper()
	eventually(t, 30*time.Second, "a write and a read on every group", func() error {
		groups := map[string]bool{}
		for i := 0; i < 200 && len(groups) < 8; i++ {
			key := fmt.Sprintf("heal-%d", i)
			u := c.procs[i%len(c.procs)].httpURL
			resp, err := api(t, u).PutKeyWithBodyWithResponse(context.Background(), key, nil, "application/octet-stream", strings.NewReader("x"))
			if err != nil {
				return err
			}
			if resp.StatusCode() >= 300 {
				return fmt.Errorf("PUT %s: %s", key, resp.Status())
			}
			if status, v, err := readValue(t, u, key); err != nil || status != http.StatusOK || v != "x" {
				return fmt.Errorf("GET %s: %d %q %v", key, status, v, err)
			}
			groups[resp.HTTPResponse.Header.Get("X-Ringkv-Group")] = true
		}
		if len(groups) < 8 {
			return fmt.Errorf("only %d groups reached", len(groups))
		}
		return nil
	})
	if err := w.finalReads(c.procs[0].httpURL); err != nil {
		t.Fatal(err)
	}
	waitDigestsAgree(t, c.nodeURLs())
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, w.history, linearizabilityCheckTimeout)
	switch res {
	case porcupine.Ok:
		t.Logf("history of %d operations is linearizable (checked in %v)", len(w.history), time.Since(start).Round(time.Millisecond))
	case porcupine.Illegal:
		t.Fatalf("history of %d operations is NOT linearizable; artifacts in %s", len(w.history), saveArtifacts(t, info))
	default:
		t.Fatalf("the linearizability check of %d operations did not finish in %v; artifacts in %s", len(w.history), linearizabilityCheckTimeout, saveArtifacts(t, info))
	}
}

// linearizabilityCheckTimeout bounds porcupine's search; a 45 s run's history of 50k
// operations takes under a second here.
const linearizabilityCheckTimeout = 2 * time.Minute

// saveArtifacts keeps the porcupine visualization; the cluster's cleanup keeps the
// node logs and data dirs beside it (keepArtifacts).
func saveArtifacts(t *testing.T, info porcupine.LinearizationInfo) string {
	dir := artifactsDir(t)
	if err := porcupine.VisualizePath(kvModel, info, filepath.Join(dir, "history.html")); err != nil {
		t.Logf("visualization: %v", err)
	}
	return dir
}

// TestCheckerCatchesStaleReads is the negative control: the same workload with
// ?consistency=stale reads, while one node is cut off from the others but not from the
// clients pinned to it, is allowed to read stale values, so the checker must report
// the history as not linearizable. A checker that passed this would prove nothing.
func TestCheckerCatchesStaleReads(t *testing.T) {
	c, fw := startPartitionableCluster(t, 3)
	f := &faultState{c: c, down: map[int]bool{}}
	fw.isolate(2)
	deadline := time.Now().Add(60 * time.Second)
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		w := newWorkload(t, f.urls, []string{"stale-0", "stale-1"}, 6)
		w.stale = true
		w.pinEvery = 1 // every client pinned: half of them to followers
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		w.run(ctx)
		cancel()
		if res := porcupine.CheckOperationsTimeout(kvModel, w.history, time.Minute); res == porcupine.Illegal {
			t.Logf("attempt %d: %d operations with stale reads: not linearizable, as expected", attempt, len(w.history))
			return
		}
	}
	t.Fatal("stale reads never produced a violation: the linearizability check cannot fail")
}
