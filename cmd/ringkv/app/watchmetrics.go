package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/httpapi"
)

// registerWatchMetrics exports the node's watches (httpapi.Server.WatchCounts), read
// at scrape time: ringkv_watchers{kind} open now (stream: SSE, poll: long polls),
// ringkv_watch_events_sent_total (changes written to clients) and
// ringkv_watch_slow_consumers_total (watches ended because the client did not keep
// up). Events sent against the writes applied is how far watchers lag; a rising
// slow-consumer count names clients that cannot take the change rate.
//
// It answers the observer of ringkv_watch_delivery_delay_seconds (httpapi's
// Config.WatchDelay): how long after its commit (its leader's append time, so across
// nodes it includes their clock difference) each event was written to its client. A
// watch catching up from an old cursor shows there as lag.
func registerWatchMetrics(reg prometheus.Registerer, n *Node) func(time.Duration) {
	counts := func() httpapi.WatchCounts {
		if n.api == nil { // before the HTTP API is built
			return httpapi.WatchCounts{}
		}
		return n.api.WatchCounts()
	}
	for _, kind := range []string{"stream", "poll"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "ringkv_watchers",
			Help:        "Watches open on this node: SSE streams (kind=stream) and long polls (kind=poll).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			c := counts()
			if kind == "stream" {
				return float64(c.Streams)
			}
			return float64(c.Polls)
		}))
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ringkv_watch_events_sent_total",
			Help: "Changes (puts and deletes) this node wrote to watch streams and long polls.",
		}, func() float64 { return float64(counts().EventsSent) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ringkv_watch_slow_consumers_total",
			Help: "Watches this node ended because their client did not take its events in time (it resumes from its last event id).",
		}, func() float64 { return float64(counts().SlowConsumers) }),
	)
	delay := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ringkv_watch_delivery_delay_seconds",
		Help:    "Time from a change's commit (its leader's append time) to its event being written to a watch stream or long poll; includes catching up from an old cursor.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
	})
	reg.MustRegister(delay)
	return func(d time.Duration) { delay.Observe(d.Seconds()) }
}
