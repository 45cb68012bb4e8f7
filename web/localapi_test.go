package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
)

// fakeAPI answers the REST calls LocalAPI makes, with the JSON shapes of
// openapi/openapi.yaml, and records the raw paths it was sent.
type fakeAPI struct {
	mu    sync.Mutex
	paths []string
	kv    map[string][]byte
}

func (f *fakeAPI) router() chi.Router {
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			f.mu.Lock()
			f.paths = append(f.paths, req.Method+" "+req.URL.EscapedPath()+"?"+req.URL.RawQuery)
			f.mu.Unlock()
			next.ServeHTTP(w, req)
		})
	})
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	r.Get("/admin/nodes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"nodes": []map[string]any{{"id": "n1", "state": "up", "last_seen": "2026-05-01T11:59:59Z", "replicas": 3, "leaders": 1}}})
	})
	r.Get("/admin/groups", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"groups": []map[string]any{{"id": 1, "leader": "n1", "term": 4, "commit_index": 9, "applied_index": 9,
			"replicas": []map[string]any{{"node": "n1", "voter": true, "state": "Leader", "lag": 0, "healthy": true}}, "partitions": []int{0}}}})
	})
	r.Get("/admin/partitions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"epoch": 3, "partitions": []map[string]any{{"id": 0, "group": 1, "epoch": 3, "hash_start": "0", "hash_end": "f"}}})
	})
	r.Get("/kv", func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, 200, map[string]any{"items": []map[string]any{
			{"key": "a", "value": "text", "version": 1, "group": 1},
			{"key_base64": "Yv8=", "value_base64": "AAH/", "version": 2, "group": 2},
		}, "next": "Yv8"})
	})
	r.Put("/kv/*", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		f.mu.Lock()
		f.kv[req.URL.Path] = b
		f.mu.Unlock()
		writeJSON(w, 201, map[string]any{"key": "x", "version": 1, "created": true})
	})
	r.Get("/kv/*", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		writeJSON(w, 404, map[string]any{"title": "Not Found", "status": 404, "detail": "key \"zz\""})
	})
	r.Delete("/kv/*", func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, 503, map[string]any{"title": "Service Unavailable", "status": 503, "detail": "leader lost", "outcome": "unknown"})
	})
	return r
}

func TestLocalAPIClusterView(t *testing.T) {
	api := NewLocalAPI((&fakeAPI{}).router())
	ctx := context.Background()
	nodes, err := api.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].ID != "n1" || nodes[0].LastSeen.IsZero() || nodes[0].Leaders != 1 {
		t.Fatalf("nodes %+v, %v", nodes, err)
	}
	groups, err := api.Groups(ctx)
	if err != nil || len(groups) != 1 || groups[0].Term != 4 || !groups[0].Replicas[0].Healthy {
		t.Fatalf("groups %+v, %v", groups, err)
	}
	parts, err := api.Partitions(ctx)
	if err != nil || parts.Epoch != 3 || parts.Partitions[0].HashEnd != "f" {
		t.Fatalf("partitions %+v, %v", parts, err)
	}
}

func TestLocalAPIKeys(t *testing.T) {
	f := &fakeAPI{kv: map[string][]byte{}}
	api := NewLocalAPI(f.router())
	ctx := context.Background()

	// The page's cursor is the API's opaque next, sent back as cursor; a key that is
	// not UTF-8 arrives in key_base64 and is kept exactly.
	page, err := api.List(ctx, "a/", "YS8w", 25)
	if err != nil || page.Next != "Yv8" || len(page.Items) != 2 {
		t.Fatalf("list %+v, %v", page, err)
	}
	if got := string(page.Items[1].Value); got != "\x00\x01\xff" {
		t.Errorf("value_base64 decoded to %q", got)
	}
	if got := page.Items[1].Key; got != "b\xff" {
		t.Errorf("key_base64 decoded to %q", got)
	}
	if f.paths[0] != "GET /kv?cursor=YS8w&limit=25&prefix=a%2F" {
		t.Errorf("list sent as %q", f.paths[0])
	}

	// Every byte of the key reaches the API in one escaped path segment.
	key := "dir/a b?#%\xff"
	res, err := api.Put(ctx, key, []byte("v"))
	if err != nil || !res.Created {
		t.Fatalf("put %+v, %v", res, err)
	}
	if got := f.paths[1]; got != "PUT /kv/dir%2Fa%20b%3F%23%25%FF?" {
		t.Errorf("put sent as %q", got)
	}
	if string(f.kv["/kv/"+key]) != "v" {
		t.Errorf("stored %q", f.kv)
	}

	_, err = api.Get(ctx, "zz")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Detail != `key "zz"` || ae.OutcomeUnknown {
		t.Errorf("get missing key: %#v", err)
	}
	err = api.Delete(ctx, "k")
	if !errors.As(err, &ae) || ae.Status != 503 || !ae.OutcomeUnknown {
		t.Errorf("delete: %#v", err)
	}
}

func TestLocalAPINonProblemError(t *testing.T) {
	api := NewLocalAPI(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	_, err := api.Nodes(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Title != "Bad Gateway" || ae.Detail != "upstream exploded" {
		t.Errorf("%#v", err)
	}
}

// The dashboard mounted inside the very router it calls, as on a node: the calls it
// makes must be routed afresh, not as sub-routes of the /ui request that made them.
func TestDashboardOverItsOwnRouter(t *testing.T) {
	r := (&fakeAPI{kv: map[string][]byte{}}).router()
	api := NewLocalAPI(r)
	r.Mount(Prefix, New(Config{Cluster: api, KV: api, NodeID: "n1"}))
	s := &site{t: t, h: r}
	resp, body := s.do("GET", "/ui/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	d := parseDoc(t, body)
	if d.has("error") {
		t.Fatalf("the overview shows an error: %s", d.text("error"))
	}
	if d.text("node-state-n1") != "up" || !d.has("arc-0") || d.text("group-leader-1") != "n1" {
		t.Error("the overview lacks the API's data")
	}
	_, body = s.do("GET", "/ui/keys", nil)
	if rows := parseDoc(t, body).all("key-row"); len(rows) != 2 || attr(rows[0], "data-key") != "a" {
		t.Errorf("the key browser shows %d rows, want the API's keys a and b\xff", len(rows))
	}
	// b\xff is not UTF-8: its link names its exact bytes, so its page can be opened.
	if !strings.Contains(string(body), `href="/ui/keys/view?key=b%FF"`) {
		t.Errorf("the key browser does not link b\xff exactly: %s", body)
	}
}
