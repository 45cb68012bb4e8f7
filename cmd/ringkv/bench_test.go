package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchKeepsAnErrorSampleEachStatus: the bench keeps the first answer of each
// error status (a transport error under "0"), so its report can say which 503s it met;
// a 404 (a read of a key not written yet) and successes are not errors.
func TestBenchKeepsAnErrorSampleEachStatus(t *testing.T) {
	answer := func(status int, body string) *http.Response {
		return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(body))}
	}
	var s errorSamples
	for _, a := range []struct {
		resp *http.Response
		err  error
		want int
	}{
		{answer(503, `{"detail":"overloaded"}`), nil, 503},
		{answer(503, `{"detail":"outcome unknown"}`), nil, 503},
		{answer(404, `{"detail":"not found"}`), nil, 404},
		{answer(200, `{}`), nil, 200},
		{nil, errors.New("connection refused"), 0},
	} {
		if got := s.drain(a.resp, a.err); got != a.want {
			t.Fatalf("status %d, want %d", got, a.want)
		}
	}
	if len(s.first) != 2 || !strings.Contains(s.first["503"], "overloaded") || s.first["0"] != "connection refused" {
		t.Fatalf("samples %q: want the first 503 and the transport error", s.first)
	}
}

// fakeNodes are HTTP servers that each lead one group of a ring cut into len(ids)
// equal partitions, answer the admin API as ringkv does and accept any /kv request;
// newConns counts the connections clients opened to them.
type fakeNodes struct {
	srvs     []*httptest.Server
	newConns atomic.Int64
}

func newFakeNodes(t *testing.T, n int) *fakeNodes {
	f := &fakeNodes{}
	width := ^uint64(0)/uint64(n) + 1
	var parts, groups, nodes []map[string]any
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reply := func(v any) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(v)
			}
			switch r.URL.Path {
			case "/admin/partitions":
				reply(map[string]any{"epoch": 1, "partitions": parts})
			case "/admin/groups":
				reply(map[string]any{"groups": groups})
			case "/admin/nodes":
				reply(map[string]any{"nodes": nodes})
			default:
				w.Header().Set("X-Ringkv-Node", id) // each node leads the group of every key sent to it
				_, _ = io.Copy(io.Discard, r.Body)
				reply(map[string]any{})
			}
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				f.newConns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		f.srvs = append(f.srvs, srv)
		start, end := uint64(i)*width, uint64(i+1)*width-1
		if i == n-1 {
			end = ^uint64(0)
		}
		parts = append(parts, map[string]any{"id": i, "group": i + 1, "epoch": 1,
			"hash_start": fmt.Sprintf("%016x", start), "hash_end": fmt.Sprintf("%016x", end)})
		groups = append(groups, map[string]any{"id": i + 1, "leader": id, "term": 1, "commit_index": 1,
			"applied_index": 1, "replicas": []any{}, "partitions": []any{}})
		nodes = append(nodes, map[string]any{"id": id, "http_addr": strings.TrimPrefix(srv.URL, "http://"),
			"raft_addr": "-", "state": "up"})
	}
	return f
}

// TestBenchDirectKeepsItsConnections: with --direct each worker sends to every leader
// in turn, and each of its connections must be kept for the next request there, so
// that a run measures requests, not connection set-up (with TLS, a handshake each).
func TestBenchDirectKeepsItsConnections(t *testing.T) {
	for _, workers := range []int{1, 4} {
		f := newFakeNodes(t, 3)
		before := f.newConns.Load()
		cfg := benchConfig{addrs: []string{f.srvs[0].URL}, concurrency: workers, keys: 1000, valueSize: 10,
			reads: 0.5, duration: 300 * time.Millisecond, consistency: "linearizable", direct: true}
		res, err := runBench(context.Background(), cfg, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops < 100 || len(res.Errors) > 0 || res.Routing.Misrouted+res.Routing.Fallbacks > 0 {
			t.Fatalf("%d workers: %d ops, errors %v, routing %+v", workers, res.Ops, res.Errors, *res.Routing)
		}
		// At most one connection per worker and node, and one for the routing table.
		if opened := f.newConns.Load() - before; opened > int64(workers*3+1) {
			t.Fatalf("%d workers made %d connections for %d requests, want at most %d", workers, opened, res.Ops, workers*3+1)
		}
	}
}
