package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWatch is one group's change history in memory: change i is at Pos{i, 0}.
type fakeWatch struct {
	mu      sync.Mutex
	changes []Change
	moved   chan struct{} // closed (and replaced) by each add
}

func newFakeWatch() *fakeWatch { return &fakeWatch{moved: make(chan struct{})} }

func (f *fakeWatch) add(key string, value []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := uint64(len(f.changes) + 1)
	f.changes = append(f.changes, Change{Group: 1, At: Pos{Index: i}, Key: []byte(key), Value: Value{Value: value, ModIndex: i}})
	close(f.moved)
	f.moved = make(chan struct{})
}

func (f *fakeWatch) Changes(ctx context.Context, group uint32, after Pos, wait bool) (ChangePage, error) {
	for {
		f.mu.Lock()
		var page ChangePage
		page.Through = after
		for _, c := range f.changes {
			if after.Less(c.At) && len(page.Changes) < 16 {
				page.Changes = append(page.Changes, c)
				page.Through = AtIndex(c.At.Index)
			}
		}
		moved := f.moved
		f.mu.Unlock()
		if len(page.Changes) > 0 || !wait {
			return page, nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ChangePage{Through: after}, nil
		}
	}
}

func (f *fakeWatch) Position(ctx context.Context, group uint32) (Pos, Pos, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return AtIndex(uint64(len(f.changes))), Pos{}, nil
}

func newWatchServer(t *testing.T, slowAfter time.Duration) (*Server, *fakeWatch, string) {
	t.Helper()
	fw := newFakeWatch()
	s := New(Config{AllowedHosts: testHosts, KV: &memKV{data: map[string]Value{}}, Watch: fw, SlowConsumerAfter: slowAfter,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, fw, srv.URL
}

// waitFor polls cond (a condition of the server's counters) for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWatchStreamKeepaliveProgressAndCounts: an idle stream gets keepalive comments;
// a change outside the prefix moves the cursor, said by a progress event with a new
// id; a matching change is a put event; the node counts the open stream and the
// event sent, and forgets the stream when the client leaves.
func TestWatchStreamKeepaliveProgressAndCounts(t *testing.T) {
	s, fw, base := newWatchServer(t, 0)
	s.keepAlive, s.progress = 50*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/kv?prefix=app/&watch=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %v %v", resp, err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// until reads lines until one has the prefix, and returns the id seen before it.
	until := func(prefix string) (lastID string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the stream ended before %q", prefix)
				}
				if strings.HasPrefix(l, "id: ") {
					lastID = l[4:]
				}
				if strings.HasPrefix(l, prefix) {
					return lastID
				}
			case <-timeout:
				t.Fatalf("no %q line within 10s", prefix)
			}
		}
	}
	start := until("event: progress")
	if c := s.WatchCounts(); c.Streams != 1 {
		t.Fatalf("counts with a stream open: %+v", c)
	}
	until(": keepalive")
	fw.add("other/x", []byte("1")) // not watched: the cursor moves, no change to send
	if moved := until("event: progress"); moved == start {
		t.Fatalf("progress after a change outside the prefix kept id %q", moved)
	}
	fw.add("app/a", []byte("1"))
	until("event: put")
	waitFor(t, "one event counted as sent", func() bool { return s.WatchCounts().EventsSent == 1 })
	cancel()
	waitFor(t, "the stream forgotten", func() bool { return s.WatchCounts().Streams == 0 })
}

// TestWatchLongPollCounted: a long poll is counted while it waits, and its events as
// sent once answered.
func TestWatchLongPollCounted(t *testing.T) {
	s, fw, base := newWatchServer(t, 0)
	fw.add("app/a", []byte("0"))
	type answer struct {
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Get(base + "/kv?prefix=app/&wait=10s&since=" + Cursor{1: AtIndex(1)}.Encode())
		if err != nil {
			done <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- answer{string(b), err}
	}()
	waitFor(t, "the long poll counted", func() bool { return s.WatchCounts().Polls == 1 })
	fw.add("app/b", []byte("1"))
	a := <-done
	if a.err != nil || !strings.Contains(a.body, `"key":"app/b"`) {
		t.Fatalf("long poll: %q %v", a.body, a.err)
	}
	if c := s.WatchCounts(); c.Polls != 0 || c.EventsSent != 1 {
		t.Fatalf("counts after the poll: %+v", c)
	}
}

// TestWatchCutsOffASlowConsumer: a client that stops reading while changes keep
// coming is cut off after SlowConsumerAfter (counted), instead of holding the
// stream's buffers until the write timeout; the connection then ends.
func TestWatchCutsOffASlowConsumer(t *testing.T) {
	s, fw, base := newWatchServer(t, 200*time.Millisecond)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /kv?prefix=app/&watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	waitFor(t, "the stream open", func() bool { return s.WatchCounts().Streams == 1 })
	value := []byte(strings.Repeat("v", 64<<10))
	start := time.Now()
	for i := 0; s.WatchCounts().SlowConsumers == 0; i++ {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no cut-off within 10s of a client that does not read: %+v", s.WatchCounts())
		}
		if i < 2000 { // far more than the socket buffers hold
			fw.add(fmt.Sprintf("app/%d", i), value)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(t, "the cut-off stream forgotten", func() bool { return s.WatchCounts().Streams == 0 })
	if c := s.WatchCounts(); c.SlowConsumers != 1 {
		t.Fatalf("counts: %+v, want one slow consumer", c)
	}
	// The client reading again finds the stream ended (it resumes from its last id).
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("reading the cut-off stream: %v, want its end", err)
	}
}
