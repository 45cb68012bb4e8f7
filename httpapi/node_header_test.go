package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// routeKV is a KV whose view of the one group is set by the test; Put and Get succeed
// unless the view says this node does not lead.
type routeKV struct {
	KV
	id string

	mu sync.Mutex
	rt Route
	// deposeOnPut makes Put find out it no longer leads: it answers ErrNotLeader and
	// the view moves to lead.
	deposeOnPut *Route
	// afterForget is the view once ForgetLeader was called; forgot is who was forgotten.
	afterForget *Route
	forgot      string
}

func (k *routeKV) ForgetLeader(_ uint32, leader string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.forgot = leader
	if k.afterForget != nil && k.rt.LeaderID == leader {
		k.rt = *k.afterForget
	}
}

func (k *routeKV) NodeID() string { return k.id }

func (k *routeKV) Route([]byte) (Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rt, nil
}

func (k *routeKV) GroupRoute(uint32) (Route, error) { return k.Route(nil) }

func (k *routeKV) Put(ctx context.Context, in PutInput) (WriteOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.deposeOnPut != nil {
		k.rt, k.deposeOnPut = *k.deposeOnPut, nil
		return WriteOutput{}, &NotLeaderError{Leader: k.rt.LeaderID, LeaderHTTP: k.rt.LeaderHTTP}
	}
	return WriteOutput{Created: true, Version: 1, ModIndex: 7, ETag: `"7"`}, nil
}

func (k *routeKV) Routes() ([]Route, error) {
	rt, err := k.Route(nil)
	return []Route{rt}, err
}

func (k *routeKV) List(ctx context.Context, in ListInput) ([]ListItem, uint64, error) {
	return []ListItem{{Key: []byte("k"), Group: in.Group, Value: Value{Value: []byte("v"), Version: 1}}}, 7, nil
}

func (k *routeKV) Delete(ctx context.Context, in DeleteInput) (WriteOutput, error) {
	return WriteOutput{Version: 1, ModIndex: 8}, nil
}

func (k *routeKV) Get(ctx context.Context, rt Route, key []byte, stale bool) (GetOutput, error) {
	return GetOutput{Value: Value{Value: []byte("v"), Version: 1, ModIndex: 7, ETag: `"7"`}, Index: 7}, nil
}

// TestNodeHeaderNamesTheServingNode: X-Ringkv-Node is the node that served a /kv
// request, exactly once, also when it was forwarded (before or after trying locally).
func TestNodeHeaderNamesTheServingNode(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	leader := httptest.NewServer(New(Config{KV: &routeKV{id: "n2", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n2"}}, Log: quiet}))
	defer leader.Close()
	toLeader := Route{Group: 1, Local: true, LeaderID: "n2", LeaderHTTP: leader.URL}
	for _, tc := range []struct {
		name, method, path string
		kv                 *routeKV
		want               string
	}{
		{name: "leader serves a write", method: "PUT", path: "/kv/k",
			kv: &routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}}, want: "n1"},
		{name: "follower forwards a write", method: "PUT", path: "/kv/k", kv: &routeKV{id: "n1", rt: toLeader}, want: "n2"},
		{name: "follower forwards a linearizable read", method: "GET", path: "/kv/k", kv: &routeKV{id: "n1", rt: toLeader}, want: "n2"},
		{name: "follower serves a stale read", method: "GET", path: "/kv/k?consistency=stale", kv: &routeKV{id: "n1", rt: toLeader}, want: "n1"},
		{name: "deposed leader forwards after trying", method: "PUT", path: "/kv/k",
			kv: &routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}, deposeOnPut: &toLeader}, want: "n2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{KV: tc.kv, Log: quiet})
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("v")))
			if rec.Code >= 300 {
				t.Fatalf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body)
			}
			if got := rec.Header().Values(http.CanonicalHeaderKey(nodeHeader)); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("%s = %q, want [%s]", nodeHeader, got, tc.want)
			}
			// Served here or forwarded, the answer says which group and at which index.
			if g, i := rec.Header().Values("X-Ringkv-Group"), rec.Header().Values("X-Ringkv-Index"); len(g) != 1 || g[0] != "1" || len(i) != 1 || i[0] != "7" {
				t.Fatalf("X-Ringkv-Group %q, X-Ringkv-Index %q; want [1] and [7]", g, i)
			}
		})
	}
}

