package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// forwardedHeader marks a request one node sent to another on a client's behalf (its
// value is the sending node's id). A node never holds or forwards on a request that
// carries it: it serves it, or answers at once that it cannot (503, with the leader it
// knows), and the node holding the client's request follows the leader from there.
// So a request never loops, and none outlives the node that holds it: a node cut off
// by a partition cannot keep a write and apply it through a later leader after its
// client was told the outcome is unknown.
const forwardedHeader = "X-Ringkv-Forwarded-By"

// mayForward says whether this node may forward r: only a request from a client.
func mayForward(r *http.Request) bool { return !isForwarded(r) }

// forwardTimeout bounds one forwarding hop (and one list share asked of another node),
// answer included.
const forwardTimeout = 15 * time.Second

// Forwarded requests that take longer than leaderCheckAfter are checked against this
// node's view of the group's leader every leaderCheckEvery; once that view has named
// another leader for leaderChangeGrace, the request is given up on. The grace lets an
// old leader that is alive (a hand-off, a transfer) answer for itself: it forwards the
// request to the new leader or says the write did not happen, which beats an unknown
// outcome.
const (
	leaderCheckAfter  = 300 * time.Millisecond
	leaderCheckEvery  = 100 * time.Millisecond
	leaderChangeGrace = time.Second
)

// errLeaderChanged: a forwarded request was given up on because the group's leader
// changed while it was out.
var errLeaderChanged = errors.New("the leader changed while the request was forwarded")

