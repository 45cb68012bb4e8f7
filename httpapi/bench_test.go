package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// The cost of one /kv request on this node without Raft: routing, path and query
// decoding, the body read, the JSON answer and its headers. On 2 cores every
// microsecond here is taken from the group commit and the read index (see
// docs/PERFORMANCE.md).
func BenchmarkHandlerPut(b *testing.B) {
	s := New(Config{AllowedHosts: testHosts, KV: &memKV{data: map[string]Value{}}, Log: slog.New(slog.DiscardHandler), MaxValueBytes: 1 << 20})
	value := bytes.Repeat([]byte("v"), 100)
	paths := benchPaths(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := httptest.NewRequest(http.MethodPut, paths[i%len(paths)], bytes.NewReader(value))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkHandlerGet(b *testing.B) {
	kv := &memKV{data: map[string]Value{}}
	s := New(Config{AllowedHosts: testHosts, KV: kv, Log: slog.New(slog.DiscardHandler), MaxValueBytes: 1 << 20})
	paths := benchPaths(1024)
	for _, p := range paths {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPut, p, bytes.NewReader(bytes.Repeat([]byte("v"), 100))))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, paths[i%len(paths)], nil))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func benchPaths(n int) []string {
	paths := make([]string, n)
	for i := range paths {
		paths[i] = "/kv/bench-" + strconv.Itoa(i)
	}
	return paths
}
