package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// faultWatcher follows one prefix through a fault run: it watches from a cursor,
// and whenever its stream ends, errs or stalls (its node killed, paused or cut off)
// it reconnects to a node that is up with the last cursor it saw (Last-Event-ID), as
// a browser's EventSource does.
type faultWatcher struct {
	urls   func() []string // "" for a node that is down
	prefix string
	client *http.Client
	rng    *rand.Rand

	mu         sync.Mutex
	cursor     string
	byKey      map[string][]watchChange
	reconnects int
	errors     []string // error events and refused reconnects
	gone       int      // reconnects answered 410: the cursor fell out of the history
}

// watchStall is how long a stream may stay silent before the watcher takes it for
// stalled: events flow constantly under the workload, and a stream with nothing to
// send still sends progress.
const watchStall = 5 * time.Second

func newFaultWatcher(urls func() []string, prefix, cursor string, seed uint64) *faultWatcher {
	return &faultWatcher{urls: urls, prefix: prefix, cursor: cursor, client: &http.Client{Transport: sharedTransport},
		rng: rand.New(rand.NewPCG(seed, 7)), byKey: map[string][]watchChange{}}
}

// run follows the prefix until ctx ends.
func (w *faultWatcher) run(ctx context.Context) {
	for opened := 0; ctx.Err() == nil; {
		var up []string
		for _, u := range w.urls() {
			if u != "" {
				up = append(up, u)
			}
		}
		if len(up) > 0 {
			if opened++; opened > 1 {
				w.mu.Lock()
				w.reconnects++
				w.mu.Unlock()
			}
			w.follow(ctx, up[w.rng.IntN(len(up))])
		}
		select { // a moment before reconnecting, as EventSource's retry
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// follow reads one stream until it ends, errs or stalls.
func (w *faultWatcher) follow(ctx context.Context, base string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.mu.Lock()
	cursor := w.cursor
	w.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/kv?watch=true&prev=true&prefix="+url.QueryEscape(w.prefix), nil)
	req.Header.Set("Last-Event-ID", cursor)
	resp, err := w.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.note(fmt.Sprintf("reconnect to %s refused: %s", base, resp.Status))
		if resp.StatusCode == http.StatusGone {
			w.mu.Lock()
			w.gone++
			w.mu.Unlock()
		}
		return
	}
	stall := time.AfterFunc(watchStall, cancel)
	defer stall.Stop()
	scanSSE(resetOnRead{resp.Body, stall}, func(id, event, data string) bool {
		if event == "error" {
			w.note("error event from " + base + ": " + data)
			return false
		}
		if err := w.take(id, event, data); err != nil {
			w.note(err.Error())
			return false
		}
		return true
	})
}

// resetOnRead restarts a stall timer whenever the stream delivers bytes (events,
// progress or keepalive comments).
type resetOnRead struct {
	r     io.Reader
	stall *time.Timer
}

func (s resetOnRead) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.stall.Reset(watchStall)
	}
	return n, err
}

// take records one event and moves the cursor past it.
func (w *faultWatcher) take(id, event, data string) error {
	var e sseEvent
	if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
		return fmt.Errorf("event %s data %q: %v", id, data, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if event == "put" || event == "delete" {
		c := watchChange{ID: id, Delete: event == "delete"}
		if e.Data.Value != nil {
			c.Value = *e.Data.Value
		}
		if e.Data.Prev != nil && e.Data.Prev.Value != nil {
			c.Prev = *e.Data.Prev.Value
		}
		w.byKey[e.Data.Key] = append(w.byKey[e.Data.Key], c)
	}
	if id != "" {
		w.cursor = id
	}
	return nil
}

func (w *faultWatcher) note(s string) {
	w.mu.Lock()
	w.errors = append(w.errors, s)
	w.mu.Unlock()
}

// state is each key's value after the events seen so far ("" for absent).
func (w *faultWatcher) state() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for k, events := range w.byKey {
		if last := events[len(events)-1]; !last.Delete {
			out[k] = last.Value
		}
	}
	return out
}

// listPrefix lists a prefix through base: each key's value and the listing's cursor.
func listPrefix(t testing.TB, base, prefix string) (map[string]string, string) {
	t.Helper()
	resp, err := validatingHTTPClient(t, 15*time.Second).Get(base + "/kv?prefix=" + url.QueryEscape(prefix))
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			Key   string  `json:"key"`
			Value *string `json:"value"`
		} `json:"items"`
		Cursor string `json:"cursor"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK || list.Cursor == "" {
		t.Fatalf("list %s: %s %+v %v", prefix, resp.Status, list, err)
	}
	out := map[string]string{}
	for _, it := range list.Items {
		if it.Value != nil {
			out[it.Key] = *it.Value
		}
	}
	return out, list.Cursor
}

// startFaultWatchers starts n watchers of prefix from a listing's cursor; the
// returned function waits until each has caught up with the final listing, stops
// them and checks what they saw against the history.
func startFaultWatchers(t *testing.T, f *faultState, w *workload, prefix string, n int, seed uint64) func() {
	t.Helper()
	_, cursor := listPrefix(t, f.urls()[0], prefix)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	watchers := make([]*faultWatcher, n)
	for i := range watchers {
		watchers[i] = newFaultWatcher(f.urls, prefix, cursor, seed+uint64(i))
		wg.Add(1)
		go func() { defer wg.Done(); watchers[i].run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return func() {
		t.Helper()
		finals, _ := listPrefix(t, f.c.procs[0].httpURL, prefix)
		eventually(t, 30*time.Second, "the watchers catch up with the final listing", func() error {
			for i, fw := range watchers {
				if got := fw.state(); !maps.Equal(got, finals) {
					return fmt.Errorf("watcher %d is at %v, the listing at %v", i, got, finals)
				}
			}
			return nil
		})
		cancel()
		wg.Wait()
		seen := make([]map[string][]watchChange, n)
		reconnects, events := 0, 0
		for i, fw := range watchers {
			seen[i] = fw.byKey
			reconnects += fw.reconnects
			if fw.gone > 0 {
				t.Errorf("watcher %d: %d reconnects answered 410 Gone: the history lost a cursor the watcher held", i, fw.gone)
			}
			for _, es := range fw.byKey {
				events += len(es)
			}
			if len(fw.errors) > 0 {
				t.Logf("watcher %d: %d error events or refused reconnects, e.g. %s", i, len(fw.errors), fw.errors[0])
			}
		}
		finalWithAbsent := maps.Clone(finals)
		for _, k := range w.keys {
			if _, ok := finalWithAbsent[k]; !ok {
				finalWithAbsent[k] = ""
			}
		}
		problems := checkWatchedHistory(w.history, seen, finalWithAbsent)
		for _, p := range problems {
			t.Error("watch: " + p)
		}
		t.Logf("watchers: %d, %d events in all, %d reconnects, %d problems", n, events, reconnects, len(problems))
	}
}
