package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Watches (GET /kv?prefix=P&watch=true, GET /kv/{key}?watch=true, and the long poll
// GET /kv?prefix=P&since=C&wait=30s) follow the change history each data group keeps
// beside its data: every applied put and delete, in the group's commit order.
//
// A watch spans the groups that may hold its keys (every group for a prefix, the key's
// group for a key) and carries a position per group (Cursor): each event's id is the
// cursor right after it, so a stream resumed after any event (Last-Event-ID, ?since=)
// delivers exactly what follows it. Per key, and across the keys of one group, events
// come in commit order; events of different groups are interleaved as they arrive,
// with no order between them (their Raft indexes are unrelated).

// Change is one put or delete of a group, as a watch delivers it.
type Change struct {
	Group  uint32
	At     Pos // the change's position: its Raft index and command (mod_index)
	Delete bool
	Key    []byte
	Value  Value  // after a put; after a delete only ModIndex and ETag
	Prev   *Value // the value it replaced, when there was one
	// Committed is when the change's entry was committed (its leader's append time);
	// zero when not known. It times delivery (WatchDelay), never shown to clients.
	Committed time.Time
}

// ChangePage is what one Watch.Changes call answered.
type ChangePage struct {
	Changes []Change
	// Through is the position the page covers (never below the one asked after).
	Through Pos
}

// ErrGone: a cursor is older than the history kept (410); CompactedError says where
// history starts.
var ErrGone = errors.New("gone")

// CompactedError reports ErrGone for one group: changes after Floor only are kept.
type CompactedError struct {
	Group uint32
	Floor Pos
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("group %d keeps changes after position %s only", e.Group, e.Floor)
}

func (e *CompactedError) Unwrap() error { return ErrGone }

// Watch is the change history of the data groups, as a node serves it: from its own
// replica of a group when it has one, else from a node that has.
type Watch interface {
	// Changes answers the changes of group after `after` in commit order. With wait,
	// it first waits until there are some or the group's position moves past after, or
	// ctx ends (then an empty page, Through == after, and no error). A *CompactedError
	// when after is older than the history.
	Changes(ctx context.Context, group uint32, after Pos, wait bool) (ChangePage, error)
	// Position is group's current position and history floor, where its watches are
	// served.
	Position(ctx context.Context, group uint32) (now, floor Pos, err error)
}

// watchSpec is what a watch follows and from where.
type watchSpec struct {
	filter func(key []byte) bool
	start  Cursor // a position for each group followed
}

// watchParams: since (a cursor) and Last-Event-ID, which a browser sends by itself on
// reconnecting and which wins as the later one.
func watchSince(r *http.Request) (Cursor, error) {
	s := r.URL.Query().Get("since")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		s = id
	}
	if s == "" {
		return nil, nil
	}
	return ParseCursor(s)
}

// isWatch says whether a GET of /kv or /kv/{key} is a watch or a long poll rather
// than a read.
func isWatch(q url.Values) bool { return q.Has("watch") || q.Has("since") || q.Has("wait") }

// prepareWatch checks the request and finds where the watch starts: every group
// followed at the cursor's position (since), or at its current one. A cursor older
// than a group's history is ErrGone, answered before any event with the oldest cursor
// that can be resumed.
func (s *Server) prepareWatch(ctx context.Context, r *http.Request, key []byte) (watchSpec, error) {
	if s.watch == nil {
		return watchSpec{}, fmt.Errorf("%w: this node does not serve watches", ErrNotFound)
	}
	since, err := watchSince(r)
	if err != nil {
		return watchSpec{}, err
	}
	var groups []uint32
	spec := watchSpec{start: Cursor{}}
	if key != nil {
		rt, err := s.kv.Route(key)
		if err != nil {
			return watchSpec{}, err
		}
		groups = []uint32{rt.Group}
		spec.filter = func(k []byte) bool { return bytes.Equal(k, key) }
	} else {
		routes, err := s.kv.Routes()
		if err != nil {
			return watchSpec{}, err
		}
		for _, rt := range routes {
			groups = append(groups, rt.Group)
		}
		prefix := []byte(r.URL.Query().Get("prefix"))
		spec.filter = func(k []byte) bool { return bytes.HasPrefix(k, prefix) }
	}
	var gone []*CompactedError
	for _, g := range groups {
		now, floor, err := s.watch.Position(ctx, g)
		if err != nil {
			return watchSpec{}, err
		}
		if since == nil {
			spec.start[g] = now
			continue
		}
		p, ok := since[g]
		if !ok {
			return watchSpec{}, fmt.Errorf("%w: the cursor does not cover group %d: watch a prefix from a listing's cursor", ErrBadRequest, g)
		}
		if p.Less(floor) {
			// This node's replica starts its history later (say it was created from a
			// snapshot): the cursor is gone only if no replica holds what follows it.
			var ce *CompactedError
			if _, err := s.watch.Changes(ctx, g, p, false); errors.As(err, &ce) {
				gone = append(gone, ce)
			} else if err != nil {
				return watchSpec{}, err
			}
		}
		spec.start[g] = p
	}
	if len(gone) > 0 {
		oldest := spec.start.Clone()
		for _, e := range gone {
			oldest[e.Group] = e.Floor
		}
		return watchSpec{}, &goneError{errs: gone, oldest: oldest}
	}
	return spec, nil
}