// watchLeader calls cancel if the leader of rt's group changes; the returned function
// stops watching. The fast path (answers within leaderCheckAfter) costs one timer.
func (s *Server) watchLeader(rt Route, resolve func() (Route, error), cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	timer := time.AfterFunc(leaderCheckAfter, func() {
		t := time.NewTicker(leaderCheckEvery)
		defer t.Stop()
		var changedAt time.Time
		for {
			if now, err := resolve(); err == nil && now.Local && now.LeaderID != rt.LeaderID {
				if changedAt.IsZero() {
					changedAt = time.Now()
				} else if time.Since(changedAt) >= leaderChangeGrace {
					cancel(errLeaderChanged)
					return
				}
			} else {
				changedAt = time.Time{}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		timer.Stop()
		close(done)
	}
}

func isForwarded(r *http.Request) bool { return r.Header.Get(forwardedHeader) != "" }

// forwardAttempts bounds the leaders one forward tries: the one first known and, after
// one refused the request without doing anything, the ones learned next.
const forwardAttempts = 4

// forward sends r (with body, already read) to the leader named by rt and copies its
// answer back to w. The leader may refuse before anything was done: the connection is
// refused (it died, or restarts), or it answers 503 without an unknown outcome (it no
// longer leads: an election, a transfer, a hand-off). Then this node drops it from its
// view and sends the request to the next leader it learns of, waiting for one while
// an election runs. If this node learns of another leader while the request is out, it
// gives up on it (a leader cut off by a partition would otherwise hold the client until
// the forwarding timeout). A read whose connection broke (given up on, EOF, reset) is
// sent again, to whichever node leads by then: it did nothing. A write is not: it may
// have been applied, and its outcome is answered as unknown.
//
// It returns true, having written nothing, when the next leader turns out to be this
// node: the caller serves the request here.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rt Route, body []byte, resolve func() (Route, error)) (serveHere bool) {
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead
	for attempt := 1; ; attempt++ {
		resp, err := s.forwardOnce(r, rt, body, resolve)
		notSent := neverSent(err)
		var refused []byte // a 503 answer that says nothing was done, kept to pass on
		var hint string    // the leader the refusal names
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
			refused, hint, err = readRefusal(resp)
		}
		if err == nil && refused == nil {
			defer resp.Body.Close()
			// The node that served a request leads the group, unless it served a stale
			// read (any replica may).
			if served := resp.Header.Get(nodeHeader); served != "" && r.URL.Query().Get("consistency") != "stale" {
				s.kv.LeaderHint(rt.Group, served)
			}
			copyAnswer(w, resp, nil)
			return false
		}
		// A read whose connection broke (EOF, reset, given up on) did nothing wherever
		// it got: it is sent again, to the same leader if that one still leads. So is a
		// request the leader refused naming itself as the leader: it leads, but could
		// not serve it just then (a read index not confirmed in time).
		again := (safe && err != nil && !notSent) || (refused != nil && hint == rt.LeaderID)
		if (notSent || refused != nil || again) && attempt < forwardAttempts && r.Context().Err() == nil {
			if !again {
				s.kv.ForgetLeader(rt.Group, rt.LeaderID)
			} else if refused != nil && !pause(r.Context(), retryPause) {
				return false
			}
			if hint != "" && hint != rt.LeaderID {
				s.kv.LeaderHint(rt.Group, hint)
			}
			failed := rt.LeaderID
			moved := func(n Route) bool { return n.Leader || (n.LeaderHTTP != "" && (again || n.LeaderID != failed)) }
			next := s.awaitRoute(r.Context(), Route{Group: rt.Group, Partition: rt.Partition}, resolve, moved)
			if next.Leader {
				return true
			}
			if moved(next) {
				s.log.Debug("forwarding to the next leader", "group", rt.Group, "refused", failed, "next", next.LeaderID)
				rt = next
				continue
			}
		}
		switch {
		case refused != nil:
			copyAnswer(w, resp, refused) // the leader's own words: nothing was done
		case safe || notSent:
			// Nothing reached the leader, or only a read did: nothing was done.
			writeError(w, r, s.log, fmt.Errorf("%w: forwarding to %s: %v", ErrUnavailable, rt.LeaderHTTP, err))
		default:
			// The leader may have applied the write before the connection broke.
			writeError(w, r, s.log, fmt.Errorf("%w: forwarding to %s: %v", ErrOutcomeUnknown, rt.LeaderHTTP, err))
		}
		return false
	}
}

// neverSent says whether err is a failure to connect: the request never left this node,
// so it certainly did nothing.
func neverSent(err error) bool {
	var op *net.OpError
	return err != nil && errors.As(err, &op) && op.Op == "dial"
}

// readRefusal reads a 503 answer. When it is a not-leader refusal (nothing was done,
// notLeaderType) it returns the body and the leader it names, if any; else nil, and
// the body is left to copy to the client as it is.
func readRefusal(resp *http.Response) (body []byte, leader string, err error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, "", err
	}
	var p Problem
	if json.Unmarshal(b, &p) == nil && p.Type == notLeaderType && p.Outcome == "" {
		return b, p.Leader, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return nil, "", nil
}

// copyAnswer writes resp to w: its headers, status and body (or body, when given).
func copyAnswer(w http.ResponseWriter, resp *http.Response, body []byte) {
	for k, vs := range resp.Header {
		w.Header().Del(k) // the leader's own (nosniff, the CSP) replace this node's
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if body != nil {
		_, _ = w.Write(body)
		return
	}
	_, _ = io.Copy(w, resp.Body)
}

// forwardOnce sends r to rt's leader, one hop more.
func (s *Server) forwardOnce(r *http.Request, rt Route, body []byte, resolve func() (Route, error)) (*http.Response, error) {
	ctx, cancelCause := context.WithCancelCause(r.Context())
	ctx, cancelTimeout := context.WithTimeout(ctx, forwardTimeout)
	cancel := func() { cancelTimeout(); cancelCause(nil) }
	stop := s.watchLeader(rt, resolve, cancelCause)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, r.Method, s.peers.URL(rt.LeaderHTTP, r.URL.RequestURI()), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	for _, h := range []string{"Content-Type", "If-Match", "If-None-Match", "Accept"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(forwardedHeader, s.kv.NodeID())
	resp, err := s.peers.Do(req)
	if err != nil {
		cause := context.Cause(ctx)
		cancel()
		if errors.Is(cause, errLeaderChanged) && r.Context().Err() == nil {
			err = fmt.Errorf("%w: %w", errLeaderChanged, err)
		}
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose ends a forwarded request's context once its answer has been copied.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
