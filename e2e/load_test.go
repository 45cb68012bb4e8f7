package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingLoad is the client load of the availability tests (issue #13): clients that
// write and read keys (and, with lists, list them) through the nodes of a cluster, and
// count every answer that is not 2xx. A healthy cluster answers every request, so the
// tests fail on any such answer, whatever its status.
type countingLoad struct {
	ok, bad atomic.Int64
	// overloadOK: a 503 with Retry-After (the node refused, nothing done, as overload
	// asks it to) is counted in overloaded, not as a failure.
	overloadOK bool
	overloaded atomic.Int64
	mu         sync.Mutex
	failures   []string
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// loadOptions shape a countingLoad.
type loadOptions struct {
	prefix  string // of every key the load writes
	clients int
	lists   bool // one request in 10 is a listing of the load's keys
	// avoid, when set, returns the index of a node the clients must not send to (one
	// being stopped or decommissioned, as a load balancer that drains it would), or -1.
	avoid func() int
}

// startLoad starts the load; stop ends it.
func startLoad(c *cluster, o loadOptions) *countingLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &countingLoad{cancel: cancel}
	client := &http.Client{Timeout: 15 * time.Second}
	for w := range o.clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				node := (w + i) % len(c.procs)
				if o.avoid != nil && node == o.avoid() {
					node = (node + 1) % len(c.procs)
				}
				key := fmt.Sprintf("%s-%d-%d", o.prefix, w, i%100)
				calls := [][2]string{{http.MethodPut, "/kv/" + key}, {http.MethodGet, "/kv/" + key}}
				if o.lists && i%10 == 0 {
					calls = append(calls, [2]string{http.MethodGet, "/kv?limit=100&prefix=" + o.prefix + "-"})
				}
				for _, call := range calls {
					req, _ := http.NewRequestWithContext(ctx, call[0], c.procs[node].httpURL+call[1], strings.NewReader(fmt.Sprint(i)))
					resp, err := client.Do(req)
					if ctx.Err() != nil {
						return // the load was stopped: this request's outcome is not counted
					}
					l.count(fmt.Sprintf("%s node%d %s", call[0], node+1, call[1]), resp, err)
				}
			}
		}()
	}
	return l
}

// count records one answer.
func (l *countingLoad) count(what string, resp *http.Response, err error) {
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode < 300 {
			_, _ = io.Copy(io.Discard, resp.Body)
			l.ok.Add(1)
			return
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		if l.overloadOK && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			l.overloaded.Add(1)
			return
		}
		err = fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	l.bad.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, fmt.Sprintf("%s: %v", what, err))
	}
}

// answered returns a condition for eventually: n more answers than when it was made.
func (l *countingLoad) answered(n int64) func() error {
	from := l.ok.Load()
	return func() error {
		if got := l.ok.Load() - from; got < n {
			return fmt.Errorf("%d of %d more answers", got, n)
		}
		return nil
	}
}

// stop ends the load and fails t if any answer was not 2xx, or none was given.
func (l *countingLoad) stop(t *testing.T, scenario string) {
	t.Helper()
	l.cancel()
	l.wg.Wait()
	t.Logf("%s: %d requests answered, %d refused as overload (503, Retry-After), %d failed otherwise",
		scenario, l.ok.Load(), l.overloaded.Load(), l.bad.Load())
	if l.bad.Load() > 0 {
		t.Errorf("%s: %d requests were not answered 2xx, e.g.:\n%s", scenario, l.bad.Load(), strings.Join(l.failures, "\n"))
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no request was answered: the load did not run", scenario)
	}
}
