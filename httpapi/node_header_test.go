package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
	hinted      []string // the leaders LeaderHint was given, in order
	// refusals is how many operations answer ErrNotLeader, nothing done, while the
	// view goes on saying this node leads (a read index that could not be confirmed).
	refusals int
}

// refuse takes one of k's refusals, if any are left.
func (k *routeKV) refuse() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.refusals == 0 {
		return false
	}
	k.refusals--
	return true
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

func (k *routeKV) LeaderHint(_ uint32, leader string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hinted = append(k.hinted, leader)
}

func (k *routeKV) Route([]byte) (Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rt, nil
}

func (k *routeKV) GroupRoute(uint32) (Route, error) { return k.Route(nil) }

func (k *routeKV) Put(ctx context.Context, in PutInput) (WriteOutput, error) {
	if k.refuse() {
		return WriteOutput{}, &NotLeaderError{}
	}
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

func (k *routeKV) List(ctx context.Context, in ListInput) (ListPage, error) {
	if k.refuse() {
		return ListPage{}, &NotLeaderError{}
	}
	return ListPage{Items: []ListItem{{Key: []byte("k"), Group: in.Group, Value: Value{Value: []byte("v"), Version: 1}}}, Index: 7}, nil
}

func (k *routeKV) Delete(ctx context.Context, in DeleteInput) (WriteOutput, error) {
	if k.refuse() {
		return WriteOutput{}, &NotLeaderError{}
	}
	return WriteOutput{Version: 1, ModIndex: 8}, nil
}

func (k *routeKV) Get(ctx context.Context, rt Route, key []byte, stale bool) (GetOutput, error) {
	if k.refuse() {
		return GetOutput{}, &NotLeaderError{}
	}
	return GetOutput{Value: Value{Value: []byte("v"), Version: 1, ModIndex: 7, ETag: `"7"`}, Index: 7}, nil
}

// TestNodeHeaderNamesTheServingNode: X-Ringkv-Node is the node that served a /kv
// request, exactly once, also when it was forwarded (before or after trying locally).
func TestNodeHeaderNamesTheServingNode(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	leader := httptest.NewServer(New(Config{AllowedHosts: testHosts, KV: &routeKV{id: "n2", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n2"}}, Log: quiet}))
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
			s := New(Config{AllowedHosts: testHosts, KV: tc.kv, Log: quiet})
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
			// The guard's headers once, whichever node's they are (guard.go, copyAnswer).
			if n, c := rec.Header().Values("X-Content-Type-Options"), rec.Header().Values("Content-Security-Policy"); len(n) != 1 || len(c) != 1 {
				t.Fatalf("X-Content-Type-Options %q, Content-Security-Policy %q; want each once", n, c)
			}
		})
	}
}

// TestForwardedRequestIsRefusedNotForwardedAgain: a node that does not lead, given a
// request another node forwarded, answers 503 at once (with the leader it knows)
// instead of holding or forwarding it: the sender follows the leader, so a request
// never loops and a node cut off by a partition cannot keep a write to apply later.
func TestForwardedRequestIsRefusedNotForwardedAgain(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var reached atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer elsewhere.Close()
	for _, rt := range []Route{
		{Group: 1, Local: true, LeaderID: "n3", LeaderHTTP: elsewhere.URL}, // a leader is known
		{Group: 1, Local: true}, // none is: no wait either
	} {
		s := New(Config{AllowedHosts: testHosts, KV: &routeKV{id: "n1", rt: rt}, Log: quiet})
		for _, method := range []string{"PUT", "GET", "DELETE"} {
			req := httptest.NewRequest(method, "/kv/k", strings.NewReader("v"))
			req.Header.Set(forwardedHeader, "n2")
			rec := httptest.NewRecorder()
			start := time.Now()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Header().Get("Content-Type"), "problem+json") {
				t.Fatalf("%s of a forwarded request on a non-leader: %d %s %s, want a 503 problem", method, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			if took := time.Since(start); took > time.Second {
				t.Fatalf("%s of a forwarded request was held %s", method, took)
			}
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("a forwarded request was forwarded again %d times", n)
	}
}

// TestForwardFollowsALeaderThatRefuses: the leader this node forwards to answers that
// it no longer leads (503, nothing done); the node follows the next leader it learns
// of. A 503 whose outcome is unknown is passed on as it is, never sent again.
func TestForwardFollowsALeaderThatRefuses(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var unknownSeen atomic.Int64
	deposed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("unknown") != "" {
			unknownSeen.Add(1)
			writeProblem(w, Problem{Title: "Service Unavailable", Status: 503, Outcome: "unknown"})
			return
		}
		if r.URL.Query().Get("other") != "" { // a 503 that is not about leadership
			writeProblem(w, Problem{Title: "Service Unavailable", Status: 503, Detail: "the cluster is not created yet"})
			return
		}
		writeProblem(w, Problem{Type: notLeaderType, Title: "Service Unavailable", Status: 503, Detail: "not the leader", Leader: "n3"})
	}))
	defer deposed.Close()
	live := httptest.NewServer(New(Config{AllowedHosts: testHosts, KV: &routeKV{id: "n3", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n3"}}, Log: quiet}))
	defer live.Close()
	for _, method := range []string{"PUT", "GET", "DELETE"} {
		kv := &routeKV{id: "n1", rt: Route{Group: 1, LeaderID: "n2", LeaderHTTP: deposed.URL},
			afterForget: &Route{Group: 1, LeaderID: "n3", LeaderHTTP: live.URL}}
		rec := httptest.NewRecorder()
		New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet}).ServeHTTP(rec, httptest.NewRequest(method, "/kv/k", strings.NewReader("v")))
		if rec.Code >= 300 || rec.Header().Get(nodeHeader) != "n3" {
			t.Fatalf("%s through a deposed leader: %d %s (served by %q), want an answer from n3", method, rec.Code, rec.Body, rec.Header().Get(nodeHeader))
		}
		// The refusal's hint and the node that served both name n3: this node's
		// cached view learns it at once.
		if !slices.Equal(kv.hinted, []string{"n3", "n3"}) {
			t.Fatalf("%s: leader hints %q, want [n3 n3]", method, kv.hinted)
		}
	}
	kv := &routeKV{id: "n1", rt: Route{Group: 1, LeaderID: "n2", LeaderHTTP: deposed.URL},
		afterForget: &Route{Group: 1, LeaderID: "n3", LeaderHTTP: live.URL}}
	rec := httptest.NewRecorder()
	New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet}).ServeHTTP(rec, httptest.NewRequest("PUT", "/kv/k?unknown=1", strings.NewReader("v")))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"outcome":"unknown"`) || unknownSeen.Load() != 1 {
		t.Fatalf("a write of unknown outcome: %d %s, sent %d times; want the 503 passed on, sent once", rec.Code, rec.Body, unknownSeen.Load())
	}
	// A 503 that is not a not-leader refusal is passed on at once: no leader change
	// would answer it.
	rec = httptest.NewRecorder()
	start := time.Now()
	New(Config{AllowedHosts: testHosts, KV: &routeKV{id: "n1", rt: Route{Group: 1, LeaderID: "n2", LeaderHTTP: deposed.URL}}, Log: quiet}).
		ServeHTTP(rec, httptest.NewRequest("GET", "/kv/k?other=1", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not created") || time.Since(start) > time.Second {
		t.Fatalf("another 503: %d %s after %s; want it passed on at once", rec.Code, rec.Body, time.Since(start))
	}
}

// TestForwardFollowsTheNextLeaderWhenOneRefuses: the leader this node knows of refuses
// the connection (it died); the node drops it from its view and forwards to the leader
// it learns of next, so the client gets the answer instead of a 503.
func TestForwardFollowsTheNextLeaderWhenOneRefuses(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // its address now refuses connections
	live := httptest.NewServer(New(Config{AllowedHosts: testHosts, KV: &routeKV{id: "n3", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n3"}}, Log: quiet}))
	defer live.Close()
	for _, call := range []struct{ method, path string }{{"PUT", "/kv/k"}, {"GET", "/kv/k"}, {"DELETE", "/kv/k"}, {"GET", "/kv?limit=10"}} {
		method := call.method + " " + call.path
		kv := &routeKV{id: "n1", rt: Route{Group: 1, LeaderID: "n2", LeaderHTTP: dead.URL},
			afterForget: &Route{Group: 1, LeaderID: "n3", LeaderHTTP: live.URL}}
		s := New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet})
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

// TestLeaderThatCannotConfirmTriesAgain: this node leads, but an operation answers
// ErrNotLeader with nothing done (a read index not confirmed in time, a transfer that
// then failed) while it goes on leading. The request is served here again instead of
// waiting for another leader that never comes and answering "no leader is known"
// (CI saw it through a graceful hand-off).
func TestLeaderThatCannotConfirmTriesAgain(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, call := range []struct{ method, path string }{{"PUT", "/kv/k"}, {"GET", "/kv/k"}, {"DELETE", "/kv/k"}, {"GET", "/kv?limit=10"}} {
		method := call.method + " " + call.path
		kv := &routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}, refusals: 3}
		rec := httptest.NewRecorder()
		start := time.Now()
		New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet}).ServeHTTP(rec, httptest.NewRequest(call.method, call.path, strings.NewReader("v")))
		listed := call.path == "/kv?limit=10" && strings.Contains(rec.Body.String(), `"key":"k"`) // a listing names no serving node
		if rec.Code >= 300 || (rec.Header().Get(nodeHeader) != "n1" && !listed) || kv.refusals != 0 {
			t.Fatalf("%s on a leader refused 3 times: %d %s (served by %q, %d refusals left)", method, rec.Code, rec.Body, rec.Header().Get(nodeHeader), kv.refusals)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("%s took %s: it waited for another leader", method, took)
		}
	}
	// A forwarded request is not held: refused once, it is answered 503 at once.
	kv := &routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}, refusals: 1}
	req := httptest.NewRequest("GET", "/kv/k", nil)
	req.Header.Set(forwardedHeader, "n2")
	rec := httptest.NewRecorder()
	New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet}).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("a forwarded GET refused by the backend: %d %s, want 503", rec.Code, rec.Body)
	}
}

// TestForwardedReadWhoseConnectionBreaksIsSentAgain: the leader's connection breaks
// after a forwarded request was written (EOF: it stopped, or closed an idle keep-alive
// connection under it). A read is sent again and answered; a write is answered with
// an unknown outcome, never sent twice.
func TestForwardedReadWhoseConnectionBreaksIsSentAgain(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var calls atomic.Int64
	inner := New(Config{AllowedHosts: testHosts, KV: &routeKV{id: "n2", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n2"}}, Log: quiet})
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 { // the first request meets a connection that closes
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer leader.Close()
	kv := &routeKV{id: "n1", rt: Route{Group: 1, Local: true, LeaderID: "n2", LeaderHTTP: leader.URL}}
	rec := httptest.NewRecorder()
	New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet}).ServeHTTP(rec, httptest.NewRequest("GET", "/kv/k", nil))
	if rec.Code != http.StatusOK || calls.Load() != 2 {
		t.Fatalf("a read whose forwarded connection broke: %d %s after %d sends; want 200 after 2", rec.Code, rec.Body, calls.Load())
	}
	calls.Store(0)
	rec = httptest.NewRecorder()
	New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet}).ServeHTTP(rec, httptest.NewRequest("PUT", "/kv/k", strings.NewReader("v")))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"outcome":"unknown"`) || calls.Load() != 1 {
		t.Fatalf("a write whose forwarded connection broke: %d %s after %d sends; want 503 outcome unknown after 1", rec.Code, rec.Body, calls.Load())
	}
}

