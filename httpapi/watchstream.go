package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// eventJSON is one change as a watch sends it: the `data` of an SSE event, an item of
// a long poll's `events`.
type eventJSON struct {
	Type        string    `json:"type"` // put or delete
	Key         string    `json:"key,omitempty"`
	KeyBase64   *string   `json:"key_base64,omitempty"`
	Value       *string   `json:"value,omitempty"`
	ValueBase64 *string   `json:"value_base64,omitempty"`
	Version     uint64    `json:"version,omitempty"`
	CreateIndex uint64    `json:"create_index,omitempty"`
	ModIndex    uint64    `json:"mod_index"`
	Group       uint32    `json:"group"`
	Prev        *prevJSON `json:"prev,omitempty"`
}

func toEvent(c Change, wantPrev bool) eventJSON {
	e := eventJSON{Type: "put", ModIndex: c.At.Index, Group: c.Group}
	e.Key, e.KeyBase64 = keyFields(c.Key)
	if c.Delete {
		e.Type = "delete"
	} else {
		e.Value, e.ValueBase64 = textOrBase64(c.Value.Value)
		e.Version, e.CreateIndex = c.Value.Version, c.Value.CreateIndex
	}
	if wantPrev {
		e.Prev = toPrev(c.Prev)
	}
	return e
}

// Timing of a stream: a comment after keepAliveEvery without a write (so proxies keep
// it open), a progress event at most every progressEvery while the cursor moves with
// no matching change, and writeWait for each write to reach the client.
const (
	keepAliveEvery = 15 * time.Second
	progressEvery  = time.Second
	writeWait      = 30 * time.Second
)

// watchKV serves a watch (SSE, watch=true) or a long poll (since= or wait=) of the
// keys under a prefix (key nil) or of one key.
func (s *Server) watchKV(w http.ResponseWriter, r *http.Request, key []byte) {
	q := r.URL.Query()
	wantPrev, err := boolParam(q, "prev")
	var stream bool
	if err == nil {
		stream, err = boolParam(q, "watch")
	}
	var wait time.Duration
	if err == nil {
		wait, err = parseWait(q)
	}
	if err == nil && stream && q.Has("wait") {
		err = fmt.Errorf("%w: wait is for a long poll; a watch=true stream does not end by itself", ErrBadRequest)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	start, cancelStart := context.WithTimeout(ctx, requestTimeout)
	spec, err := s.prepareWatch(start, r, key)
	cancelStart()
	if err != nil {
		s.writeWatchError(w, r, err)
		return
	}
	if stream {
		s.streamEvents(ctx, w, spec, wantPrev)
		return
	}
	s.longPoll(ctx, w, r, spec, wait, wantPrev)
}

// streamEvents writes the watch as Server-Sent Events until the client leaves or
// the watch fails: first a progress event carrying the start cursor, then an event
// per change with the cursor after it as its id.
func (s *Server) streamEvents(ctx context.Context, w http.ResponseWriter, spec watchSpec, wantPrev bool) {
	s.watchStats.streams.Add(1)
	defer s.watchStats.streams.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	cur := spec.start.Clone()
	lastWrite := time.Now()
	var buf strings.Builder
	var committed []time.Time // commit times of the changes in buf, counted once written
	// A client that does not take a write within the slow-consumer bound is cut off
	// (it resumes from its last event id), rather than holding the stream's buffers.
	slow := min(or(s.slowAfter, slowConsumerAfter), writeWait)
	cut := false
	cutOff := func() { // counted once per stream
		if !cut {
			s.watchStats.slowConsumers.Add(1)
		}
		cut, slow = true, writeWait // the last event, if any, gets the usual time
	}
	send := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(slow))
		_, err := w.Write([]byte(buf.String()))
		if err == nil {
			err = rc.Flush()
		}
		if err == nil {
			s.delivered(committed)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			cutOff()
		}
		buf.Reset()
		committed = committed[:0]
		lastWrite = time.Now()
		return err == nil
	}
	event := func(kind string, id string, data any) {
		b, _ := json.Marshal(data)
		if id != "" {
			fmt.Fprintf(&buf, "id: %s\n", id)
		}
		fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", kind, b)
	}
	progress := func() {
		c := cur.Encode()
		event("progress", c, map[string]string{"cursor": c})
	}
	progress()
	if !send() {
		return
	}
	batches := s.follow(ctx, spec, false)
	keepAlive, every := or(s.keepAlive, keepAliveEvery), or(s.progress, progressEvery)
	tick := time.NewTicker(min(every, keepAlive))
	defer tick.Stop()
	moved := false // the cursor moved since the last event sent
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopping:
			// The node is stopping (a graceful stop drains and hands off first): end the
			// stream with a last event that says so, so the client reconnects to another
			// node with its last event id rather than wait on a dead connection.
			event("error", "", map[string]string{"error": "the node is stopping: reconnect to another node with the last event id", "cursor": cur.Encode()})
			send()
			return
		case <-tick.C:
			switch {
			case moved:
				progress()
				moved = false
			case time.Since(lastWrite) >= keepAlive:
				buf.WriteString(": keepalive\n\n")
			default:
				continue
			}
		case b := <-batches:
			if b.err != nil {
				if errors.Is(b.err, errSlowConsumer) {
					cutOff()
				}
				if !errors.Is(b.err, context.Canceled) {
					event("error", "", map[string]string{"error": b.err.Error(), "cursor": cur.Encode()})
					send()
				}
				return
			}
			for _, c := range b.changes {
				cur[b.group] = c.At
				event(eventType(c), cur.Encode(), toEvent(c, wantPrev))
				committed = append(committed, c.Committed)
			}
			if cur[b.group].Less(b.through) {
				cur[b.group] = b.through
				moved = len(b.changes) == 0 || moved
			}
			if len(b.changes) > 0 {
				moved = false
			}
			// More batches already waiting go out in the same write.
			if len(batches) > 0 && buf.Len() < 1<<20 {
				continue
			}
		}
		if buf.Len() > 0 && !send() {
			return
		}
	}
}

