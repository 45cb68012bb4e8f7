package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sseEvent is one Server-Sent Event of a watch.
type sseEvent struct {
	ID, Event string
	Data      struct {
		Type        string  `json:"type"`
		Key         string  `json:"key"`
		KeyBase64   *string `json:"key_base64"`
		Value       *string `json:"value"`
		ValueBase64 *string `json:"value_base64"`
		ModIndex    uint64  `json:"mod_index"`
		Group       uint32  `json:"group"`
		Error       string  `json:"error"`
		Cursor      string  `json:"cursor"`
		Prev        *struct {
			Value *string `json:"value"`
		} `json:"prev"`
	}
}

func (e sseEvent) key(t *testing.T) string {
	if e.Data.KeyBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*e.Data.KeyBase64)
		if err != nil {
			t.Fatalf("key_base64 %q: %v", *e.Data.KeyBase64, err)
		}
		return string(b)
	}
	return e.Data.Key
}

// watchStream opens a watch and sends its events on the returned channel until the
// stream ends (the channel closes) or cancel is called.
func watchStream(t *testing.T, rawURL, lastEventID string) (<-chan sseEvent, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("watch %s: %v", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("watch %s: %s %s %s", rawURL, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	out := make(chan sseEvent, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		scanSSE(resp.Body, func(id, event, data string) bool {
			e := sseEvent{ID: id, Event: event}
			if err := json.Unmarshal([]byte(data), &e.Data); data != "" && err != nil {
				t.Errorf("event data %q: %v", data, err)
			}
			out <- e
			return true
		})
	}()
	return out, cancel
}

// scanSSE reads Server-Sent Events from r and calls each with every complete event
// (one that has an event: line; comments and bare keepalives are skipped) until r
// ends or each answers false.
func scanSSE(r io.Reader, each func(id, event, data string) bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var id, event, data string
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == "":
			if event != "" && !each(id, event, data) {
				return
			}
			id, event, data = "", "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

// nextChange is the next put or delete of a stream (progress events skipped).
func nextChange(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the watch ended")
			}
			if e.Event == "error" {
				t.Fatalf("the watch failed: %+v", e.Data)
			}
			if e.Event == "put" || e.Event == "delete" {
				return e
			}
		case <-timeout:
			t.Fatal("no event within 20s")
		}
	}
}

func watchPut(t *testing.T, base, key, value string) {
	t.Helper()
	eventually(t, 20*time.Second, "PUT "+key, func() error {
		req, _ := http.NewRequest(http.MethodPut, base+"/kv/"+url.PathEscape(key), strings.NewReader(value))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s %s", resp.Status, b)
		}
		return nil
	})
}

func deleteRaw(t *testing.T, base, key string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, base+"/kv/"+url.PathEscape(key), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %q: %v %v", key, resp, err)
	}
	resp.Body.Close()
}