// TestForwardRetriesALeaderThatRefusesNamingItself: the leader refuses a forwarded
// request naming itself as the leader (it leads, but could not confirm a read index in
// time). The sender tries it again after a pause instead of waiting 8 s for another
// leader, and the client is answered.
func TestForwardRetriesALeaderThatRefusesNamingItself(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	inner := New(Config{AllowedHosts: testHosts, KV: &routeKV{id: "n2", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n2"}}, Log: quiet})
	var calls atomic.Int64
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			writeProblem(w, Problem{Type: notLeaderType, Title: "Service Unavailable", Status: 503, Detail: "not the leader", Leader: "n2"})
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer leader.Close()
	for _, method := range []string{"GET", "PUT"} {
		calls.Store(0)
		kv := &routeKV{id: "n1", rt: Route{Group: 1, Local: true, LeaderID: "n2", LeaderHTTP: leader.URL}}
		rec := httptest.NewRecorder()
		start := time.Now()
		New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet}).ServeHTTP(rec, httptest.NewRequest(method, "/kv/k", strings.NewReader("v")))
		if rec.Code >= 300 || calls.Load() != 3 || time.Since(start) > 2*time.Second {
			t.Fatalf("%s through a leader refusing twice: %d %s after %d sends and %s", method, rec.Code, rec.Body, calls.Load(), time.Since(start))
		}
	}
}
