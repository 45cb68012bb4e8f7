//go:build availability

// The availability checks of issue #13 that do not yet pass every run: `make
// availability` runs them. They are not in `make test` until they do (see the issue's
// notes: a forwarded write that meets a keep-alive connection closed by a node that
// just stopped is answered "outcome unknown").

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRollingRestartUnderLoadAnswersEveryRequest is the availability promise of a
// rolling restart (issue #13): each node in turn gets SIGTERM, exits, and is started
// again, while 16 clients write and read through the nodes that are up. A stopping
// node hands its leaderships off and drains; requests that meet a leader change wait
// for it and follow it. Every answer that is not 2xx is counted and fails the test; a
// client stops sending to a node just before it is stopped, as a load balancer that
// drains it would.
func TestRollingRestartUnderLoadAnswersEveryRequest(t *testing.T) {
	c := startProcCluster(t, 3)
	var (
		stopping atomic.Int64 // index+1 of the node being restarted, 0 for none
		ok, bad  atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	stopping.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 15 * time.Second}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("roll-%d-%d", w, i%100)
				for _, method := range []string{http.MethodPut, http.MethodGet} {
					node := (w + i) % 3
					if int64(node+1) == stopping.Load() {
						node = (node + 1) % 3
					}
					req, _ := http.NewRequestWithContext(ctx, method, c.procs[node].httpURL+"/kv/"+key, strings.NewReader(fmt.Sprint(i)))
					resp, err := client.Do(req)
					if ctx.Err() != nil {
						return
					}
					if err == nil && resp.StatusCode < 300 {
						ok.Add(1)
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						continue
					}
					bad.Add(1)
					what := fmt.Sprint(err)
					if err == nil {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						what = fmt.Sprintf("%d %s", resp.StatusCode, b)
					}
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s node%d %s: %s", method, node+1, key, what))
					mu.Unlock()
				}
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range c.procs {
		stopping.Store(int64(i + 1))
		time.Sleep(200 * time.Millisecond) // requests already sent to it finish; a load balancer's drain delay
		p := c.procs[i]
		start := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			t.Fatalf("node%d did not stop within 20 s of SIGTERM", i+1)
		}
		t.Logf("node%d stopped %s after SIGTERM (exit status %d)", i+1, time.Since(start).Round(time.Millisecond), p.cmd.ProcessState.ExitCode())
		p.cmd = nil
		c.start(i)
		c.waitReady(i)
		c.waitReplicated()
		stopping.Store(0)
	}
	cancel()
	wg.Wait()
	t.Logf("rolling restart of 3 nodes: %d requests answered, %d not", ok.Load(), bad.Load())
	if bad.Load() > 0 {
		t.Fatalf("%d requests failed in a rolling restart, e.g.:\n%s", bad.Load(), strings.Join(failures[:min(10, len(failures))], "\n"))
	}
	if ok.Load() == 0 {
		t.Fatal("no request was answered: the load did not run")
	}
}
