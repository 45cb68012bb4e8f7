package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// metaLed serves a request on the meta leader: here when this node leads the meta
// group, else forwarded there (waiting for one while the meta group elects).
func (s *Server) metaLed(w http.ResponseWriter, r *http.Request, body []byte) bool {
	rt, _ := s.metaRoute()
	if mayForward(r) {
		rt = s.awaitRoute(r.Context(), rt, s.metaRoute, leaderKnown)
	}
	if rt.Leader {
		return true
	}
	if s.serveHereOr(w, r, rt, false, body, s.metaRoute) {
		w.Header().Del(nodeHeader) // a /kv header; the meta leader came back here
		return true
	}
	return false
}

// metaRoute is this node's view of the meta group's leader, as a Route.
func (s *Server) metaRoute() (Route, error) {
	leads, rt := s.admin.MetaLeader()
	rt.Leader = leads
	return rt, nil
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	if !s.metaLed(w, r, nil) {
		return
	}
	nodes, err := s.admin.Nodes(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
}

func (s *Server) joinNode(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	var req JoinRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: the body must be a JSON object with id, http_addr and raft_addr: %v", ErrBadRequest, err))
		return
	}
	if req.ID == "" || req.HTTPAddr == "" || req.RaftAddr == "" {
		writeError(w, r, s.log, fmt.Errorf("%w: id, http_addr and raft_addr are required", ErrBadRequest))
		return
	}
	if !s.metaLed(w, r, body) {
		return
	}
	node, err := s.admin.Join(r.Context(), req)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, node)
}

// decommissionNode drains a node off the cluster: 202 while the placement service
// moves its replicas away (GET /admin/nodes shows it draining, then removed); with
// ?dry_run=true, 200 and the moves it would make, with nothing changed.
func (s *Server) decommissionNode(w http.ResponseWriter, r *http.Request) {
	dryRun, err := boolParam(r.URL.Query(), "dry_run")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if !s.metaLed(w, r, nil) {
		return
	}
	// chi matches on the escaped path: the id is the segment unescaped.
	id, err := url.PathUnescape(chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: node id: %v", ErrBadRequest, err))
		return
	}
	plan, err := s.admin.Decommission(r.Context(), id, dryRun)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	status := http.StatusAccepted
	if dryRun {
		status = http.StatusOK
	}
	writeJSON(w, status, plan)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	groups, err := s.admin.Groups(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": groups})
}

func groupParam(r *http.Request) (uint32, error) {
	id, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: group id must be a number", ErrBadRequest)
	}
	return uint32(id), nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	id, err := groupParam(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	groups, err := s.admin.Groups(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	for _, g := range groups {
		if g.ID == id {
			writeJSON(w, http.StatusOK, g)
			return
		}
	}
	writeError(w, r, s.log, fmt.Errorf("%w: no group %d", ErrNotFound, id))
}

func (s *Server) transferLeader(w http.ResponseWriter, r *http.Request) {
	id, err := groupParam(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	var req struct {
		Node string `json:"node"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, r, s.log, fmt.Errorf("%w: the body must be {\"node\": \"<id>\"} or empty: %v", ErrBadRequest, err))
			return
		}
	}
	// Served by the group's leader, which this node waits for and follows as it does
	// for a key's.
	s.serveRoute(w, r, func() (Route, error) { return s.kv.GroupRoute(id) }, body, leads, func(ctx context.Context, _ Route) error {
		leader, err := s.admin.TransferLeader(ctx, id, req.Node)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"group": id, "leader": leader})
		return nil
	})
}

func (s *Server) groupDigest(w http.ResponseWriter, r *http.Request) {
	id, err := groupParam(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	d, err := s.admin.Digest(id)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) listPartitions(w http.ResponseWriter, r *http.Request) {
	p, err := s.admin.Partitions()
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) internalStatus(w http.ResponseWriter, r *http.Request) {
	nonce := r.URL.Query().Get("nonce")
	if len(nonce) > 128 {
		writeError(w, r, s.log, fmt.Errorf("%w: nonce longer than 128 characters", ErrBadRequest))
		return
	}
	st, err := s.admin.Internal(r.Context(), nonce)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is /readyz's answer. A degraded node stays ready (200): it serves reads
// and forwards writes to leaders elsewhere, and a readiness probe that failed would
// take those away too; Degraded says what it cannot do.
type Readiness struct {
	Status   string   `json:"status"` // "ready" or "degraded"
	Degraded []string `json:"degraded,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	degraded, err := s.admin.Ready()
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		writeError(w, r, s.log, err)
		return
	}
	out := Readiness{Status: "ready"}
	if len(degraded) > 0 {
		out = Readiness{Status: "degraded", Degraded: degraded}
	}
	writeJSON(w, http.StatusOK, out)
}
