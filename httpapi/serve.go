package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Which node serves a request for a key: this one when it leads the key's group (or
// holds a replica, for a stale read), else the leader, which this node forwards to
// (forward.go), waiting for one while an election or a transfer runs.

// leaderWait bounds how long a request waits for its group to have a reachable leader
// (an election, a leadership transfer, a leader that died) before it is answered 503.
// Elections take one to a few seconds; within the request's deadline a client is
// better served by waiting than by a 503 it would only retry.
const leaderWait = 8 * time.Second

// awaitRoute returns rt when ok(rt), else polls resolve (this node's view of rt's
// group) until ok holds, leaderWait passes or ctx ends, and returns the last route seen.
func (s *Server) awaitRoute(ctx context.Context, rt Route, resolve func() (Route, error), ok func(Route) bool) Route {
	if ok(rt) {
		return rt
	}
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return rt
		case <-t.C:
		}
		now, err := resolve()
		if err != nil {
			return rt
		}
		now.Partition = rt.Partition
		if rt = now; ok(rt) {
			return rt
		}
	}
}

func leaderKnown(rt Route) bool { return rt.Leader || rt.LeaderHTTP != "" }

// groupResolver re-reads this node's view of the group rt names.
func (s *Server) groupResolver(rt Route) func() (Route, error) {
	return func() (Route, error) { return s.kv.GroupRoute(rt.Group) }
}

// awaitLeader returns rt, or once a leader of rt's group is known (this node or one it
// can forward to), the route then; it gives up after leaderWait or when r ends.
// A forwarded request is not held: it is served or refused at once (forwardedHeader).
func (s *Server) awaitLeader(r *http.Request, rt Route) Route {
	if !mayForward(r) {
		return rt
	}
	return s.awaitRoute(r.Context(), rt, s.groupResolver(rt), leaderKnown)
}

// serveHere decides whether this node handles a request for route rt: true when it
// should, false when the request was forwarded or answered with an error.
func (s *Server) serveHere(w http.ResponseWriter, r *http.Request, rt Route, local bool, body []byte) bool {
	return s.serveHereOr(w, r, rt, local, body, s.groupResolver(rt))
}

// serveHereOr is serveHere for a group whose leader resolve finds (the meta group's).
func (s *Server) serveHereOr(w http.ResponseWriter, r *http.Request, rt Route, local bool, body []byte, resolve func() (Route, error)) bool {
	if !local && (rt.LeaderHTTP == "" || !mayForward(r)) {
		writeError(w, r, s.log, fmt.Errorf("%w: group %d: %w", ErrUnavailable, rt.Group,
			&NotLeaderError{Leader: rt.LeaderID, LeaderHTTP: rt.LeaderHTTP}))
		return false
	}
	if local || s.forward(w, r, rt, body, resolve) {
		w.Header().Set(nodeHeader, s.kv.NodeID())
		return true
	}
	return false
}

// serveKey serves a /kv request for key: here when local(rt) holds for this node's
// route to key's group, else forwarded to the group's leader. do runs the operation
// here (ctx bounded by requestTimeout); it writes the answer and returns nil, or
// returns the error to answer with.
//
// When do fails with ErrNotLeader nothing was done: leadership moved before the
// command was proposed, or a read index could not be confirmed. A client's request
// then follows the leader, for up to leaderWait after the first refusal: served here
// again when this node still (or again) leads, forwarded when another node does. A
// forwarded request is refused instead, and its sender follows the leader.
func (s *Server) serveKey(w http.ResponseWriter, r *http.Request, key, body []byte, local func(Route) bool, do func(ctx context.Context, rt Route) error) {
	s.serveRoute(w, r, func() (Route, error) { return s.kv.Route(key) }, body, local, do)
}

// serveRoute is serveKey for the group whose route resolve gives.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, resolve func() (Route, error), body []byte, local func(Route) bool, do func(ctx context.Context, rt Route) error) {
	rt, err := resolve()
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var giveUpAt time.Time
	for {
		if !local(rt) {
			rt = s.awaitLeader(r, rt)
		}
		if !s.serveHere(w, r, rt, local(rt), body) {
			return
		}
		err := s.runHere(r.Context(), rt, do)
		if err == nil {
			return
		}
		if giveUpAt.IsZero() {
			giveUpAt = time.Now().Add(leaderWait)
		}
		if !errors.Is(err, ErrNotLeader) || !mayForward(r) || time.Now().After(giveUpAt) || !pause(r.Context(), retryPause) {
			writeError(w, r, s.log, err)
			return
		}
		w.Header().Del(nodeHeader) // serveHere set it; the next try sets it again
		if rt, err = resolve(); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
}

// retryPause spaces the tries of a request refused with ErrNotLeader: the refusal may
// come before this node's view of the group has caught up with the election or
// transfer that caused it.
const retryPause = 20 * time.Millisecond

// runHere runs do with a context bounded by requestTimeout.
func (s *Server) runHere(ctx context.Context, rt Route, do func(ctx context.Context, rt Route) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return do(ctx, rt)
}

// pause waits d, or until ctx ends (false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
