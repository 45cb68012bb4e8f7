// Package direct is a placement-aware ringkv client. Any node accepts any /kv request
// and forwards it to the key's group leader, which costs a second HTTP hop; this client
// caches partition -> group -> leader -> address from the admin API and sends each
// request straight to the leader instead. A stale cache only costs that hop again (the
// server forwards, and says so with X-Ringkv-Node), so the cache is refreshed lazily,
// when answers show it is wrong, never on a timer.
package direct

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// nodeHeader names the node that served a /kv request (set by httpapi).
const nodeHeader = "X-Ringkv-Node"

// Stats counts the events that take the client off the direct path.
type Stats struct {
	Refreshes int64 `json:"refreshes"` // routing tables loaded
	Misrouted int64 `json:"misrouted"` // answers from another node than the one asked (forwarded), or 503
	Fallbacks int64 `json:"fallbacks"` // requests sent to a seed: leader unknown or unreachable
}

// Client sends /kv requests to the leader of each key's group. It is safe for
// concurrent use; the per-request path takes no lock and allocates nothing of its own
// beyond what the generated client does.
type Client struct {
	hc       *http.Client
	seeds    []*target
	minGap   time.Duration
	nextSeed atomic.Uint32

	arcs       atomic.Pointer[[]arc] // sorted by start; nil until the first refresh
	refreshing atomic.Bool
	lastStart  atomic.Int64 // unix nanos of the last refresh's start

	mu   sync.Mutex                              // serialises refreshes
	apis map[string]*openapi.ClientWithResponses // by base URL, kept across refreshes

	refreshes, misrouted, fallbacks atomic.Int64
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient shares hc (its keep-alive connections) between every node's client.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithMinRefreshInterval rate-limits refreshes (default 200ms): during an election
// every answer says the cache is stale, and each refresh probes every node.
func WithMinRefreshInterval(d time.Duration) Option { return func(c *Client) { c.minGap = d } }

// New returns a client that learns the cluster's layout from seeds (node HTTP
// addresses, "host:port" or URLs). It makes no request: the table is loaded by the
// first request that needs it, or by Refresh.
func New(seeds []string, opts ...Option) (*Client, error) {
	c := &Client{minGap: 200 * time.Millisecond, apis: map[string]*openapi.ClientWithResponses{}}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// A partitioned leader does not refuse connections: fail the dial quickly and
		// take the detour through a seed rather than wait.
		t.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.MaxIdleConnsPerHost = 256 // many callers share few leaders
		c.hc = &http.Client{Transport: t, Timeout: 30 * time.Second}
	}
	for _, s := range seeds {
		if s = strings.TrimSpace(s); s != "" {
			base := baseURL(s, "http")
			c.seeds = append(c.seeds, &target{base: base, api: c.apiFor(base)})
		}
	}
	if len(c.seeds) == 0 {
		return nil, errors.New("direct: no seed address")
	}
	return c, nil
}

// baseURL accepts "host:port" (as /admin/nodes gives http_addr), which gets scheme
// ("http" or "https"), or a URL, which keeps its own.
func baseURL(addr, scheme string) string {
	if base := strings.TrimSuffix(addr, "/"); strings.Contains(base, "://") {
		return base
	}
	return scheme + "://" + strings.TrimSuffix(addr, "/")
}

// schemeOf is the scheme of a base URL made by baseURL.
func schemeOf(base string) string {
	scheme, _, _ := strings.Cut(base, "://")
	return scheme
}

// apiFor is the generated client of one node; c.mu held (or c not yet shared).
func (c *Client) apiFor(base string) *openapi.ClientWithResponses {
	if api, ok := c.apis[base]; ok {
		return api
	}
	api, _ := openapi.NewClientWithResponses(base, openapi.WithHTTPClient(c.hc)) // errs only on a bad option
	c.apis[base] = api
	return api
}