// goneError is ErrGone for a whole cursor, with the oldest cursor it could resume at
// (each compacted group at its history's floor): the client lists again instead, as
// the changes between its cursor and that one are lost to it.
type goneError struct {
	errs   []*CompactedError
	oldest Cursor
}

func (e *goneError) Error() string {
	return fmt.Sprintf("the cursor is older than the history kept (%v); list again, or resume no earlier than cursor %s", e.errs[0], e.oldest.Encode())
}

func (e *goneError) Unwrap() error { return ErrGone }

// writeWatchError answers a watch that could not start; a 410 names the oldest cursor.
func (s *Server) writeWatchError(w http.ResponseWriter, r *http.Request, err error) {
	var ge *goneError
	if errors.As(err, &ge) {
		p := Problem{Title: http.StatusText(http.StatusGone), Status: http.StatusGone, Detail: err.Error(),
			Instance: r.URL.Path, Cursor: ge.oldest.Encode()}
		writeProblem(w, p)
		return
	}
	writeError(w, r, s.log, err)
}

// batch is what a group's follower hands the stream: the changes that match, and the
// position they bring the group to.
type batch struct {
	group   uint32
	changes []Change
	through Pos
	err     error
}

// Slow consumers: a watch buffers at most watchBuffer batches; when the client has
// not taken one for slowConsumerAfter, the watch ends with an error event instead of
// buffering more (the client resumes from its last event, or lists again). A stream's
// write that the client does not take within slowConsumerAfter ends it too.
const (
	watchBuffer       = 16
	slowConsumerAfter = 5 * time.Second
)

// errSlowConsumer ends a watch whose client does not keep up.
var errSlowConsumer = errors.New("the client did not keep up with the changes: the watch was ended; resume from the last event's id")

// follow runs one follower per group of spec: each reads the group's changes after
// its position and sends those matching the filter (and the position reached) on the
// returned channel, until ctx ends or an error, which it sends last. With once, each
// reads what is there now, sends it (even empty) and stops.
func (s *Server) follow(ctx context.Context, spec watchSpec, once bool) <-chan batch {
	out := make(chan batch, watchBuffer)
	slow := s.slowAfter
	if slow <= 0 {
		slow = slowConsumerAfter
	}
	for g, pos := range spec.start {
		go func() {
			timer := time.NewTimer(slow)
			defer timer.Stop()
			for ctx.Err() == nil {
				page, err := s.watch.Changes(ctx, g, pos, !once)
				b := batch{group: g, through: page.Through, err: err}
				for _, c := range page.Changes {
					if spec.filter(c.Key) {
						b.changes = append(b.changes, c)
					}
				}
				if err == nil && !once && !pos.Less(page.Through) && len(b.changes) == 0 {
					continue // ctx ended while waiting
				}
				timer.Reset(slow)
				select {
				case out <- b:
				case <-ctx.Done():
					return
				case <-timer.C:
					select {
					case out <- batch{group: g, err: errSlowConsumer}:
					case <-ctx.Done():
					}
					return
				}
				if err != nil || once {
					return
				}
				pos = page.Through
			}
		}()
	}
	return out
}

// parseWait reads a long poll's wait (a Go duration, at most maxWait).
func parseWait(q url.Values) (time.Duration, error) {
	v := q.Get("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if n, err2 := strconv.Atoi(v); err2 == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
	}
	if err != nil || d < 0 || d > maxWait {
		return 0, fmt.Errorf("%w: wait must be a duration (30s) of at most %s", ErrBadRequest, maxWait)
	}
	return d, nil
}

// maxWait bounds a long poll.
const maxWait = 60 * time.Second
