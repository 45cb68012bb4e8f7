// Package httpapi is ringkv's HTTP API: the chi router, the /kv and /admin handlers,
// forwarding to group leaders, request limits and the one mapping of errors to
// RFC 9457 problem responses.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Errors a Backend returns; statusOf maps each to its HTTP status.
var (
	ErrBadRequest      = errors.New("bad request")
	ErrNotFound        = errors.New("not found")
	ErrConditionFailed = errors.New("precondition failed")
	ErrConflict        = errors.New("conflict")
	ErrTooLarge        = errors.New("request entity too large")
	// ErrInsufficientStorage: the node's disk is at its reserve; the write was refused
	// before it was proposed, so nothing was done.
	ErrInsufficientStorage = errors.New("insufficient storage")
	// ErrNotLeader: this node cannot serve the request; nothing was done.
	ErrNotLeader = errors.New("not the leader")
	// ErrUnavailable: the request could not be served now (no leader, no quorum);
	// nothing was done.
	ErrUnavailable = errors.New("service unavailable")
	// ErrOutcomeUnknown: a write was proposed but its fate is not known (leadership
	// lost after proposing); ErrTimeout: likewise, the deadline passed.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	ErrTimeout        = errors.New("timed out")
	// ErrOverloaded: the node has as many requests in flight as it takes; nothing was
	// done (503 with Retry-After).
	ErrOverloaded = errors.New("overloaded")
	// ErrUnauthorized: the request carries no valid credential (auth.go); ErrForbidden:
	// its credential does not allow it. Nothing was done.
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)

// NotLeaderError carries the leader's address, when known, with ErrNotLeader.
type NotLeaderError struct {
	Leader     string // node id
	LeaderHTTP string // its HTTP address
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "not the leader, and no leader is known"
	}
	return fmt.Sprintf("not the leader; the leader is %s at %s", e.Leader, e.LeaderHTTP)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// notLeaderType is the problem type of a refusal by a node that does not lead the
// request's group: nothing was done, and the node holding the request follows the
// leader (forward). Other 503s are passed on to the client as they are.
const notLeaderType = "urn:ringkv:problem:not-leader"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Outcome is "unknown" when a write may or may not have been applied.
	Outcome string `json:"outcome,omitempty"`
	// Leader names the leader node, when a request reached a node that cannot serve it.
	Leader string `json:"leader,omitempty"`
	// Cursor, in a 410 to a watch, is the oldest cursor it could resume at.
	Cursor string `json:"cursor,omitempty"`
}

// statusOf is the one place errors become HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConditionFailed):
		return http.StatusPreconditionFailed
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrGone):
		return http.StatusGone
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInsufficientStorage):
		return http.StatusInsufficientStorage
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrUnavailable), errors.Is(err, ErrOutcomeUnknown), errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers err as a problem.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := statusOf(err)
	p := Problem{Title: http.StatusText(status), Status: status, Detail: err.Error(), Instance: r.URL.Path}
	if errors.Is(err, ErrOutcomeUnknown) || (status == http.StatusGatewayTimeout && r.Method != http.MethodGet && r.Method != http.MethodHead) {
		p.Outcome = "unknown"
		p.Detail = "the write may or may not have been applied: " + err.Error()
	}
	var nl *NotLeaderError
	if errors.As(err, &nl) && p.Outcome == "" {
		p.Type, p.Leader = notLeaderType, nl.Leader
	}
	if status == http.StatusInternalServerError {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p.Detail = "internal error; see the node's log"
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
