package app

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descDiskBytes   = prometheus.NewDesc("ringkv_disk_bytes", "Bytes the node's data dir holds on disk (allocated), by kind: state (the Badger DB), raft_log (Raft logs and stable stores), snapshots.", []string{"kind"}, nil)
	descDiskFree    = prometheus.NewDesc("ringkv_disk_free_bytes", "Free bytes on the data dir's filesystem, as last polled (every second).", nil, nil)
	descDiskReserve = prometheus.NewDesc("ringkv_disk_reserve_bytes", "Free space kept back (--disk-reserve-bytes): writes are refused with 507 below it.", nil, nil)
	descDiskFull    = prometheus.NewDesc("ringkv_disk_full", "1 while the free space is below the reserve and writes are refused, else 0.", nil, nil)
	descGCRounds    = prometheus.NewDesc("ringkv_value_log_gc_rounds_total", "Value-log GC rounds run.", nil, nil)
	descGCRewrites  = prometheus.NewDesc("ringkv_value_log_gc_rewrites_total", "Value-log files the GC rewrote and deleted.", nil, nil)
	descGCFlushes   = prometheus.NewDesc("ringkv_value_log_gc_flushes_total", "Memtable flushes the GC forced to learn which value-log bytes are dead.", nil, nil)
	descGCReclaimed = prometheus.NewDesc("ringkv_value_log_gc_reclaimed_bytes_total", "Bytes the Badger dir shrank by over GC rounds.", nil, nil)
	descGCLast      = prometheus.NewDesc("ringkv_value_log_gc_last_round_seconds", "How long the last value-log GC round took.", nil, nil)
)

// diskCollector reads the node's disk and value-log GC figures at scrape time.
type diskCollector struct{ n *Node }

func (c diskCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDiskBytes, descDiskFree, descDiskReserve, descDiskFull, descGCRounds, descGCRewrites, descGCFlushes, descGCReclaimed, descGCLast} {
		ch <- d
	}
}

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	u := c.n.host.DiskUsage()
	for kind, v := range map[string]int64{"state": u.State, "raft_log": u.RaftLog, "snapshots": u.Snapshots} {
		ch <- prometheus.MustNewConstMetric(descDiskBytes, prometheus.GaugeValue, float64(v), kind)
	}
	st := c.n.host.Disk().State()
	full := 0.0
	if st.Full {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(st.FreeBytes))
	ch <- prometheus.MustNewConstMetric(descDiskReserve, prometheus.GaugeValue, float64(st.ReserveBytes))
	ch <- prometheus.MustNewConstMetric(descDiskFull, prometheus.GaugeValue, full)
	gc := c.n.host.GCStats()
	ch <- prometheus.MustNewConstMetric(descGCRounds, prometheus.CounterValue, float64(gc.Rounds))
	ch <- prometheus.MustNewConstMetric(descGCRewrites, prometheus.CounterValue, float64(gc.Rewrites))
	ch <- prometheus.MustNewConstMetric(descGCFlushes, prometheus.CounterValue, float64(gc.Flushes))
	ch <- prometheus.MustNewConstMetric(descGCReclaimed, prometheus.CounterValue, float64(gc.ReclaimedBytes))
	ch <- prometheus.MustNewConstMetric(descGCLast, prometheus.GaugeValue, gc.LastRound.Seconds())
}
