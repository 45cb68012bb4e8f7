package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
	"github.com/ringkv/ringkv/openapi/direct"
	"github.com/ringkv/ringkv/placement"
)

// The placement-aware client hashes keys with its own copy of placement.HashKey (the
// openapi packages may import nothing of the project); the copies must never differ.
func TestDirectClientHashesLikePlacement(t *testing.T) {
	named := []string{
		"", "a", "a/b/c", "user:{42}:name", "user:{42}:mail", "{42}", "{}", "{}x{y}", "{",
		"}", "}{", "x{", "{unclosed", "{{a}}", "{a}{b}", "a{b}c{d}e", "{ }", "é{ü}", "\xff{\x00}\xfe",
		strings.Repeat("k", 4096), "{" + strings.Repeat("t", 4094) + "}",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("{}ab/:\x00\xff")
	for range 20000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		named = append(named, string(b))
	}
	for _, k := range named {
		if got, want := direct.HashKey(k), placement.HashKey([]byte(k)); got != want {
			t.Fatalf("key %q: direct hashes to %016x, placement to %016x", k, got, want)
		}
	}
}

// directAnswerErr says why a generated-client call did not answer as expected.
func directAnswerErr(what string, r interface{ Status() string }, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %s", what, r.Status())
}

// directExchange is one /kv exchange as the client's transport saw it.
type directExchange struct {
	host, node, group string
	status            int
}

// directRecorder notes, for every /kv request, the node it was sent to and the
// node that says it served it, and the transport errors (no answer at all).
type directRecorder struct {
	mu     sync.Mutex
	seen   []directExchange
	failed []error
}

func (rt *directRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && strings.HasPrefix(req.URL.Path, "/kv/") {
		rt.mu.Lock()
		rt.seen = append(rt.seen, directExchange{req.URL.Host, resp.Header.Get("X-Ringkv-Node"), resp.Header.Get("X-Ringkv-Group"), resp.StatusCode})
		rt.mu.Unlock()
	}
	if err != nil {
		rt.mu.Lock()
		rt.failed = append(rt.failed, err)
		rt.mu.Unlock()
	}
	return resp, err
}

// take answers the exchanges and transport errors since the last take.
func (rt *directRecorder) take() ([]directExchange, []error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out, failed := rt.seen, rt.failed
	rt.seen, rt.failed = nil, nil
	return out, failed
}

// TestDirectClientGoesStraightToLeaders: on a 3-node cluster, every request of the
// placement-aware client is sent to its group's leader and served there, unforwarded.
func TestDirectClientGoesStraightToLeaders(t *testing.T) {
	c := startCluster(t, 3)
	hostOf := map[string]string{}
	for _, tn := range c.nodes {
		hostOf[tn.cfg.ID] = tn.cfg.HTTPAddr
	}
	leaders := func() map[string]string {
		var gs groupsJSON
		if status := c.getJSON(0, "/admin/groups", &gs); status != http.StatusOK {
			t.Fatalf("GET /admin/groups: %d", status)
		}
		out := map[string]string{}
		for _, g := range gs.Groups {
			out[fmt.Sprint(g.ID)] = g.Leader
		}
		return out
	}
	rec := &directRecorder{}
	dc, err := direct.New([]string{c.addr(1)}, direct.WithHTTPClient(&http.Client{Transport: rec, Timeout: 15 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stale := openapi.GetKeyParamsConsistency("stale")
	// The placement service may still be balancing leaders: a round counts only if the
	// leaders were the same before and after it.
	eventually(t, 60*time.Second, "a round of requests while leaders hold still", func() error {
		if err := dc.Refresh(ctx); err != nil {
			return err
		}
		before, stats := leaders(), dc.Stats()
		rec.take()
		for i := range 40 {
			key := fmt.Sprintf("direct/%d", i)
			if i%3 == 0 {
				key = fmt.Sprintf("user:{%d}:name", i)
			}
			put, err := dc.Put(ctx, key, []byte("v"), nil)
			if err != nil || (put.JSON200 == nil && put.JSON201 == nil) {
				return directAnswerErr("put "+key, put, err)
			}
			// A stale read too: it goes to the leader, which has applied the write.
			for _, p := range []*openapi.GetKeyParams{nil, {Consistency: &stale}} {
				if get, err := dc.Get(ctx, key, p); err != nil || get.JSON200 == nil {
					return directAnswerErr("get "+key, get, err)
				}
			}
			if del, err := dc.Delete(ctx, key, nil); err != nil || del.JSON200 == nil {
				return directAnswerErr("delete "+key, del, err)
			}
		}
		seen, failed := rec.take()
		// A connection that failed under the machine's load sends the client the
		// seeds' way (a fallback, by design): that round says nothing about routing.
		if len(failed) > 0 {
			t.Logf("a round retried: %d transport errors, e.g. %v", len(failed), failed[0]) // visible even when a later round passes
			return fmt.Errorf("%d requests got no answer (%v): the client fell back to the seeds", len(failed), failed[0])
		}
		if after := leaders(); fmt.Sprint(after) != fmt.Sprint(before) {
			return fmt.Errorf("leaders moved during the round: %v -> %v", before, after)
		}
		if len(seen) != 160 {
			t.Fatalf("%d requests recorded, want 160", len(seen))
		}
		for _, r := range seen {
			if leader := before[r.group]; r.node != leader || r.host != hostOf[leader] {
				t.Fatalf("a request for group %s (led by %s at %s) was sent to %s and served by %s",
					r.group, leader, hostOf[leader], r.host, r.node)
			}
		}
		if s := dc.Stats(); s.Misrouted != stats.Misrouted || s.Fallbacks != stats.Fallbacks {
			t.Fatalf("stats %+v -> %+v: no request should have left the direct path", stats, s)
		}
		return nil
	})
}