// TestWatchListThenWatchResumeAndGone is issue #16 through the binary: a listing's
// cursor starts a watch (on another node) that sees exactly the writes after the
// listing, in order per key, each once, including a key that is not UTF-8 and a
// delete with its previous value; a stream cut and resumed with Last-Event-ID loses
// and repeats nothing; a long poll answers the same events; once the history is
// trimmed past a cursor, a watch from it is answered 410 naming a cursor that works.
func TestWatchListThenWatchResumeAndGone(t *testing.T) {
	c := startProcCluster(t, 3, "--watch-history", "20")
	n1, n2 := c.procs[0].httpURL, c.procs[1].httpURL
	watchPut(t, n1, "app/a", "a0")
	watchPut(t, n1, "other/x", "x0")

	resp, err := http.Get(n1 + "/kv?prefix=app/")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items  []struct{ Key string } `json:"items"`
		Cursor string                 `json:"cursor"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list.Items) != 1 || list.Cursor == "" || resp.Header.Get("X-Ringkv-Cursor") != list.Cursor {
		t.Fatalf("list: %+v header %q (%v)", list, resp.Header.Get("X-Ringkv-Cursor"), err)
	}
	// Written after the listing, before the watch starts: the watch must deliver it.
	watchPut(t, n1, "app/a", "a1")

	events, cancel := watchStream(t, n2+"/kv?prefix=app/&watch=true&prev=true&since="+url.QueryEscape(list.Cursor), "")
	var want []string // "key=value" in write order
	want = append(want, "app/a=a1")
	writes := []struct{ key, value string }{
		{"app/b", "b0"}, {"other/x", "x1"}, {"app/a", "a2"}, {"app/\xff\xfe", "raw0"}, {"app/b", "b1"},
		{"app/c", "c0"}, {"app/a", "a3"}, {"app/\xff\xfe", "raw1"}, {"app/c", "c1"},
	}
	for _, w := range writes {
		watchPut(t, n1, w.key, w.value)
		if strings.HasPrefix(w.key, "app/") {
			want = append(want, w.key+"="+w.value)
		}
	}
	deleteRaw(t, n1, "app/b")
	want = append(want, "app/b=<deleted>")

	got := map[string][]string{} // per key, in the order seen
	wantPerKey := map[string][]string{}
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		wantPerKey[k] = append(wantPerKey[k], v)
	}
	var lastID string
	cut := 5 // the stream is cut after this many events, then resumed
	for i := 0; i < len(want); i++ {
		if i == cut {
			cancel()
			for range events { // drain what was read before the cut: not seen by "the client"
			}
			events, cancel = watchStream(t, n2+"/kv?prefix=app/&watch=true&prev=true", lastID)
		}
		e := nextChange(t, events)
		v := "<deleted>"
		if e.Event == "put" {
			v = *e.Data.Value
		} else if e.Data.Prev == nil || e.Data.Prev.Value == nil || *e.Data.Prev.Value != "b1" {
			t.Fatalf("delete of app/b without its previous value: %+v", e.Data)
		}
		got[e.key(t)] = append(got[e.key(t)], v)
		lastID = e.ID
	}
	cancel()
	for k, vs := range wantPerKey {
		if strings.Join(got[k], ",") != strings.Join(vs, ",") {
			t.Errorf("key %q: saw %v, want %v (each write once, in order)", k, got[k], vs)
		}
	}
	if len(got) != len(wantPerKey) {
		t.Errorf("saw keys %v, want %v", got, wantPerKey)
	}

	// The long poll: nothing new after the last event, then the next write.
	pollURL := n2 + "/kv?prefix=app/&since=" + url.QueryEscape(lastID)
	var poll struct {
		Events []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"events"`
		Cursor string `json:"cursor"`
	}
	getJSON := func(u string, v any) int {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		return resp.StatusCode
	}
	if st := getJSON(pollURL+"&wait=300ms", &poll); st != http.StatusOK || len(poll.Events) != 0 || poll.Cursor == "" {
		t.Fatalf("idle long poll: %d %+v", st, poll)
	}
	go watchPut(t, n1, "app/d", "d0")
	if st := getJSON(n2+"/kv?prefix=app/&wait=20s&since="+url.QueryEscape(poll.Cursor), &poll); st != http.StatusOK ||
		len(poll.Events) != 1 || poll.Events[0].Key != "app/d" || poll.Events[0].Value != "d0" {
		t.Fatalf("long poll: %d %+v", st, poll)
	}

	// Trim every group's history past the listing's cursor (20 changes kept each).
	for i := 0; i < 400; i++ {
		watchPut(t, n1, fmt.Sprintf("fill/%d", i), "x")
	}
	var gone struct {
		Status int    `json:"status"`
		Cursor string `json:"cursor"`
	}
	if st := getJSON(n2+"/kv?prefix=app/&watch=true&since="+url.QueryEscape(list.Cursor), &gone); st != http.StatusGone || gone.Cursor == "" {
		t.Fatalf("watch from a trimmed cursor: %d %+v, want 410 with the oldest cursor", st, gone)
	}
	events, cancel = watchStream(t, n2+"/kv?prefix=app/&watch=true&since="+url.QueryEscape(gone.Cursor), "")
	defer cancel()
	watchPut(t, n1, "app/e", "e0")
	if e := nextChange(t, events); e.key(t) != "app/e" {
		t.Fatalf("after resuming at the oldest cursor: %+v", e)
	}
}

// TestWatchEndsWhenItsNodeStopsAndResumesElsewhere: SIGTERM to the node serving a
// watch ends the stream with an error event saying so (the node does not wait for
// the stream to end), and the client resumes on another node from its last event id
// with nothing lost or repeated.
func TestWatchEndsWhenItsNodeStopsAndResumesElsewhere(t *testing.T) {
	c := startProcCluster(t, 3)
	n1, n2 := c.procs[0].httpURL, c.procs[1].httpURL
	events, cancel := watchStream(t, n2+"/kv?prefix=stop/&watch=true", "")
	defer cancel()
	watchPut(t, n1, "stop/a", "1")
	first := nextChange(t, events)
	if first.key(t) != "stop/a" {
		t.Fatalf("first event %+v", first)
	}
	start := time.Now()
	if err := c.procs[1].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var last sseEvent
	for e := range events {
		last = e
	}
	if last.Event != "error" || !strings.Contains(last.Data.Error, "stopping") {
		t.Fatalf("the stream ended with %+v, want an error event saying the node stops", last)
	}
	select {
	case <-c.procs[1].exited:
	case <-time.After(stopBound):
		t.Fatalf("node2 did not exit within %v of SIGTERM with a watch open", stopBound)
	}
	t.Logf("stream ended and node2 exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	watchPut(t, n1, "stop/b", "2")
	resumed, cancel2 := watchStream(t, n1+"/kv?prefix=stop/&watch=true", first.ID)
	defer cancel2()
	if e := nextChange(t, resumed); e.key(t) != "stop/b" {
		t.Fatalf("resumed on node1 from the last event id: %+v, want stop/b (nothing lost, nothing repeated)", e)
	}
}
