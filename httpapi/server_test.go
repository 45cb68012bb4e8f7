package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// panicKV panics on every call: the recoverer must turn that into a 500 problem.
type panicKV struct{ KV }

func (panicKV) NodeID() string { return "n1" }
func (panicKV) Route(key []byte) (Route, error) {
	panic("boom")
}

func TestPanicBecomesProblem(t *testing.T) {
	s := New(Config{AllowedHosts: testHosts, KV: panicKV{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/kv/x", nil))
	if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/problem+json" || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("panic answered %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", ErrBadRequest), 400},
		{ErrNotFound, 404},
		{ErrConditionFailed, 412},
		{ErrConflict, 409},
		{ErrTooLarge, 413},
		{&NotLeaderError{Leader: "n2"}, 503},
		{ErrUnavailable, 503},
		{ErrOutcomeUnknown, 503},
		{fmt.Errorf("%w: %w", ErrTimeout, ErrOutcomeUnknown), 504},
		{context.DeadlineExceeded, 504},
		{errors.New("disk on fire"), 500},
	} {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestOutcomeUnknownIsSaid(t *testing.T) {
	rec := httptest.NewRecorder()
	writeError(rec, httptest.NewRequest("PUT", "/kv/x", nil), slog.New(slog.NewTextHandler(io.Discard, nil)), ErrOutcomeUnknown)
	if !strings.Contains(rec.Body.String(), `"outcome":"unknown"`) {
		t.Fatalf("unknown outcome not said: %s", rec.Body)
	}
}

// countingReader counts what the handler read of a body.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += len(p)
	for i := range p {
		p[i] = 'v'
	}
	return len(p), nil
}

func TestOversizedBodyRefusedWithoutReadingIt(t *testing.T) {
	s := New(Config{AllowedHosts: testHosts, KV: panicKV{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxValueBytes: 1024})
	body := &countingReader{}
	req := httptest.NewRequest("PUT", "/kv/x", io.LimitReader(body, 1<<30))
	req.ContentLength = 1 << 30
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || body.n != 0 {
		t.Fatalf("declared 1 GiB body: %d, %d bytes read", rec.Code, body.n)
	}
	// Without a Content-Length the limit still holds, reading at most limit+1 bytes.
	body = &countingReader{}
	req = httptest.NewRequest("PUT", "/kv/x", io.LimitReader(body, 1<<30))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || body.n > 64<<10 {
		t.Fatalf("chunked 1 GiB body: %d, %d bytes read", rec.Code, body.n)
	}
}
