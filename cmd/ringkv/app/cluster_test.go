package app

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/raftgroup"
)

func TestWritesThroughOneNodeAreReadThroughEvery(t *testing.T) {
	c := startCluster(t, 3)
	want := map[string]string{}
	for i := 0; i < 40; i++ {
		k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i)
		c.mustPut(i%3, k, v)
		want[k] = v
	}
	groups := map[uint32]bool{}
	for i := range c.nodes {
		for k, v := range want {
			status, kv := c.get(i, k, "")
			if status != http.StatusOK || kv.Value != v {
				t.Fatalf("node %d: GET %s = %d %+v, want %q", i, k, status, kv, v)
			}
			groups[kv.Group] = true
		}
	}
	if len(groups) < 4 {
		t.Fatalf("40 keys landed in only %d groups; the ring does not spread keys", len(groups))
	}
	// Stale reads on every node converge to the same values.
	for i := range c.nodes {
		eventually(t, 10*time.Second, "stale reads converge", func() error {
			for k, v := range want {
				if status, kv := c.get(i, k, "?consistency=stale"); status != http.StatusOK || kv.Value != v {
					return fmt.Errorf("node %d: %s = %d %q", i, k, status, kv.Value)
				}
			}
			return nil
		})
	}
}

func TestConcurrentCompareAndSwapHasOneWinner(t *testing.T) {
	c := startCluster(t, 3)
	c.mustPut(0, "counter", "0")
	_, hdr, _ := c.do(1, http.MethodGet, "/kv/counter", "")
	etag := hdr.Get("ETag")
	if etag == "" {
		t.Fatal("GET returned no ETag")
	}
	const writers = 8
	statuses := make([]int, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[w], _, _ = c.do(w%3, http.MethodPut, "/kv/counter", fmt.Sprintf("w%d", w), "If-Match", etag)
		}()
	}
	wg.Wait()
	wins := 0
	winner := ""
	for w, s := range statuses {
		switch s {
		case http.StatusOK:
			wins++
			winner = fmt.Sprintf("w%d", w)
		case http.StatusPreconditionFailed:
		default:
			t.Fatalf("writer %d: status %d", w, s)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won the compare-and-swap, want exactly 1 (%v)", wins, statuses)
	}
	if _, kv := c.get(2, "counter", ""); kv.Value != winner || kv.Version != 2 {
		t.Fatalf("counter = %+v, want %s at version 2", kv, winner)
	}
	// Create-only: a second create fails, the value stays.
	if s, _, _ := c.do(0, http.MethodPut, "/kv/counter", "x", "If-None-Match", "*"); s != http.StatusPreconditionFailed {
		t.Fatalf("If-None-Match on an existing key: %d, want 412", s)
	}
}

func TestLeaderLossFailsOverWithinSeconds(t *testing.T) {
	c := startCluster(t, 3)
	c.mustPut(0, "failover", "before")
	leader := c.leaderOf("failover")
	c.stop(leader)
	other := (leader + 1) % 3
	start := time.Now()
	c.mustPut(other, "failover", "after")
	t.Logf("write accepted %v after the leader stopped", time.Since(start))
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("failover took %v", took)
	}
	for i := range c.nodes {
		if i == leader {
			continue
		}
		if status, kv := c.get(i, "failover", ""); status != http.StatusOK || kv.Value != "after" {
			t.Fatalf("node %d: %d %+v", i, status, kv)
		}
	}
}

func TestRestartedNodeCatchesUpWithNothingLost(t *testing.T) {
	for _, store := range []raftgroup.LogStoreKind{raftgroup.LogStoreBolt, raftgroup.LogStoreWAL} {
		t.Run(string(store), func(t *testing.T) {
			c := startCluster(t, 3, func(cfg *Config) { cfg.Tuning.LogStore = store })
			restartedNodeCatchesUp(t, c)
			// Every replica was made by the store asked for: the test measured that one.
			for _, n := range c.nodes {
				for _, g := range n.node.host.Groups() {
					if got := g.LogStoreKind(); got != store {
						t.Fatalf("group %d on %s keeps its log in %s, want %s", g.ID(), n.cfg.ID, got, store)
					}
				}
			}
		})
	}
}

func restartedNodeCatchesUp(t *testing.T, c *testCluster) {
	want := map[string]string{}
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("r%02d", i)
		c.mustPut(0, k, "one")
		want[k] = "one"
	}
	c.stop(2)
	for i := 0; i < 30; i += 2 {
		k := fmt.Sprintf("r%02d", i)
		c.mustPut(1, k, "two")
		want[k] = "two"
	}
	c.start(2)
	c.waitReady(2)
	eventually(t, 20*time.Second, "restarted node holds every write", func() error {
		for k, v := range want {
			if status, kv := c.get(2, k, "?consistency=stale"); status != http.StatusOK || kv.Value != v {
				return fmt.Errorf("%s = %d %q, want %q", k, status, kv.Value, v)
			}
		}
		return nil
	})
	// And the whole cluster restarted: everything is still there.
	for i := range c.nodes {
		c.stop(i)
	}
	for i := range c.nodes {
		c.start(i)
	}
	for k, v := range want {
		eventually(t, 30*time.Second, "read after full restart", func() error {
			if status, kv := c.get(0, k, ""); status != http.StatusOK || kv.Value != v {
				return fmt.Errorf("%s = %d %q, want %q", k, status, kv.Value, v)
			}
			return nil
		})
	}
}
