package app

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsOfAThreeNodeCluster scrapes every node and checks the reference
// project's metric names are there with sensible values: exactly one node reports
// raft_state 2 (leader) for each group.
func TestMetricsOfAThreeNodeCluster(t *testing.T) {
	c := startCluster(t, 3)
	c.mustPut(0, "m", "1")
	eventually(t, 20*time.Second, "one leader per group in raft_state", func() error {
		leaders := map[string]int{}
		for i := range c.nodes {
			status, _, body := c.do(i, "GET", "/metrics", "")
			if status != 200 {
				return fmt.Errorf("node %d /metrics: %d", i, status)
			}
			parser := expfmt.NewTextParser(model.UTF8Validation)
			families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
			if err != nil {
				return err
			}
			for _, name := range []string{"raft_replication_lag", "raft_request_latency_seconds", "raft_node_health", "raft_term",
				"raft_state", "raft_log_size", "raft_committed_index", "ringkv_http_requests_total", "ringkv_placement_nodes",
				"ringkv_watchers", "ringkv_watch_events_sent_total", "ringkv_watch_slow_consumers_total", "ringkv_watch_delivery_delay_seconds",
				"go_goroutines"} {
				if name == "raft_replication_lag" || name == "raft_node_health" || name == "raft_request_latency_seconds" {
					continue // only a group's leader reports these; checked below
				}
				if _, ok := families[name]; !ok {
					return fmt.Errorf("node %d lacks %s", i, name)
				}
			}
			for _, m := range families["raft_state"].GetMetric() {
				if m.GetGauge().GetValue() == 2 {
					leaders[m.GetLabel()[0].GetValue()]++
				}
			}
			for _, m := range families["raft_term"].GetMetric() {
				if m.GetGauge().GetValue() < 1 {
					return fmt.Errorf("node %d: group %s has term %v", i, m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
				}
			}
			if f, ok := families["ringkv_placement_nodes"]; ok {
				for _, m := range f.GetMetric() {
					if m.GetLabel()[0].GetValue() == "up" && m.GetGauge().GetValue() != 3 {
						return fmt.Errorf("node %d: %v nodes up, want 3", i, m.GetGauge().GetValue())
					}
				}
			}
		}
		for g := 0; g <= 8; g++ {
			if leaders[strconv.Itoa(g)] != 1 {
				return fmt.Errorf("group %d has %d nodes reporting raft_state 2", g, leaders[strconv.Itoa(g)])
			}
		}
		return nil
	})
	// The leader of m's group reports lag and health for all three replicas.
	leader := c.leaderOf("m")
	_, hdr, _ := c.do(0, "GET", "/kv/m", "")
	_, _, body := c.do(leader, "GET", "/metrics", "")
	if !strings.Contains(string(body), `raft_request_latency_seconds_count{group="`+hdr.Get("X-Ringkv-Group")+`",op="put"}`) {
		t.Fatal("the leader did not time the put in raft_request_latency_seconds")
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		want := fmt.Sprintf(`raft_node_health{group="%s",peer="%s"}`, hdr.Get("X-Ringkv-Group"), id)
		if !strings.Contains(string(body), want) {
			t.Fatalf("leader's metrics lack %s", want)
		}
	}
}
