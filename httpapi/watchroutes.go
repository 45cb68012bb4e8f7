package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

// watchOr routes a GET of /kv or /kv/{key} to watch when it asks for a watch or a
// long poll (isWatch), else to read.
func (s *Server) watchOr(watch, read http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWatch(r.URL.Query()) {
			watch.ServeHTTP(w, r)
			return
		}
		read.ServeHTTP(w, r)
	})
}

func (s *Server) watchKey(w http.ResponseWriter, r *http.Request) {
	key, err := keyFromPath(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.watchKV(w, r, key)
}

func (s *Server) watchPrefix(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Has("group") || q.Has("cursor") || q.Has("start_after") {
		writeError(w, r, s.log, fmt.Errorf("%w: a watch takes prefix and since, not a listing's group, cursor or start_after", ErrBadRequest))
		return
	}
	s.watchKV(w, r, nil)
}

// ErrNoReplica: this node has no replica of the group a watch follows (Watch); its
// changes are read from a node that has one.
var ErrNoReplica = fmt.Errorf("%w: no local replica of the group", ErrUnavailable)

// WatchBackend is the change history of the groups this node has replicas of.
type WatchBackend interface {
	// Changes is Watch.Changes from the local replica; ErrNoReplica when there is none.
	Changes(ctx context.Context, group uint32, after Pos, wait bool) (ChangePage, error)
	// Position is Watch.Position of the local replica; ErrNoReplica when there is none.
	Position(ctx context.Context, group uint32) (now, floor Pos, err error)
	// Replicas are the HTTP addresses of the other nodes with a replica of group.
	Replicas(group uint32) []string
}

// remoteWait bounds one internal long poll, inside the cluster client's wait for an
// answer's headers (15 s).
const remoteWait = 10 * time.Second

// localOrRemote is the Watch of a node: a group's changes come from its own replica
// when it has one, else from another node's through /internal/watch/groups/{id},
// trying its replicas in turn.
type localOrRemote struct {
	local WatchBackend
	peers Peers
	self  string // this node's id, sent as the forwarded-by header
}

// NewWatch is the Watch of a node whose own replicas are local, reaching the others
// through peers (nil: plain HTTP).
func NewWatch(local WatchBackend, peers Peers, self string) Watch {
	if peers == nil {
		peers = newPlainPeers()
	}
	return localOrRemote{local: local, peers: peers, self: self}
}

func (w localOrRemote) Changes(ctx context.Context, group uint32, after Pos, wait bool) (ChangePage, error) {
	page, err := w.local.Changes(ctx, group, after, wait)
	if errors.Is(err, ErrGone) {
		// A replica that just moved onto this node holds history only from the snapshot
		// it was created from: a replica that has been there longer may still hold
		// what the cursor needs. The cursor is gone only when that one says so too.
		if rpage, _, rerr := w.remote(ctx, group, &after, wait); rerr == nil || errors.Is(rerr, ErrGone) {
			return rpage, rerr
		}
		return page, err
	}
	if !errors.Is(err, ErrNoReplica) {
		return page, err
	}
	for {
		page, _, err = w.remote(ctx, group, &after, wait)
		// A stream outlives restarts of the nodes it reads from: it waits for one.
		if !wait || !errors.Is(err, ErrUnavailable) || !pause(ctx, remoteRetry) {
			if ctx.Err() != nil {
				return ChangePage{Through: after}, nil
			}
			return page, err
		}
	}
}

// remoteRetry is how long a watch waits before asking again when no replica of a
// group it reads from another node answered.
const remoteRetry = 500 * time.Millisecond

func (w localOrRemote) Position(ctx context.Context, group uint32) (Pos, Pos, error) {
	now, floor, err := w.local.Position(ctx, group)
	if !errors.Is(err, ErrNoReplica) {
		return now, floor, err
	}
	page, floor, err := w.remote(ctx, group, nil, false)
	return page.Through, floor, err
}

// remotePage is an internal watch answer: values as base64 (encoding/json's []byte).
type remotePage struct {
	Changes []remoteChange `json:"changes"`
	Through string         `json:"through"`
	Floor   string         `json:"floor"`
}

type remoteChange struct {
	At     string `json:"at"`
	Delete bool   `json:"delete,omitempty"`
	Key    []byte `json:"key"`
	Value  Value  `json:"value"`
	Prev   *Value `json:"prev,omitempty"`
	// Committed is the change's commit time (Unix nanoseconds; 0: not known).
	Committed int64 `json:"committed,omitempty"`
}

// remote asks the group's other replicas in turn for its changes after `after` (nil:
// only its position and floor).
func (w localOrRemote) remote(ctx context.Context, group uint32, after *Pos, wait bool) (out ChangePage, floor Pos, err error) {
	q := url.Values{}
	if after != nil {
		q.Set("since", after.String())
		out.Through = *after
	}
	if wait {
		q.Set("wait", remoteWait.String())
	}
	addrs := w.local.Replicas(group)
	if len(addrs) == 0 {
		return out, floor, fmt.Errorf("%w: no node has a replica of group %d", ErrUnavailable, group)
	}
	// A replica answering gone may be one created from a snapshot lately: another may
	// still hold the history, so gone is the answer only when no replica has it.
	var gone error
	for _, addr := range addrs {
		var p remotePage
		p, err = w.ask(ctx, addr, group, q)
		if errors.Is(err, ErrGone) && ctx.Err() == nil {
			gone = cmp.Or(gone, err)
			continue
		}
		if err == nil || ctx.Err() != nil {
			if err != nil {
				return out, floor, err
			}
			out.Through, floor = mustPos(p.Through), mustPos(p.Floor)
			for _, c := range p.Changes {
				out.Changes = append(out.Changes, Change{Group: group, At: mustPos(c.At), Delete: c.Delete, Key: c.Key, Value: c.Value, Prev: c.Prev,
					Committed: unixNanoTime(c.Committed)})
			}
			return out, floor, nil
		}
	}
	if ctx.Err() != nil {
		return out, floor, nil // the watch ended while waiting: no change, no progress
	}
	return out, floor, cmp.Or(gone, err)
}

func mustPos(s string) Pos {
	p, _ := ParsePos(s)
	return p
}

func (w localOrRemote) ask(ctx context.Context, addr string, group uint32, q url.Values) (remotePage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		w.peers.URL(addr, "/internal/watch/groups/"+strconv.FormatUint(uint64(group), 10)+"?"+q.Encode()), nil)
	if err != nil {
		return remotePage{}, err
	}
	req.Header.Set(forwardedHeader, w.self)
	resp, err := w.peers.Do(req)
	if err != nil {
		return remotePage{}, fmt.Errorf("%w: reading group %d's changes at %s: %v", ErrUnavailable, group, addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p Problem
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		if resp.StatusCode == http.StatusGone {
			return remotePage{}, &CompactedError{Group: group, Floor: mustPos(p.Cursor)}
		}
		return remotePage{}, fmt.Errorf("%w: reading group %d's changes at %s: %s %s", ErrUnavailable, group, addr, resp.Status, p.Detail)
	}
	var p remotePage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&p); err != nil {
		return remotePage{}, fmt.Errorf("%w: reading group %d's changes at %s: %v", ErrUnavailable, group, addr, err)
	}
	return p, nil
}

