package httpapi

import (
	"bytes"
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
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, Timeout: 15 * time.Second}
}

func isForwarded(r *http.Request) bool { return r.Header.Get(forwardedHeader) != "" }

func baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// forward sends r (with body, already read) to the node at addr and copies its answer
// back to w.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, addr string, body []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, baseURL(addr)+r.URL.RequestURI(), bytes.NewReader(body))
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
	if err != nil {
		var op *net.OpError
		if r.Method == http.MethodGet || (errors.As(err, &op) && op.Op == "dial") {
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
