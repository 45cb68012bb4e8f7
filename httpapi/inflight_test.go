package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// blockingKV answers Get only once released, so a test can hold requests in flight.
type blockingKV struct {
	routeKV
	entered chan struct{}
	release chan struct{}
}

func (k *blockingKV) Get(ctx context.Context, rt Route, key []byte, stale bool) (GetOutput, error) {
	k.entered <- struct{}{}
	<-k.release
	return k.routeKV.Get(ctx, rt, key, stale)
}

// TestRequestsBeyondTheInFlightBoundAreRefusedAtOnce: with MaxInFlight requests being
// served, the next client request is answered 503 with Retry-After at once, nothing
// done; a request another node forwarded is still served; once the others finish, a
// client is served again.
func TestRequestsBeyondTheInFlightBoundAreRefusedAtOnce(t *testing.T) {
	const limit = 4
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	kv := &blockingKV{routeKV: routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}},
		entered: make(chan struct{}, 2*limit), release: make(chan struct{})}
	s := New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet, MaxInFlight: limit})
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/kv/k", nil))
		}()
	}
	for range limit {
		<-kv.entered
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/kv/k", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" ||
		!strings.Contains(rec.Body.String(), "overloaded") || strings.Contains(rec.Body.String(), "outcome") {
		t.Fatalf("request %d: %d %q %s, want a 503 with Retry-After and nothing done", limit+1, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	// A forwarded request was admitted where it arrived: served here too.
	fwd := httptest.NewRequest("GET", "/kv/k", nil)
	fwd.Header.Set(forwardedHeader, "n2")
	done := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, fwd)
		done <- rec.Code
	}()
	<-kv.entered
	close(kv.release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("a forwarded request beyond the bound: %d, want 200", code)
	}
	wg.Wait()
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/kv/k", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after the others finished: %d %s", rec.Code, rec.Body)
	}
}

// TestForwardedRequestsHaveABoundToo: requests marked forwarded by another node have a
// bound of their own, as large: the header, which a client can set (nothing
// authenticates peers yet), does not lift the bound.
func TestForwardedRequestsHaveABoundToo(t *testing.T) {
	const limit = 3
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	kv := &blockingKV{routeKV: routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}},
		entered: make(chan struct{}, 2*limit), release: make(chan struct{})}
	s := New(Config{AllowedHosts: testHosts, KV: kv, Log: quiet, MaxInFlight: limit})
	forwarded := func() *http.Request {
		r := httptest.NewRequest("GET", "/kv/k", nil)
		r.Header.Set(forwardedHeader, "evil")
		return r
	}
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeHTTP(httptest.NewRecorder(), forwarded())
		}()
	}
	for range limit {
		<-kv.entered
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, forwarded())
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("forwarded request %d: %d %s, want a 503 with Retry-After", limit+1, rec.Code, rec.Body)
	}
	close(kv.release)
	wg.Wait()
}