// or is d, or def when d is not set.
func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func eventType(c Change) string {
	if c.Delete {
		return "delete"
	}
	return "put"
}

// pollJSON answers a long poll: the changes after the cursor asked for (possibly
// none) and the cursor after them.
type pollJSON struct {
	Events []eventJSON `json:"events"`
	Cursor string      `json:"cursor"`
}

// Bounds of one long poll answer.
const (
	maxPollEvents = 1000
	maxPollBytes  = 4 << 20
)

// longPoll answers the changes after the start cursor as one JSON batch: as soon as
// there are some (with any others already read), or none once wait has passed, with
// the cursor the batch brings the client to.
func (s *Server) longPoll(ctx context.Context, w http.ResponseWriter, r *http.Request, spec watchSpec, wait time.Duration, wantPrev bool) {
	s.watchStats.polls.Add(1)
	defer s.watchStats.polls.Add(-1)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(wait + writeWait))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Without a wait, each group is read once, as it is now.
	batches := s.follow(ctx, spec, wait == 0)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	cur := spec.start.Clone()
	out := pollJSON{Events: []eventJSON{}}
	size := 0
	var committed []time.Time // of the events in out
	take := func(b batch) {
		for _, c := range b.changes {
			cur[b.group] = c.At
			out.Events = append(out.Events, toEvent(c, wantPrev))
			committed = append(committed, c.Committed)
			size += len(c.Key) + len(c.Value.Value)
		}
		if cur[b.group].Less(b.through) {
			cur[b.group] = b.through
		}
	}
	var failed error
	for answered := 0; failed == nil && len(out.Events) < maxPollEvents && size < maxPollBytes; answered++ {
		b, ok := s.nextPolled(ctx, batches, timer, wait == 0, answered == len(spec.start), len(out.Events) > 0)
		if ctx.Err() != nil {
			return
		}
		if !ok {
			break
		}
		if failed = b.err; failed == nil {
			take(b)
		}
	}
	if failed != nil && len(out.Events) == 0 {
		s.writeWatchError(w, r, failed)
		return
	}
	out.Cursor = cur.Encode()
	w.Header().Set("X-Ringkv-Cursor", out.Cursor)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", watchBatchType)
	w.WriteHeader(http.StatusOK)
	if json.NewEncoder(w).Encode(out) == nil {
		s.delivered(committed)
	}
}

// watchBatchType is a long poll's media type (openapi.yaml's WatchBatch): apart from a
// listing's application/json, so generated clients parse each as its own type.
const watchBatchType = "application/vnd.ringkv.watch+json"

// nextPolled is a long poll's next batch, and false when the answer is complete: every
// group was read once (once, all answered), or changes are in hand and no more are
// read yet, or the wait passed.
func (s *Server) nextPolled(ctx context.Context, batches <-chan batch, timer *time.Timer, once, allAnswered, inHand bool) (batch, bool) {
	switch {
	case once && allAnswered:
		return batch{}, false
	case once:
		select {
		case b := <-batches:
			return b, true
		case <-ctx.Done():
			return batch{}, false
		}
	case inHand:
		select {
		case b := <-batches:
			return b, true
		default:
			return batch{}, false
		}
	}
	select {
	case b := <-batches:
		return b, true
	case <-timer.C:
	case <-s.stopping: // answer what is in hand now: the node is going away
	case <-ctx.Done():
	}
	return batch{}, false
}
