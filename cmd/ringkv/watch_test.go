package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWatchReconnectsWithLastEventID: a stream that ends with an error event is
// resumed on the next --addr node from the last event's id, and the text output shows
// keys and values safely (a binary key quoted, a binary value as hex, --prev).
func TestWatchReconnectsWithLastEventID(t *testing.T) {
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("prefix") != "app/" || r.URL.Query().Get("watch") != "true" {
			t.Errorf("first node asked %s", r.URL)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: c0\nevent: progress\ndata: {\"cursor\":\"c0\"}\n\n: keepalive\n\n")
		fmt.Fprint(w, "id: c1\nevent: put\ndata: {\"type\":\"put\",\"key\":\"app/a\",\"value\":\"a1\",\"mod_index\":7,\"group\":1,\"prev\":{\"value\":\"a0\"}}\n\n")
		fmt.Fprint(w, "event: error\ndata: {\"error\":\"the node is stopping\",\"cursor\":\"c1\"}\n\n")
	}))
	defer first.Close()
	resumed := make(chan string, 1)
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resumed <- r.Header.Get("Last-Event-ID")
		w.Header().Set("Content-Type", "text/event-stream")
		// "app/\xff" as key_base64; value 0x00ff.
		fmt.Fprint(w, "id: c2\nevent: put\ndata: {\"type\":\"put\",\"key_base64\":\"YXBwL/8=\",\"value_base64\":\"AP8=\",\"mod_index\":8,\"group\":2}\n\n")
		fmt.Fprint(w, "id: c3\nevent: delete\ndata: {\"type\":\"delete\",\"key\":\"app/a\",\"mod_index\":9,\"group\":1,\"prev\":{\"value\":\"a1\"}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer second.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"watch", "app/", "--prev", "--addr", first.URL + "," + second.URL}, func(string) string { return "" }, nil, &stdout, &stderr)
	}()
	select {
	case id := <-resumed:
		if id != "c1" {
			t.Fatalf("resumed with Last-Event-ID %q, want c1 (the last change's id)", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no reconnection to the second node; stderr: %s", stderr.String())
	}
	want := "put app/a=a1 (was a0)\nput \"app/\\xff\"=0x00ff\ndelete app/a (was a1)\n"
	deadline := time.Now().Add(10 * time.Second)
	for stdout.String() != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := stdout.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(stderr.String(), "the node is stopping") {
		t.Errorf("stderr does not say why the stream ended: %q", stderr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("interrupted watch: %v, want a clean exit", err)
	}
}

// TestWatchGoneExits: a cursor older than the history (410) ends the watch with the
// problem on stderr and exit 2; other nodes are not tried, as they keep the same
// history.
func TestWatchGoneExits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "w1.old" {
			t.Errorf("Last-Event-ID %q, want the --since cursor", r.Header.Get("Last-Event-ID"))
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"title":"Gone","status":410,"detail":"the cursor is older than the history kept","cursor":"w1.new"}`)
	}))
	defer srv.Close()
	var stdout, stderr lockedBuffer
	err := run(context.Background(), []string{"watch", "--since", "w1.old", "--addr", srv.URL + "," + srv.URL}, func(string) string { return "" }, nil, &stdout, &stderr)
	if ec, ok := err.(exitCode); !ok || ec != 2 {
		t.Fatalf("exit %v, want 2", err)
	}
	if !strings.Contains(stderr.String(), "410") || !strings.Contains(stderr.String(), "older than the history") {
		t.Fatalf("stderr %q", stderr.String())
	}
}

// TestWatchJSONOutput: -o json prints each change as one JSON object per line, with
// its id as "cursor" and numbers as they came.
func TestWatchJSONOutput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: c1\nevent: put\ndata: {\"type\":\"put\",\"key\":\"k\",\"value\":\"v\",\"mod_index\":18446744073709551615,\"group\":1}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"watch", "-o", "json", "--addr", srv.URL}, func(string) string { return "" }, nil, &stdout, &stderr)
	}()
	want := `{"cursor":"c1","group":1,"key":"k","mod_index":18446744073709551615,"type":"put","value":"v"}` + "\n"
	deadline := time.Now().Add(10 * time.Second)
	for stdout.String() != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := stdout.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}
