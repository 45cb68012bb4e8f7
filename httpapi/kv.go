package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// requestTimeout bounds one /kv operation on this node.
const requestTimeout = 10 * time.Second

type prevJSON struct {
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
	Version     uint64  `json:"version"`
	ModIndex    uint64  `json:"mod_index"`
}

// Keys are written as values are: `key` when the key is valid UTF-8, else `key_base64`
// (keyFields); exactly one of the two is present.

type putJSON struct {
	Key       string    `json:"key,omitempty"`
	KeyBase64 *string   `json:"key_base64,omitempty"`
	Version   uint64    `json:"version"`
	Created   bool      `json:"created"`
	ModIndex  uint64    `json:"mod_index"`
	Prev      *prevJSON `json:"prev,omitempty"`
}

type deleteJSON struct {
	Key       string    `json:"key,omitempty"`
	KeyBase64 *string   `json:"key_base64,omitempty"`
	Deleted   bool      `json:"deleted"`
	ModIndex  uint64    `json:"mod_index"`
	Prev      *prevJSON `json:"prev,omitempty"`
}

type keyValueJSON struct {
	Key         string  `json:"key,omitempty"`
	KeyBase64   *string `json:"key_base64,omitempty"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
	Version     uint64  `json:"version"`
	CreateIndex uint64  `json:"create_index"`
	ModIndex    uint64  `json:"mod_index"`
	Group       uint32  `json:"group"`
	// ValueOmitted and ValueSize: in a listing with max_value_bytes, a value longer
	// than it is left out and its size given instead.
	ValueOmitted bool `json:"value_omitted,omitempty"`
	ValueSize    *int `json:"value_size,omitempty"`
}

type listJSON struct {
	Items []keyValueJSON `json:"items"`
	Next  string         `json:"next"` // opaque cursor (cursor.go); empty at the end
	// Cursor is where a watch of the listed keys starts with no gap (watchcursor.go): a
	// position per group at the state the page was read from.
	Cursor string `json:"cursor"`
}

// cursorHeader carries the watch cursor of a GET or a listing (and of a long poll).
const cursorHeader = "X-Ringkv-Cursor"

func toPrev(v *Value) *prevJSON {
	if v == nil {
		return nil
	}
	p := &prevJSON{Version: v.Version, ModIndex: v.ModIndex}
	p.Value, p.ValueBase64 = textOrBase64(v.Value)
	return p
}

// listedJSON is a listing's item: its value, unless keys only were asked for or it
// was left out for its size.
func listedJSON(it ListItem, keysOnly bool) keyValueJSON {
	kv := toKeyValue(it.Key, it.Group, it.Value, !keysOnly && it.OmittedBytes == 0)
	if !keysOnly && it.OmittedBytes > 0 {
		size := it.OmittedBytes
		kv.ValueOmitted, kv.ValueSize = true, &size
	}
	return kv
}

func toKeyValue(key []byte, group uint32, v Value, withValue bool) keyValueJSON {
	kv := keyValueJSON{Version: v.Version, CreateIndex: v.CreateIndex, ModIndex: v.ModIndex, Group: group}
	kv.Key, kv.KeyBase64 = keyFields(key)
	if withValue {
		kv.Value, kv.ValueBase64 = textOrBase64(v.Value)
	}
	return kv
}

// nodeHeader names the node that served a request (the group's leader, or the local
// replica of a stale read). It is set where a request is served, never where it is
// forwarded, so a forwarded answer carries the leader's: a placement-aware client that
// sees another node than the one it sent to knows its routing table is stale.
const nodeHeader = "X-Ringkv-Node"

func setIndexHeaders(w http.ResponseWriter, group uint32, index uint64) {
	w.Header().Set("X-Ringkv-Group", strconv.FormatUint(uint64(group), 10))
	w.Header().Set("X-Ringkv-Index", strconv.FormatUint(index, 10))
}

func (s *Server) putKey(w http.ResponseWriter, r *http.Request) {
	key, err := keyFromPath(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	q := r.URL.Query()
	wantPrev, err := boolParam(q, "prev")
	if err == nil {
		_, err = boolParam(q, "raw") // accepted and ignored: a PUT body is always raw
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	cond, err := condition(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.serveKey(w, r, key, body, leads, func(ctx context.Context, rt Route) error {
		out, err := s.kv.Put(ctx, PutInput{Route: rt, Key: key, Value: body, Cond: cond, WantPrev: wantPrev})
		if err != nil {
			return err
		}
		setIndexHeaders(w, rt.Group, out.ModIndex)
		w.Header().Set("ETag", out.ETag)
		status := http.StatusOK
		if out.Created {
			status = http.StatusCreated
		}
		res := putJSON{Version: out.Version, Created: out.Created, ModIndex: out.ModIndex, Prev: toPrev(out.Prev)}
		res.Key, res.KeyBase64 = keyFields(key)
		writeJSON(w, status, res)
		return nil
	})
}

// leads: a write (or a linearizable read) is served by the group's leader.
func leads(rt Route) bool { return rt.Leader }

// readBody reads a PUT body, refusing more than the configured limit with 413 without
// reading the rest (and straight away when Content-Length already says so).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxValue {
		return nil, fmt.Errorf("%w: the value is %d bytes; at most %d are allowed", ErrTooLarge, r.ContentLength, s.maxValue)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxValue))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: the value is larger than %d bytes", ErrTooLarge, s.maxValue)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading the body: %v", ErrBadRequest, err)
	}
	return body, nil
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	key, err := keyFromPath(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	q := r.URL.Query()
	raw, err := boolParam(q, "raw")
	var stale bool
	if err == nil {
		stale, err = staleParam(q)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	local := leads
	if stale {
		local = func(rt Route) bool { return rt.Leader || rt.Local }
	}
	s.serveKey(w, r, key, nil, local, func(ctx context.Context, rt Route) error {
		out, err := s.kv.Get(ctx, rt, key, stale)
		if errors.Is(err, ErrNotFound) {
			setIndexHeaders(w, rt.Group, out.Index)
			w.Header().Set(cursorHeader, Cursor{rt.Group: AtIndex(out.Index)}.Encode())
		}
		if err != nil {
			return err
		}
		setIndexHeaders(w, rt.Group, out.Index)
		w.Header().Set(cursorHeader, Cursor{rt.Group: AtIndex(out.Index)}.Encode())
		w.Header().Set("ETag", out.ETag)
		if stale {
			w.Header().Set("X-Ringkv-Staleness-Ms", strconv.FormatInt(out.Staleness.Milliseconds(), 10))
		}
		if raw {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(out.Value.Value)
			return nil
		}
		writeJSON(w, http.StatusOK, toKeyValue(key, rt.Group, out.Value, true))
		return nil
	})
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	key, err := keyFromPath(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	wantPrev, err := boolParam(r.URL.Query(), "prev")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	cond, err := condition(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.serveKey(w, r, key, nil, leads, func(ctx context.Context, rt Route) error {
		out, err := s.kv.Delete(ctx, DeleteInput{Route: rt, Key: key, Cond: cond, WantPrev: wantPrev})
		if err != nil {
			return err
		}
		setIndexHeaders(w, rt.Group, out.ModIndex)
		res := deleteJSON{Deleted: true, ModIndex: out.ModIndex, Prev: toPrev(out.Prev)}
		res.Key, res.KeyBase64 = keyFields(key)
		writeJSON(w, http.StatusOK, res)
		return nil
	})
}

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// listKeys answers GET /kv: every group's share, merged in byte order. With the
// internal group parameter (sent by another node's fan-out) it answers one group only.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := ListInput{Prefix: []byte(q.Get("prefix")), Limit: defaultListLimit}
	var err error
	if in.StartAfter, err = listStart(q); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if v := q.Get("limit"); v != "" {
		in.Limit, err = strconv.Atoi(v)
		// A fan-out asks each group for one more than the page, to know if there is more.
		limit := maxListLimit
		if q.Has("group") {
			limit++
		}
		if err != nil || in.Limit < 1 || in.Limit > limit {
			writeError(w, r, s.log, fmt.Errorf("%w: limit must be an integer from 1 to %d", ErrBadRequest, maxListLimit))
			return
		}
	}
	if in.KeysOnly, err = boolParam(q, "keys_only"); err == nil {
		in.Stale, err = staleParam(q)
	}
	if v := q.Get("max_value_bytes"); v != "" && err == nil {
		if in.MaxValueBytes, err = strconv.Atoi(v); err != nil || in.MaxValueBytes < 1 {
			err = fmt.Errorf("%w: max_value_bytes must be a positive integer (bytes)", ErrBadRequest)
		}
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if isForwarded(r) && !q.Has("group") {
		// Nodes forward a listing group by group; a whole one marked forwarded would
		// take a slot kept for those shares (listLimit) and still fan out.
		writeError(w, r, s.log, fmt.Errorf("%w: a forwarded listing must name its group", ErrBadRequest))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	release, err := s.lists.acquire(ctx, r)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, r, s.log, err)
		return
	}
	defer release()
	if g := q.Get("group"); g != "" {
		s.listOneGroup(ctx, w, r, g, in)
		return
	}
	routes, err := s.kv.Routes()
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var (
		mu    sync.Mutex
		parts []share
		first error
		wg    sync.WaitGroup
		fetch = in
	)
	fetch.Limit = shareLimit(in.Limit, len(routes)) // more than the page's: there is a next page
	fetch.MaxBytes = shareBytes(len(routes))
	for _, rt := range routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part, err := s.listGroup(ctx, rt, fetch)
			if len(part.items) >= fetch.Limit {
				part.truncated = true // the group may hold more keys after this share's
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			parts = append(parts, part)
		}()
	}
	wg.Wait()
	if first != nil {
		writeError(w, r, s.log, first)
		return
	}
	page, next := mergePage(parts, in.Limit)
	cursor := Cursor{}
	for _, p := range parts {
		for g, pos := range p.cursor {
			cursor[g] = pos
		}
	}
	out := listJSON{Items: make([]keyValueJSON, 0, len(page)), Cursor: cursor.Encode()}
	w.Header().Set(cursorHeader, out.Cursor)
	for _, it := range page {
		out.Items = append(out.Items, it.item)
	}
	if next != nil {
		out.Next = encodeCursor(next)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listOneGroup(ctx context.Context, w http.ResponseWriter, r *http.Request, g string, in ListInput) {
	id, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: group must be a group id", ErrBadRequest))
		return
	}
	in.Group = uint32(id)
	routes, err := s.kv.Routes() // the budget is the page's over every group, as the sender's
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	in.MaxBytes = shareBytes(len(routes))
	page, err := s.kv.List(ctx, in)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := listJSON{Items: make([]keyValueJSON, 0, len(page.Items)), Cursor: Cursor{in.Group: AtIndex(page.Index)}.Encode()}
	w.Header().Set(cursorHeader, out.Cursor)
	for _, it := range page.Items {
		out.Items = append(out.Items, listedJSON(it, in.KeysOnly))
	}
	if page.Truncated && len(page.Items) > 0 { // cut at its byte budget: more may follow
		out.Next = encodeCursor(page.Items[len(page.Items)-1].Key)
	}
	writeJSON(w, http.StatusOK, out)
}
