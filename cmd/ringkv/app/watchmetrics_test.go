package app

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/ringkv/ringkv/raftgroup"
)

// TestWatchDeliveryDelayIsTimedFromTheCommit: every node, a follower of the key's group
// too (it applies the entry with the time its leader appended it, sent with the entry),
// times the event it writes from the change's commit.
func TestWatchDeliveryDelayIsTimedFromTheCommit(t *testing.T) {
	c := startCluster(t, 3)
	status, hdr, body := c.do(0, "GET", "/kv?prefix=wd/", "")
	cursor := hdr.Get("X-Ringkv-Cursor")
	if status != 200 || cursor == "" {
		t.Fatalf("listing: %d %s, cursor %q", status, body, cursor)
	}
	c.mustPut(0, "wd/a", "1")
	for i := range c.nodes {
		status, _, body := c.do(i, "GET", "/kv?prefix=wd/&wait=10s&since="+url.QueryEscape(cursor), "")
		if status != 200 || !strings.Contains(string(body), `"wd/a"`) {
			t.Fatalf("node %d long poll: %d %s", i, status, body)
		}
		_, _, metrics := c.do(i, "GET", "/metrics", "")
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(string(metrics)))
		if err != nil {
			t.Fatal(err)
		}
		f := families["ringkv_watch_delivery_delay_seconds"]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("node %d lacks ringkv_watch_delivery_delay_seconds", i)
		}
		h := f.GetMetric()[0].GetHistogram()
		// One event, committed moments ago on this machine's clock: its delay is
		// positive and well under the test's own time.
		if h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 || h.GetSampleSum() > 30 {
			t.Fatalf("node %d: %d delays summing %v s, want one of a few seconds at most", i, h.GetSampleCount(), h.GetSampleSum())
		}
		t.Logf("node %d: delivery delay %.3f s", i, h.GetSampleSum())
	}
}

// TestWatchHistoryByAgeAnswersGoneOnceOutOfIt: with --watch-history 1s, a cursor from
// before a change is resumable until changes committed more than a second later push
// that change out of every replica's history; then it is answered 410 with a newer
// cursor.
func TestWatchHistoryByAgeAnswersGoneOnceOutOfIt(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.WatchHistory = raftgroup.HistoryRetention{Age: time.Second} })
	_, hdr, _ := c.do(0, "GET", "/kv?prefix=age/", "")
	cursor := hdr.Get("X-Ringkv-Cursor")
	start := time.Now() // before the change's commit
	c.mustPut(0, "age/a", "0")
	poll := func() (int, []byte) {
		status, _, body := c.do(1, "GET", "/kv?prefix=age/&wait=5s&since="+url.QueryEscape(cursor), "")
		return status, body
	}
	if status, body := poll(); status != 200 || !strings.Contains(string(body), `"age/a"`) {
		t.Fatalf("resume right after the change: %d %s", status, body)
	}
	i := 0
	eventually(t, 30*time.Second, "a 410 once the change is older than the history", func() error {
		i++
		c.mustPut(0, "age/a", strconv.Itoa(i))
		if status, body := poll(); status != 410 || !strings.Contains(string(body), `"cursor"`) {
			return fmt.Errorf("after %d more changes: %d %.200s", i, status, body)
		}
		return nil
	})
	if d := time.Since(start); d < time.Second {
		t.Fatalf("the history dropped the change after %v, before its second was up", d)
	}
}
