package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// forwardedHeader marks a request one node sent to another on a client's behalf. A
// node never forwards a request that carries it, so a stale view of who leads can
// cost a 503, never a loop.
const forwardedHeader = "X-Ringkv-Forwarded-By"

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
// node's view of the group's leader every leaderCheckEvery.
const (
	leaderCheckAfter = 300 * time.Millisecond
	leaderCheckEvery = 100 * time.Millisecond
)

// watchLeader calls cancel if the leader of rt's group changes; the returned function
// stops watching. The fast path (answers within leaderCheckAfter) costs one timer.
func (s *Server) watchLeader(rt Route, cancel func()) (stop func()) {
	done := make(chan struct{})
	timer := time.AfterFunc(leaderCheckAfter, func() {
		t := time.NewTicker(leaderCheckEvery)
		defer t.Stop()
		for {
			if now, err := s.kv.GroupRoute(rt.Group); err == nil && now.Local && now.LeaderID != rt.LeaderID {
				cancel()
				return
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

// forward sends r (with body, already read) to the leader named by rt and copies its
// answer back to w. If this node learns of another leader (or of none) while the
// request is out, it gives up on it: a leader cut off by a partition would otherwise
// hold the client until the forwarding timeout.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rt Route, body []byte) {
	addr := rt.LeaderHTTP
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := s.watchLeader(rt, cancel)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, r.Method, baseURL(addr)+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	for _, h := range []string{"Content-Type", "If-Match", "If-None-Match", "Accept"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(forwardedHeader, s.kv.NodeID())
	resp, err := s.client.Do(req)
	if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
		err = fmt.Errorf("the leader changed while the request was forwarded: %w", err)
	}
	if err != nil {
		var op *net.OpError
		if r.Method == http.MethodGet || r.Method == http.MethodHead || (errors.As(err, &op) && op.Op == "dial") {
			// Nothing reached the leader: the request certainly did nothing.
			writeError(w, r, s.log, fmt.Errorf("%w: forwarding to %s: %v", ErrUnavailable, addr, err))
		} else {
			// The leader may have applied the write before the connection broke.
			writeError(w, r, s.log, fmt.Errorf("%w: forwarding to %s: %v", ErrOutcomeUnknown, addr, err))
		}
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
