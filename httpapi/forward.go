package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// forwardedHeader marks a request one node sent to another on a client's behalf (its
// value is the sending node's id); hopsHeader counts the hops it has made. A node
// forwards a request only while it has made fewer than maxHops: a stale view of who
// leads (a leader hint one term old) costs a hop, never a loop.
const (
	forwardedHeader = "X-Ringkv-Forwarded-By"
	hopsHeader      = "X-Ringkv-Hops"
	maxHops         = 3
)

// hops is how many times r has been forwarded already.
func hops(r *http.Request) int {
	n, err := strconv.Atoi(r.Header.Get(hopsHeader))
	if err != nil || n < 0 {
		n = 0
	}
	if n == 0 && isForwarded(r) { // sent by a node that predates the hop count
		n = 1
	}
	return n
}

// mayForward says whether r may be forwarded once more.
func mayForward(r *http.Request) bool { return hops(r) < maxHops }

// newForwardClient is the keep-alive client used for the one forwarding hop.
func newForwardClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A leader cut off by a partition does not refuse connections, it just never
	// answers: a short dial timeout turns that into a quick 503 the client can retry,
	// by which time the group has elected a reachable leader.
	t.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, Timeout: 15 * time.Second}
}

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
func (s *Server) watchLeader(rt Route, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	timer := time.AfterFunc(leaderCheckAfter, func() {
		t := time.NewTicker(leaderCheckEvery)
		defer t.Stop()
		var changedAt time.Time
		for {
			if now, err := s.kv.GroupRoute(rt.Group); err == nil && now.Local && now.LeaderID != rt.LeaderID {
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

func baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// forwardAttempts bounds the leaders one forward tries: the one first known and, after
// a connection that was refused before anything was sent, the ones learned next.
const forwardAttempts = 3

// forward sends r (with body, already read) to the leader named by rt and copies its
// answer back to w. A leader that refuses the connection (it died, or is restarting)
// is dropped from this node's view and the request goes to the next leader known,
// waiting for one while an election runs. If this node learns of another leader (or
// of none) while the request is out, it gives up on it: a leader cut off by a
// partition would otherwise hold the client until the forwarding timeout.
//
// It returns true, having written nothing, when the next leader turns out to be this
// node: the caller serves the request here.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rt Route, body []byte, resolve func() (Route, error)) (serveHere bool) {
	for attempt := 1; ; attempt++ {
		resp, err := s.forwardOnce(r, rt, body)
		if err == nil {
			defer resp.Body.Close()
			for k, vs := range resp.Header {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			return false
		}
		var op *net.OpError
		notSent := errors.As(err, &op) && op.Op == "dial"
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead
		// Nothing reached the leader, or a read was given up on: either is safe to send
		// to the next leader.
		if (notSent || (safe && errors.Is(err, errLeaderChanged))) && attempt < forwardAttempts && r.Context().Err() == nil {
			s.kv.ForgetLeader(rt.Group, rt.LeaderID)
			failed := rt.LeaderID
			moved := func(n Route) bool { return n.Leader || (n.LeaderHTTP != "" && n.LeaderID != failed) }
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
		if safe || notSent {
			// Nothing reached the leader: the request certainly did nothing.
			writeError(w, r, s.log, fmt.Errorf("%w: forwarding to %s: %v", ErrUnavailable, rt.LeaderHTTP, err))
		} else {
			// The leader may have applied the write before the connection broke.
			writeError(w, r, s.log, fmt.Errorf("%w: forwarding to %s: %v", ErrOutcomeUnknown, rt.LeaderHTTP, err))
		}
		return false
	}
}

// forwardOnce sends r to rt's leader, one hop more.
func (s *Server) forwardOnce(r *http.Request, rt Route, body []byte) (*http.Response, error) {
	ctx, cancelCause := context.WithCancelCause(r.Context())
	cancel := func() { cancelCause(nil) }
	stop := s.watchLeader(rt, cancelCause)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, r.Method, baseURL(rt.LeaderHTTP)+r.URL.RequestURI(), bytes.NewReader(body))
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
	req.Header.Set(hopsHeader, strconv.Itoa(hops(r)+1))
	resp, err := s.client.Do(req)
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
