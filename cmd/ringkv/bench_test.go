package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
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
