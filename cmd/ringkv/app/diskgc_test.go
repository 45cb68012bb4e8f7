package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/ringkv/ringkv/raftgroup"
)

// The case: 300 overwrites of a 100 KiB key and then its delete left ~30 MB
// in the node's Badger dir holding no live data. With value-log GC running, the dir
// gives the dead values back while the node keeps running: all but the value-log file
// still being written (16 MiB at most) goes.
func TestValueLogGCGivesSpaceBack(t *testing.T) {
	c := startCluster(t, 1, func(cfg *Config) {
		cfg.Groups, cfg.Partitions = 1, 4
		cfg.GC = raftgroup.GCTuning{Interval: 300 * time.Millisecond, FlushEvery: -1}
		// Watch history keeps the values of its last changes (new and previous): keep
		// few, so the space the delete frees is the value log's to give back.
		cfg.WatchHistory = raftgroup.HistoryRetention{Entries: 4}
	})
	host := c.nodes[0].node.host
	value := strings.Repeat("x", 100<<10)
	peak := int64(0)
	for i := 0; i < 300; i++ {
		c.mustPut(0, "big", value)
		peak = max(peak, host.DiskUsage().State)
	}
	if status, _, body := c.do(0, http.MethodDelete, "/kv/big", ""); status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	after := host.DiskUsage().State
	t.Logf("Badger dir: at most %d bytes during the writes, %d after the delete (GC so far %+v)", peak, after, host.GCStats())
	began := time.Now()
	const bound = 16<<20 + 4<<20 // the value-log file being written, and the LSM and memtable
	eventually(t, 30*time.Second, "the Badger dir shrinks", func() error {
		if s := host.DiskUsage().State; s > bound {
			return fmt.Errorf("Badger dir holds %d bytes, want <= %d (GC %+v)", s, bound, host.GCStats())
		}
		return nil
	})
	gc := host.GCStats()
	t.Logf("Badger dir %d bytes %v later; GC %+v", host.DiskUsage().State, time.Since(began).Round(time.Millisecond), gc)
	if gc.Rewrites == 0 {
		t.Fatalf("the dir shrank without a value-log rewrite: %+v", gc)
	}
	// What /metrics says of it: the data dir by kind, the free space, the GC's work.
	_, _, body := c.do(0, http.MethodGet, "/metrics", "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]float64{}
	for _, m := range families["ringkv_disk_bytes"].GetMetric() {
		kinds[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if kinds["state"] <= 0 || kinds["state"] > bound || kinds["raft_log"] <= 0 || len(kinds) != 3 {
		t.Errorf("ringkv_disk_bytes by kind = %v", kinds)
	}
	if f := families["ringkv_disk_free_bytes"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() <= 0 {
		t.Errorf("ringkv_disk_free_bytes = %v", f)
	}
	if f := families["ringkv_value_log_gc_rewrites_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() < 1 {
		t.Errorf("ringkv_value_log_gc_rewrites_total = %v", f)
	}
}