// TestForwardingIsBoundedByHops: a node that does not lead forwards a request another
// node already forwarded (its view may be newer: a leader hint), but not one that has
// made maxHops hops already (nodes with stale, crossing views), so a request never loops.
func TestForwardingIsBoundedByHops(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	var seenHops []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenHops = append(seenHops, r.Header.Get(hopsHeader))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer elsewhere.Close()
	s := New(Config{KV: &routeKV{id: "n1", rt: Route{Group: 1, Local: true, LeaderID: "n3", LeaderHTTP: elsewhere.URL}}, Log: quiet})
	for _, method := range []string{"PUT", "GET", "DELETE"} {
		req := httptest.NewRequest(method, "/kv/k", strings.NewReader("v"))
		req.Header.Set(forwardedHeader, "n2")
		req.Header.Set(hopsHeader, strconv.Itoa(maxHops))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Header().Get("Content-Type"), "problem+json") {
			t.Fatalf("%s after %d hops on a non-leader: %d %s %s, want a 503 problem", method, maxHops, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	if len(seenHops) != 0 {
		t.Fatalf("a request that had made %d hops was forwarded again %d times", maxHops, len(seenHops))
	}
	// Forwarded once already (by a node that predates the hop count, or with a count
	// below the budget): forwarded on, with the count raised.
	for _, hop := range []string{"", "1"} {
		req := httptest.NewRequest("GET", "/kv/k", nil)
		req.Header.Set(forwardedHeader, "n2")
		req.Header.Set(hopsHeader, hop)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("a request forwarded once was not forwarded on: %d %s", rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/kv/k", nil))
	if want := []string{"2", "2", "1"}; !slices.Equal(seenHops, want) {
		t.Fatalf("hop counts seen by the leader %q, want %q", seenHops, want)
	}
}

// TestForwardFollowsTheNextLeaderWhenOneRefuses: the leader this node knows of refuses
// the connection (it died); the node drops it from its view and forwards to the leader
// it learns of next, so the client gets the answer instead of a 503.
func TestForwardFollowsTheNextLeaderWhenOneRefuses(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // its address now refuses connections
	live := httptest.NewServer(New(Config{KV: &routeKV{id: "n3", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n3"}}, Log: quiet}))
	defer live.Close()
	for _, call := range []struct{ method, path string }{{"PUT", "/kv/k"}, {"GET", "/kv/k"}, {"DELETE", "/kv/k"}, {"GET", "/kv?limit=10"}} {
		method := call.method + " " + call.path
		kv := &routeKV{id: "n1", rt: Route{Group: 1, LeaderID: "n2", LeaderHTTP: dead.URL},
			afterForget: &Route{Group: 1, LeaderID: "n3", LeaderHTTP: live.URL}}
		s := New(Config{KV: kv, Log: quiet})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(call.method, call.path, strings.NewReader("v")))
		if call.path == "/kv?limit=10" { // a listing names no serving node; its items come from n3
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"key":"k"`) {
				t.Fatalf("%s with a dead leader in view: %d %s", method, rec.Code, rec.Body)
			}
		} else if rec.Code >= 300 || rec.Header().Get(nodeHeader) != "n3" {
			t.Fatalf("%s with a dead leader in view: %d %s (served by %q), want an answer from n3", method, rec.Code, rec.Body, rec.Header().Get(nodeHeader))
		}
		if kv.forgot != "n2" {
			t.Fatalf("%s: the refusing leader was not forgotten (forgot %q)", method, kv.forgot)
		}
	}
}
