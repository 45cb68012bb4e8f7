package httpapi

import (
	"sync/atomic"
	"time"
)

// watchStats counts this node's watches as they run; the node exports them as
// metrics (WatchCounts).
type watchStats struct {
	streams, polls atomic.Int64  // open now
	eventsSent     atomic.Uint64 // changes written to clients (streams and long polls)
	slowConsumers  atomic.Uint64 // watches ended because their client did not keep up
}

// WatchCounts is a snapshot of this node's watches.
type WatchCounts struct {
	// Streams and Polls are the SSE streams and long polls open now.
	Streams, Polls int64
	// EventsSent counts the changes written to clients since the node started.
	EventsSent uint64
	// SlowConsumers counts the watches ended because their client did not take its
	// events for SlowConsumerAfter.
	SlowConsumers uint64
}

// WatchCounts reports this node's watches (ringkv_watchers and the watch counters).
func (s *Server) WatchCounts() WatchCounts {
	return WatchCounts{Streams: s.watchStats.streams.Load(), Polls: s.watchStats.polls.Load(),
		EventsSent: s.watchStats.eventsSent.Load(), SlowConsumers: s.watchStats.slowConsumers.Load()}
}

// delivered counts changes written to a client and times their delivery from their
// commit (Config.WatchDelay).
func (s *Server) delivered(committed []time.Time) {
	s.watchStats.eventsSent.Add(uint64(len(committed)))
	if s.watchDelay == nil {
		return
	}
	now := time.Now()
	for _, t := range committed {
		if !t.IsZero() {
			s.watchDelay(max(now.Sub(t), 0))
		}
	}
}
