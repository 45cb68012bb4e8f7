package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseWatcher follows a prefix through one node's SSE stream, reconnecting to the same
// node with its last event id whenever the stream ends, and keeps every put event.
type sseWatcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	values map[string][]int // key -> the values of its put events, in arrival order
	errs   []string         // error events and refused reconnects
}

func watchFrom(c *testCluster, i int, prefix, cursor string) *sseWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &sseWatcher{ctx: ctx, cancel: cancel, done: make(chan struct{}), values: map[string][]int{}}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			cursor = w.follow(c.addr(i), prefix, cursor)
		}
	}()
	return w
}

func (w *sseWatcher) stop() { w.cancel(); <-w.done }

// follow reads one stream until it ends and answers the last id it saw.
func (w *sseWatcher) follow(base, prefix, cursor string) string {
	req, _ := http.NewRequestWithContext(w.ctx, http.MethodGet,
		base+"/kv?watch=true&prefix="+url.QueryEscape(prefix)+"&since="+url.QueryEscape(cursor), nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		w.note(fmt.Sprintf("reconnect: %d", resp.StatusCode))
		resp.Body.Close()
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err != nil {
		select { // ask again shortly
		case <-w.ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
		return cursor
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var id, kind, data string
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			kind = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "":
			w.event(kind, data)
			if id != "" {
				cursor = id
			}
			id, kind, data = "", "", ""
		}
	}
	return cursor
}

func (w *sseWatcher) note(s string) {
	w.mu.Lock()
	w.errs = append(w.errs, s)
	w.mu.Unlock()
}

func (w *sseWatcher) event(kind, data string) {
	switch kind {
	case "put":
		var ev struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		_ = json.Unmarshal([]byte(data), &ev)
		var v int
		fmt.Sscan(ev.Value, &v)
		w.mu.Lock()
		w.values[ev.Key] = append(w.values[ev.Key], v)
		w.mu.Unlock()
	case "error":
		w.note(data)
	}
}

// check compares what the watcher saw with the writes: per key, every acknowledged
// value once, in the order written (values grow with time), and nothing that was not
// written (a value whose outcome was unknown may appear, once).
func (w *sseWatcher) check(acked, maybe map[string]map[int]bool) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var bad []string
	for key, vals := range w.values {
		for j, v := range vals {
			if j > 0 && v <= vals[j-1] {
				bad = append(bad, fmt.Sprintf("%s: %d after %d (duplicate or out of order)", key, v, vals[j-1]))
			}
			if !acked[key][v] && !maybe[key][v] {
				bad = append(bad, fmt.Sprintf("%s: %d was never written", key, v))
			}
		}
	}
	for key, vs := range acked {
		for v := range vs {
			if i := sort.SearchInts(w.values[key], v); i == len(w.values[key]) || w.values[key][i] != v {
				bad = append(bad, fmt.Sprintf("%s: acknowledged %d missing", key, v))
			}
		}
	}
	return bad
}

// has reports whether the watcher saw value v of key.
func (w *sseWatcher) has(key string, v int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range w.values[key] {
		if x == v {
			return true
		}
	}
	return false
}

func mark(m map[string]map[int]bool, key string, v int) {
	if m[key] == nil {
		m[key] = map[int]bool{}
	}
	m[key][v] = true
}

// TestWatchFollowsItsGroupsAsReplicasMoveOnAndOffTheServingNode: a stream on n1 keeps
// going while every replica moves off n1 (a node joins, n1 is decommissioned), and a
// stream on the new node from a cursor older than its replicas (created from
// snapshots) is served from the replicas that hold it, not answered 410: both see
// every acknowledged write once, in order.
func TestWatchFollowsItsGroupsAsReplicasMoveOnAndOffTheServingNode(t *testing.T) {
	// Short logs: a replica created on n4 is caught up by a snapshot, so its history
	// starts after the cursor taken before the writes.
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.Tuning.SnapshotInterval = 16, 8, 100*time.Millisecond
	})
	_, hdr, _ := c.do(0, http.MethodGet, "/kv?prefix=mv/", "")
	cursor := hdr.Get("X-Ringkv-Cursor")
	if cursor == "" {
		t.Fatal("the listing has no cursor")
	}
	onFirst := watchFrom(c, 0, "mv/", cursor)
	defer onFirst.stop()

	acked, maybe := map[string]map[int]bool{}, map[string]map[int]bool{}
	last := map[string]int{}
	var mu sync.Mutex
	stopWriting, written := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(written)
		for n := 1; ; n++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			urls := c.running()
			key := fmt.Sprintf("mv/k%d", n%20)
			req, _ := http.NewRequest(http.MethodPut, urls[n%len(urls)]+"/kv/"+key, strings.NewReader(fmt.Sprint(n)))
			status, body := 0, []byte(nil)
			if resp, err := c.client.Do(req); err == nil {
				status = resp.StatusCode
				body = make([]byte, 512)
				k, _ := resp.Body.Read(body)
				body = body[:k]
				resp.Body.Close()
			}
			ok := status == http.StatusOK || status == http.StatusCreated
			unknown := status == 0 || status == http.StatusGatewayTimeout || strings.Contains(string(body), `"unknown"`)
			mu.Lock()
			switch {
			case ok:
				mark(acked, key, n)
				last[key] = n
			case unknown:
				mark(maybe, key, n)
			}
			mu.Unlock()
		}
	}()

	c.addNode() // n4: balancing moves replicas onto it
	if status, _, body := c.do(1, http.MethodDelete, "/admin/nodes/n1", ""); status != http.StatusAccepted {
		t.Fatalf("DELETE /admin/nodes/n1: %d %s", status, body)
	}
	c.waitState("n1", "removed", 120*time.Second)
	eventually(t, 60*time.Second, "settled without n1", c.settled)
	if gs := c.table().GroupsOf("n1"); len(gs) > 0 {
		t.Fatalf("n1 still holds %v", gs)
	}
	onNew := watchFrom(c, 3, "mv/", cursor)
	defer onNew.stop()
	close(stopWriting)
	<-written

	for name, w := range map[string]*sseWatcher{"n1's stream": onFirst, "n4's stream": onNew} {
		eventually(t, 60*time.Second, name+" caught up with the last writes", func() error {
			for key, v := range last {
				if !w.has(key, v) {
					w.mu.Lock()
					defer w.mu.Unlock()
					return fmt.Errorf("%s lacks %s=%d (errors: %d %.300v)", name, key, v, len(w.errs), w.errs)
				}
			}
			return nil
		})
		w.stop()
		if bad := w.check(acked, maybe); len(bad) > 0 {
			t.Errorf("%s: %d problems, e.g. %v", name, len(bad), bad[:min(5, len(bad))])
		}
		if len(w.errs) > 0 {
			t.Errorf("%s: %d errors, e.g. %v", name, len(w.errs), w.errs[:min(5, len(w.errs))])
		}
	}
	total := 0
	for _, vs := range acked {
		total += len(vs)
	}
	t.Logf("%d acknowledged writes over %d keys, each seen once in order by both streams", total, len(acked))
}
