package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// memKV is an in-memory KV with the conditions of the real state machine, enough for
// the handlers' request decoding to be fuzzed end to end.
type memKV struct {
	mu    sync.Mutex
	data  map[string]Value
	index uint64
}

func (m *memKV) NodeID() string { return "n1" }

func (m *memKV) Route(key []byte) (Route, error) {
	return Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}, nil
}
func (m *memKV) Routes() ([]Route, error)         { r, _ := m.Route(nil); return []Route{r}, nil }
func (m *memKV) GroupRoute(uint32) (Route, error) { return m.Route(nil) }
func (m *memKV) ForgetLeader(uint32, string)      {}
func (m *memKV) LeaderHint(uint32, string)        {}
func (m *memKV) snapshot() map[string]Value {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.data)
}
func (m *memKV) etag(index uint64) string { return fmt.Sprintf(`"%d.0"`, index) }
func (m *memKV) check(cur Value, ok bool, c Condition) bool {
	switch {
	case c.Absent:
		return !ok
	case c.Exists:
		return ok
	case c.ETag != "":
		return ok && cur.ETag == c.ETag
	}
	return true
}

func (m *memKV) Put(ctx context.Context, in PutInput) (WriteOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.data[string(in.Key)]
	if !m.check(cur, ok, in.Cond) {
		return WriteOutput{}, ErrConditionFailed
	}
	m.index++
	v := Value{Value: bytes.Clone(in.Value), Version: cur.Version + 1, CreateIndex: cur.CreateIndex, ModIndex: m.index, ETag: m.etag(m.index)}
	if !ok {
		v.CreateIndex = m.index
	}
	m.data[string(in.Key)] = v
	out := WriteOutput{Created: !ok, Version: v.Version, ModIndex: m.index, ETag: v.ETag}
	if ok && in.WantPrev {
		out.Prev = &cur
	}
	return out, nil
}

func (m *memKV) Delete(ctx context.Context, in DeleteInput) (WriteOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.data[string(in.Key)]
	if !ok {
		return WriteOutput{}, fmt.Errorf("%w: key %q", ErrNotFound, in.Key)
	}
	if !m.check(cur, ok, in.Cond) {
		return WriteOutput{}, ErrConditionFailed
	}
	m.index++
	delete(m.data, string(in.Key))
	out := WriteOutput{ModIndex: m.index}
	if in.WantPrev {
		out.Prev = &cur
	}
	return out, nil
}

func (m *memKV) Get(ctx context.Context, r Route, key []byte, stale bool) (GetOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[string(key)]
	if !ok {
		return GetOutput{}, fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return GetOutput{Value: v, Index: m.index}, nil
}

func (m *memKV) List(ctx context.Context, in ListInput) (ListPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []ListItem
	for k, v := range m.data {
		if strings.HasPrefix(k, string(in.Prefix)) && k > string(in.StartAfter) {
			all = append(all, ListItem{Key: []byte(k), Group: 1, Value: v})
		}
	}
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i].Key, all[j].Key) < 0 })
	// As raftgroup's KV.List: at most Limit items, and at most MaxBytes of keys and
	// values (at least one item), saying when that bound cut the share.
	page := ListPage{Index: m.index}
	size := 0
	for _, it := range all {
		if in.Limit > 0 && len(page.Items) == in.Limit {
			break
		}
		if size += len(it.Key) + len(it.Value.Value); in.MaxBytes > 0 && len(page.Items) > 0 && size > in.MaxBytes {
			page.Truncated = true
			break
		}
		page.Items = append(page.Items, it)
	}
	return page, nil
}

// FuzzRequest sends arbitrary /kv requests (method, path, query, conditional headers,
// body) to the real router over a store holding one key. Whatever the input: no
// panic and no 500, every error is a problem+json with its own status, and a request
// answered with an error leaves the store exactly as it was.
func FuzzRequest(f *testing.F) {
	seeds := []struct {
		method        uint8
		path, query   string
		ifMatch, ifNM string
		body          []byte
	}{
		{0, "/a", "", "", "", []byte("v")},
		{0, "/kept", "prev=true", `"1.0"`, "", []byte("v")},
		{0, "/kept", "", "", "*", nil},
		{1, "/kept", "raw=true&consistency=stale", "", "", nil},
		{1, "", "prefix=k&limit=2&start_after=a&keys_only=true", "", "", nil},
		{1, "", "limit=1&cursor=a2VwdA", "", "", nil},
		{1, "", "cursor=%FE&start_after=a", "", "", nil},
		{2, "/kept", "prev=maybe", "*", "", nil},
		{1, "", "limit=-1", "", "", nil},
		{0, "/%zz", "", "", "", nil},
		{1, "/kept", "consistency=eventual", "", "", nil},
		{0, "/" + strings.Repeat("k", 4097), "", "", "", nil},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.ifMatch, s.ifNM, s.body)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, method uint8, path, query, ifMatch, ifNoneMatch string, body []byte) {
		kv := &memKV{data: map[string]Value{"kept": {Value: []byte("old"), Version: 1, CreateIndex: 1, ModIndex: 1, ETag: `"1.0"`}}, index: 1}
		s := New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet, MaxValueBytes: 1024})
		target := "http://x/kv" + path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest([]string{"PUT", "GET", "DELETE", "POST", "PATCH"}[int(method)%5], target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		for name, v := range map[string]string{"If-Match": ifMatch, "If-None-Match": ifNoneMatch} {
			if v != "" {
				req.Header.Set(name, v)
			}
		}
		before := kv.snapshot()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", req.Method, target, rec.Code, rec.Body)
		}
		if rec.Code < 400 {
			return
		}
		var p Problem
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != rec.Code || p.Title == "" {
			t.Fatalf("%s %s: %d answered with %q %s, want a problem with its status", req.Method, target, rec.Code, ct, rec.Body)
		}
		if after := kv.snapshot(); !maps.EqualFunc(before, after, func(a, b Value) bool { return bytes.Equal(a.Value, b.Value) && a.ModIndex == b.ModIndex }) {
			t.Fatalf("%s %s answered %d but changed the store: %v -> %v", req.Method, target, rec.Code, before, after)
		}
	})
}
