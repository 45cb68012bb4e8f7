package e2e

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// The availability promise of issue #13, through the binary: a cluster that is not
// failing answers every request, whatever it does meanwhile. Each test runs a load
// (load_test.go) that counts every answer that is not 2xx and fails on any.

// TestAvailabilityFreshCluster: the load starts the moment every node is ready and
// every group has 3 voters and a leader, while leader balancing still moves
// leaderships (a fresh cluster's first seconds answered 16 of 19,000 requests 503).
func TestAvailabilityFreshCluster(t *testing.T) {
	c := startProcCluster(t, 3)
	l := startLoad(c, loadOptions{prefix: "fresh", clients: 16, lists: true})
	time.Sleep(15 * time.Second) // the scenario's length: leader balancing runs meanwhile
	l.stop(t, "fresh cluster, 16 clients for 15 s")
}

// TestAvailabilityLeaderTransfers: leaderships are transferred in a loop, through
// every node in turn, under load.
func TestAvailabilityLeaderTransfers(t *testing.T) {
	c := startProcCluster(t, 3)
	l := startLoad(c, loadOptions{prefix: "transfer", clients: 16, lists: true})
	transfers := 0
	for deadline := time.Now().Add(12 * time.Second); time.Now().Before(deadline); {
		via := c.procs[transfers%len(c.procs)].httpURL
		groups, err := api(t, via).ListGroupsWithResponse(context.Background())
		if err != nil || groups.JSON200 == nil {
			t.Fatalf("listing groups: %v %v", err, groups)
		}
		g := groups.JSON200.Groups[transfers%len(groups.JSON200.Groups)]
		if g.Leader == "" { // this node has not heard of the last transfer's outcome yet
			time.Sleep(50 * time.Millisecond) // poll interval
			continue
		}
		var to string
		for _, r := range g.Replicas {
			if r.Voter && r.Node != g.Leader {
				to = r.Node
			}
		}
		resp, err := api(t, via).TransferLeaderWithResponse(context.Background(), g.Id, openapi.TransferLeaderJSONRequestBody{Node: &to})
		if err != nil || resp.StatusCode() != http.StatusOK {
			t.Fatalf("transfer of group %d from %s to %s: %v %s", g.Id, g.Leader, to, err, resp.Body)
		}
		transfers++
		eventually(t, 10*time.Second, "load going on", l.answered(50))
	}
	l.stop(t, fmt.Sprintf("%d leadership transfers under 16 clients", transfers))
	if transfers < 10 {
		t.Fatalf("only %d transfers were made", transfers)
	}
}

// TestAvailabilityRollingRestart: each node in turn gets SIGTERM, exits and is started
// again while 16 clients write, read and list through every node. They stop sending
// to a node once its /readyz stops answering 200, polled every 50 ms, as a load
// balancer's health check would: a stopping node says so at once and goes on serving
// what it is sent until none has come for 250 ms. It hands its leaderships off;
// requests that meet a leader change wait for it and follow it (a rolling restart
// answered 1,364 of 94,700 requests 503 before).
func TestAvailabilityRollingRestart(t *testing.T) {
	c := startProcCluster(t, 3)
	var down atomic.Int64
	down.Store(-1)
	l := startLoad(c, loadOptions{prefix: "roll", clients: 16, lists: true, avoid: func() int { return int(down.Load()) }})
	for i := range c.procs {
		eventually(t, 20*time.Second, "load running", l.answered(200))
		p := c.procs[i]
		healthCheck := make(chan struct{})
		go func() { // the load balancer's health check of node i
			defer close(healthCheck)
			for {
				resp, err := http.Get(p.httpURL + "/readyz")
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					down.Store(int64(i))
					return
				}
				time.Sleep(50 * time.Millisecond) // the check's interval
			}
		}()
		start := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
			<-healthCheck
		case <-time.After(20 * time.Second):
			t.Fatalf("node%d did not stop within 20 s of SIGTERM", i+1)
		}
		took := time.Since(start)
		t.Logf("node%d stopped %s after SIGTERM (exit status %d)", i+1, took.Round(time.Millisecond), p.cmd.ProcessState.ExitCode())
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("node%d exited with status %d after SIGTERM", i+1, code)
		}
		p.cmd = nil
		c.start(i)
		c.waitReady(i)
		c.waitReplicated()
		down.Store(-1)
	}
	eventually(t, 20*time.Second, "load running after the restarts", l.answered(200))
	l.stop(t, "rolling restart of 3 nodes under 16 clients")
}

