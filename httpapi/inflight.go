package httpapi

import (
	"fmt"
	"net/http"
)

// DefaultMaxInFlight is how many client requests to /kv a node serves at once.
const DefaultMaxInFlight = 1024

// inFlight bounds the client requests to /kv this node serves at once: past the bound
// a request is answered 503 with Retry-After at once (nothing done), instead of queueing
// without limit until memory, goroutines and the Raft groups' own traffic suffer.
// Requests other nodes forwarded have a bound of their own, as large: they were
// admitted where they arrived, so clients' requests here do not crowd them out, and
// the forwarded-by header, which nobody authenticates yet, cannot lift the bound.
type inFlight struct {
	slots     chan struct{}
	forwarded chan struct{}
}

func newInFlight(limit int) *inFlight {
	if limit <= 0 {
		limit = DefaultMaxInFlight
	}
	return &inFlight{slots: make(chan struct{}, limit), forwarded: make(chan struct{}, limit)}
}

func (l *inFlight) wrap(s *Server, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slots := l.slots
		if !mayForward(r) {
			slots = l.forwarded
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, r, s.log, fmt.Errorf("%w: this node is serving %d requests already; nothing was done, retry", ErrOverloaded, cap(slots)))
		}
	}
}