// internalWatch answers GET /internal/watch/groups/{id}?since=<index[.seq]>&wait=<d>
// from this node's replica of the group (peers only): its changes after since (none
// without since), its position and its history's floor; 410 with the floor (in
// `cursor`) when since is older than the history.
func (s *Server) internalWatch(w http.ResponseWriter, r *http.Request) {
	lw, ok := s.watch.(localOrRemote)
	id, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 32)
	if !ok || err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: no such group or no watches here", ErrNotFound))
		return
	}
	q := r.URL.Query()
	wait, err := parseWait(q)
	if err == nil && wait > remoteWait {
		err = fmt.Errorf("%w: wait is at most %s", ErrBadRequest, remoteWait)
	}
	var since Pos
	if err == nil && q.Has("since") {
		since, err = ParsePos(q.Get("since"))
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	g := uint32(id)
	now, floor, err := lw.local.Position(r.Context(), g)
	out := remotePage{Through: now.String(), Floor: floor.String(), Changes: []remoteChange{}}
	if err == nil && q.Has("since") {
		ctx, cancel := r.Context(), context.CancelFunc(func() {})
		if wait > 0 {
			ctx, cancel = context.WithTimeout(ctx, wait)
		}
		var page ChangePage
		page, err = lw.local.Changes(ctx, g, since, wait > 0)
		cancel()
		out.Through = page.Through.String()
		for _, c := range page.Changes {
			out.Changes = append(out.Changes, remoteChange{At: c.At.String(), Delete: c.Delete, Key: c.Key, Value: c.Value, Prev: c.Prev,
				Committed: nanoOf(c.Committed)})
		}
	}
	var ce *CompactedError
	if errors.As(err, &ce) {
		writeProblem(w, Problem{Title: http.StatusText(http.StatusGone), Status: http.StatusGone, Detail: err.Error(),
			Instance: r.URL.Path, Cursor: ce.Floor.String()})
		return
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// unixNanoTime and nanoOf carry a commit time between nodes (0: not known).
func unixNanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func nanoOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
