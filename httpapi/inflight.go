package httpapi

import (
	"fmt"
	"net/http"
)

// DefaultMaxInFlight is how many client requests to /kv a node serves at once.
const DefaultMaxInFlight = 1024

// inFlight bounds the client requests to /kv this node serves at once: past the bound
// a request is answered 503 with Retry-After at once (nothing done), instead of queueing
// without limit until memory, goroutines and the Raft groups' own traffic suffer. A
// request another node forwarded is not counted here: it was admitted where it
// arrived, and refusing it would turn an admitted request into a failure.
type inFlight struct {
	slots chan struct{}
}

func newInFlight(limit int) *inFlight {
	if limit <= 0 {
		limit = DefaultMaxInFlight
	}
	return &inFlight{slots: make(chan struct{}, limit)}
}

func (l *inFlight) wrap(s *Server, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !mayForward(r) {
			next(w, r)
			return
		}
		select {
		case l.slots <- struct{}{}:
			defer func() { <-l.slots }()
			next(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, r, s.log, fmt.Errorf("%w: this node is serving %d requests already; nothing was done, retry", ErrOverloaded, cap(l.slots)))
		}
	}
}