// Put writes key (PUT /kv/{key}) on its group's leader.
func (c *Client) Put(ctx context.Context, key string, value []byte, params *openapi.PutKeyParams) (*openapi.PutKeyResponse, error) {
	resp, err := c.send(ctx, key, false, func(t *target) (*http.Response, error) {
		return t.api.PutKeyWithBody(ctx, key, params, "application/octet-stream", bytes.NewReader(value))
	})
	if err != nil {
		return nil, err
	}
	return openapi.ParsePutKeyResponse(resp)
}

// Get reads key (GET /kv/{key}) from its group's leader, whatever params.Consistency.
func (c *Client) Get(ctx context.Context, key string, params *openapi.GetKeyParams) (*openapi.GetKeyResponse, error) {
	resp, err := c.send(ctx, key, true, func(t *target) (*http.Response, error) { return t.api.GetKey(ctx, key, params) })
	if err != nil {
		return nil, err
	}
	return openapi.ParseGetKeyResponse(resp)
}

// Delete deletes key (DELETE /kv/{key}) on its group's leader.
func (c *Client) Delete(ctx context.Context, key string, params *openapi.DeleteKeyParams) (*openapi.DeleteKeyResponse, error) {
	resp, err := c.send(ctx, key, false, func(t *target) (*http.Response, error) { return t.api.DeleteKey(ctx, key, params) })
	if err != nil {
		return nil, err
	}
	return openapi.ParseDeleteKeyResponse(resp)
}

// Send is the routing of Put, Get and Delete for requests the caller builds itself:
// build makes the request for base (the chosen node's URL, no trailing slash), Send
// sends it with the shared client and returns the answer undecoded (close its body).
// It exists for a load generator, whose direct and forwarded runs must differ in
// routing alone: the generated request builders cost some 20 allocations per request.
// idempotent says whether a request that may have reached the node can be resent.
func (c *Client) Send(ctx context.Context, key string, idempotent bool, build func(base string) (*http.Request, error)) (*http.Response, error) {
	return c.send(ctx, key, idempotent, func(t *target) (*http.Response, error) {
		req, err := build(t.base)
		if err != nil {
			return nil, err
		}
		return c.hc.Do(req)
	})
}

// send runs call on key's leader. When the leader cannot be reached it takes the
// detour through the seeds, which forward; a write is only resent when the first try
// failed to connect, so it certainly did nothing.
func (c *Client) send(ctx context.Context, key string, idempotent bool, call func(*target) (*http.Response, error)) (*http.Response, error) {
	t := c.pick(HashKey(key))
	resp, err := call(t)
	for i := 0; err != nil && i < len(c.seeds) && ctx.Err() == nil && (idempotent || dialFailed(err)); i++ {
		t.down.Store(true)
		c.refreshSoon()
		t = c.seed()
		resp, err = call(t)
	}
	if err != nil {
		return nil, err
	}
	// Answers that never reached a /kv handler (a 400 on a bad key) name no node.
	if n := resp.Header.Get(nodeHeader); resp.StatusCode == http.StatusServiceUnavailable || (t.id != "" && n != "" && n != t.id) {
		c.misrouted.Add(1)
		c.refreshSoon()
	}
	return resp, nil
}

func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (c *Client) seed() *target {
	c.fallbacks.Add(1)
	return c.seeds[int(c.nextSeed.Add(1))%len(c.seeds)]
}

// refreshSoon starts a background refresh unless one is running or one started less
// than the minimum interval ago; the request that asked does not wait for it.
func (c *Client) refreshSoon() {
	if time.Now().UnixNano()-c.lastStart.Load() < int64(c.minGap) || !c.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Refresh(ctx)
	}()
}

// Stats reports how often the client left the direct path.
func (c *Client) Stats() Stats {
	return Stats{Refreshes: c.refreshes.Load(), Misrouted: c.misrouted.Load(), Fallbacks: c.fallbacks.Load()}
}
