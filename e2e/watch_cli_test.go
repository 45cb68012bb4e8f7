package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestWatchCLIFollowsAcrossAKilledNode: `ringkv watch app/ -o json --addr n2,n1`
// prints each change under the prefix once, in order per key; when the node serving
// it is killed (SIGKILL: the connection breaks with no last event) it resumes on n1
// from the last event id, and the writes made meanwhile arrive with nothing lost or
// repeated. The text form prints `put key=value`.
func TestWatchCLIFollowsAcrossAKilledNode(t *testing.T) {
	c := startProcCluster(t, 3)
	n1, n2 := c.procs[0].httpURL, c.procs[1].httpURL
	cmd := exec.Command(c.bin, "watch", "app/", "-o", "json", "--addr", n2+","+n1)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	type event struct {
		Type, Key, Value, Cursor string
	}
	next := func() event {
		t.Helper()
	again:
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("ringkv watch exited; stderr: %s", stderr.String())
			}
			var e event
			if err := json.Unmarshal([]byte(l), &e); err != nil || e.Cursor == "" {
				t.Fatalf("output line %q: %v", l, err)
			}
			if e.Key == "app/ready" { // a start probe's write seen late
				goto again
			}
			return e
		case <-time.After(30 * time.Second):
			t.Fatalf("no output within 30s; stderr: %s", stderr.String())
		}
		return event{}
	}
	// The watch starts at "now": wait until it sees a first write before counting.
	eventually(t, 20*time.Second, "the CLI watch started", func() error {
		watchPut(t, n1, "app/ready", "1")
		select {
		case l := <-lines:
			if strings.Contains(l, `"app/ready"`) {
				return nil
			}
			return fmt.Errorf("first line %q", l)
		case <-time.After(time.Second):
			return fmt.Errorf("nothing printed yet")
		}
	})
	var want []string
	put := func(k, v string) {
		watchPut(t, n1, k, v)
		want = append(want, k+"="+v)
	}
	for i := 0; i < 5; i++ {
		put(fmt.Sprintf("app/k%d", i%2), fmt.Sprint(i))
	}
	var got []string
	for range want {
		e := next()
		got = append(got, e.Key+"="+e.Value)
	}
	c.kill(1) // the serving node: no last event, the connection breaks
	for i := 5; i < 10; i++ {
		put(fmt.Sprintf("app/k%d", i%2), fmt.Sprint(i))
	}
	watchPut(t, n1, "other/x", "not watched")
	for len(got) < len(want) {
		e := next()
		got = append(got, e.Key+"="+e.Value)
	}
	// Ordered per key (app/k0 and app/k1 may be in different groups: no order
	// between them).
	perKey := func(kvs []string) map[string]string {
		m := map[string]string{}
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			m[k] += v + ","
		}
		return m
	}
	if g, w := perKey(got), perKey(want); fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("the CLI printed %v, want per key %v (each write once, in order)", got, w)
	}
	select {
	case l := <-lines:
		t.Fatalf("an extra line %q (a repeat, or a key outside the prefix)", l)
	case <-time.After(500 * time.Millisecond):
	}
	if !strings.Contains(stderr.String(), "reconnecting") {
		t.Errorf("stderr does not say the watch reconnected: %q", stderr.String())
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("ringkv watch on SIGINT: %v, want exit 0", err)
	}

	// Text output: one `put key=value` line.
	text := exec.Command(c.bin, "watch", "app/", "--addr", n1)
	out, _ := text.StdoutPipe()
	if err := text.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = text.Process.Kill(); _ = text.Wait() }()
	textLines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			textLines <- sc.Text()
		}
	}()
	eventually(t, 20*time.Second, "a text line", func() error {
		watchPut(t, n1, "app/text", "hello world")
		select {
		case l := <-textLines:
			if l != "put app/text=hello world" {
				t.Fatalf("text line %q, want put app/text=hello world", l)
			}
			return nil
		case <-time.After(time.Second):
			return fmt.Errorf("nothing printed yet")
		}
	})
}

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