// TestAvailabilityDecommission: a node is decommissioned under load; its replicas move
// to the other nodes and its leaderships with them. The clients stop sending to it
// when the decommission begins, as a load balancer would.
func TestAvailabilityDecommission(t *testing.T) {
	c := startProcCluster(t, 4)
	var avoid atomic.Int64
	avoid.Store(-1)
	l := startLoad(c, loadOptions{prefix: "decom", clients: 16, lists: true, avoid: func() int { return int(avoid.Load()) }})
	eventually(t, 20*time.Second, "load running", l.answered(200))
	avoid.Store(3)
	resp, err := api(t, c.procs[0].httpURL).DecommissionNodeWithResponse(context.Background(), "node4", nil)
	if err != nil || resp.StatusCode() != http.StatusAccepted {
		t.Fatalf("decommission of node4: %v %s", err, resp.Body)
	}
	eventually(t, 90*time.Second, "node4 holds no replica and every group 3 voters", func() error {
		groups, err := api(t, c.procs[0].httpURL).ListGroupsWithResponse(context.Background())
		if err != nil || groups.JSON200 == nil {
			return fmt.Errorf("listing groups: %v", err)
		}
		for _, g := range groups.JSON200.Groups {
			voters := 0
			for _, r := range g.Replicas {
				if r.Node == "node4" {
					return fmt.Errorf("group %d still has a replica on node4", g.Id)
				}
				if r.Voter {
					voters++
				}
			}
			if g.Leader == "" || voters != 3 {
				return fmt.Errorf("group %d: leader %q, %d voters", g.Id, g.Leader, voters)
			}
		}
		return nil
	})
	eventually(t, 20*time.Second, "load running after the decommission", l.answered(200))
	l.stop(t, "decommission of node4 under 16 clients")
}

// TestAvailabilityListStorm: 128 clients list 1,000 keys at a time, as fast as they
// are answered, beside 16 clients of point requests. Lists are bounded work (a page's
// bytes, listings at once), so Raft's heartbeats keep flowing: no group holds an
// election (read from ringkv_raft_elections_total), and every point request is
// answered (32 concurrent lists once caused 34 elections in 7 s). A listing is served
// in its turn or, when its turn does not come within 5 s, refused as overload (503,
// Retry-After, nothing done); never failed otherwise.
func TestAvailabilityListStorm(t *testing.T) {
	c := startProcCluster(t, 3)
	value := strings.Repeat("v", 1000)
	var wg sync.WaitGroup
	for w := range 32 { // 3,200 keys of 1 kB
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/kv/storm-%02d-%03d", c.procs[w%3].httpURL, w, i), strings.NewReader(value))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode >= 300 {
					t.Errorf("loading storm-%02d-%03d: %v %v", w, i, err, resp)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Leader balancing's transfers are elections too: the count starts once it is done.
	waitBalanced(t, c)
	before := elections(t, c)
	points := startLoad(c, loadOptions{prefix: "point", clients: 16})
	lists := &countingLoad{overloadOK: true}
	ctx, cancel := context.WithCancel(context.Background())
	lists.cancel = cancel
	client := &http.Client{Timeout: 15 * time.Second}
	for w := range 128 {
		lists.wg.Add(1)
		go func() {
			defer lists.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				node := (w + i) % 3
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.procs[node].httpURL+"/kv?limit=1000", nil)
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				lists.count(fmt.Sprintf("GET node%d /kv?limit=1000", node+1), resp, err)
			}
		}()
	}
	time.Sleep(10 * time.Second) // the storm's length
	lists.stop(t, "128 concurrent lists of 1,000 keys for 10 s")
	points.stop(t, "16 clients of point requests beside the list storm")
	after := elections(t, c)
	t.Logf("elections during the storm: %d (%d before, %d after)", after-before, before, after)
	if after != before {
		t.Errorf("the list storm caused %d leader elections", after-before)
	}
}

// elections sums ringkv_raft_elections_total over every node and group.
func elections(t *testing.T, c *cluster) int {
	t.Helper()
	total := 0
	for i, p := range c.procs {
		resp, err := http.Get(p.httpURL + "/metrics")
		if err != nil {
			t.Fatalf("metrics of node%d: %v", i+1, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "ringkv_raft_elections_total{") {
				continue
			}
			fields := strings.Fields(line)
			n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				t.Fatalf("node%d: %q: %v", i+1, line, err)
			}
			total += int(n)
		}
		resp.Body.Close()
	}
	return total
}

// waitBalanced waits until no node leads more than one data group more than another:
// leader balancing is done.
func waitBalanced(t *testing.T, c *cluster) {
	t.Helper()
	eventually(t, 30*time.Second, "leaders balanced", func() error {
		groups, err := api(t, c.procs[0].httpURL).ListGroupsWithResponse(context.Background())
		if err != nil || groups.JSON200 == nil {
			return fmt.Errorf("listing groups: %v", err)
		}
		led := map[string]int{}
		for i := range c.procs {
			led[fmt.Sprintf("node%d", i+1)] = 0
		}
		for _, g := range groups.JSON200.Groups {
			if g.Id != 0 {
				led[g.Leader]++
			}
		}
		counts := slices.Collect(maps.Values(led))
		if slices.Max(counts)-slices.Min(counts) > 1 {
			return fmt.Errorf("groups led per node: %v", led)
		}
		return nil
	})
}
