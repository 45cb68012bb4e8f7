package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringkv/ringkv/openapi"
	"github.com/ringkv/ringkv/openapi/direct"
)

// benchConfig is what `ringkv bench` is asked to do.
type benchConfig struct {
	addrs       []string
	conn        connFlags
	concurrency int
	keys        int
	valueSize   int
	reads       float64
	duration    time.Duration
	warmup      time.Duration
	consistency string
	output      string
	direct      bool // placement-aware client: straight to each key's group leader
	prefill     bool // write every key before a run with reads
}

// benchResult is what it measured (the -o json form).
type benchResult struct {
	Ops        int64            `json:"ops"`
	Seconds    float64          `json:"seconds"`
	Throughput float64          `json:"ops_per_sec"`
	Reads      int64            `json:"reads"`
	Writes     int64            `json:"writes"`
	Errors     map[string]int64 `json:"errors"`
	// ErrorSamples: the first answer (body, or transport error under "0") of each error
	// status met, warm-up included.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	P50ms        float64           `json:"p50_ms"`
	P90ms        float64           `json:"p90_ms"`
	P99ms        float64           `json:"p99_ms"`
	P999ms       float64           `json:"p999_ms"`
	Config       map[string]any    `json:"config"`
	// Direct says whether requests went straight to group leaders (--direct) rather
	// than through the --addr nodes, which forward; Routing is then how often the
	// direct client had to step off that path.
	Direct  bool          `json:"direct"`
	Routing *direct.Stats `json:"routing,omitempty"`
}

func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	var addr string
	fs := flag.NewFlagSet("ringkv bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "node HTTP address(es) (host:port or URL), comma-separated; clients spread over them")
	cfg.conn.register(fs)
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "concurrent clients (closed loop: each waits for its answer)")
	fs.IntVar(&cfg.keys, "keys", 100000, "distinct keys")
	fs.IntVar(&cfg.valueSize, "value-size", 100, "value size in bytes")
	fs.Float64Var(&cfg.reads, "reads", 0, "fraction of operations that are reads (0..1)")
	fs.BoolVar(&cfg.prefill, "prefill", true, "with --reads, write every key once first (false: the keys are there from an earlier run)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured warm-up before the measurement")
	fs.StringVar(&cfg.consistency, "consistency", "linearizable", "read consistency: linearizable or stale")
	fs.StringVar(&cfg.output, "o", "text", "output: text or json")
	fs.BoolVar(&cfg.direct, "direct", false, "send each request straight to its group's leader (placement-aware client; --addr nodes are its seeds) instead of through the --addr nodes, which forward")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return exitCode(2)
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if err := cfg.conn.checkAddr(a); err != nil {
				fmt.Fprintln(stderr, "ringkv bench:", err)
				return exitCode(2)
			}
			cfg.addrs = append(cfg.addrs, cfg.conn.base(a))
		}
	}
	switch {
	case len(cfg.addrs) == 0, cfg.concurrency < 1, cfg.keys < 1, cfg.valueSize < 0, cfg.reads < 0, cfg.reads > 1,
		cfg.duration <= 0, cfg.consistency != "linearizable" && cfg.consistency != "stale",
		cfg.output != "text" && cfg.output != "json":
		fmt.Fprintln(stderr, "ringkv bench: invalid flags (see ringkv bench -h)")
		return exitCode(2)
	}
	res, err := runBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if res.Routing != nil {
		fmt.Fprintf(stdout, "routing: direct to group leaders (%d table loads, %d answers misrouted, %d requests via seeds)\n",
			res.Routing.Refreshes, res.Routing.Misrouted, res.Routing.Fallbacks)
	} else {
		fmt.Fprintln(stdout, "routing: through the --addr nodes (they forward to group leaders)")
	}
	fmt.Fprintf(stdout, "%d ops in %.1fs: %.0f ops/s (%d reads, %d writes)\n", res.Ops, res.Seconds, res.Throughput, res.Reads, res.Writes)
	fmt.Fprintf(stdout, "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p999 %.2f\n", res.P50ms, res.P90ms, res.P99ms, res.P999ms)
	if len(res.Errors) > 0 {
		fmt.Fprintf(stdout, "errors: %v\n", res.Errors)
		for _, status := range slices.Sorted(maps.Keys(res.ErrorSamples)) {
			fmt.Fprintf(stdout, "  first %s: %s\n", status, strings.TrimSpace(res.ErrorSamples[status]))
		}
	}
	return nil
}

// benchKeys are the bench's key names, made once rather than formatted on every
// request of the closed loop, which shares the CPU with the nodes it measures.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench/%08d", i)
	}
	return keys
}

type benchWorker struct {
	lat           []time.Duration
	reads, writes int64
	errs          map[string]int64
}

func runBench(ctx context.Context, cfg benchConfig, progress io.Writer) (benchResult, error) {
	tr, err := cfg.conn.transport()
	if err != nil {
		return benchResult{}, err
	}
	// Every connection is kept for reuse: a worker has one request in flight, so no
	// more than cfg.concurrency connections to a node are ever busy at once. No cap
	// on the total (MaxIdleConns), because with --direct each worker talks to every
	// leader in turn: a cap below nodes x workers closed a connection on most switches
	// of node, and a new one (with TLS, a new handshake) was made for about one
	// request in three at 1 client.
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = cfg.concurrency
	client := &http.Client{Transport: openapi.BearerTransport(tr, cfg.conn.token), Timeout: 30 * time.Second}
	samples := &errorSamples{}
	send, dc, err := newBenchSender(ctx, cfg, client, samples)
	if err != nil {
		return benchResult{}, err
	}
	value := bytes.Repeat([]byte("v"), cfg.valueSize)
	keys := benchKeys(cfg.keys)
	if cfg.reads > 0 && cfg.prefill {
		if err := prefill(ctx, send, cfg, keys, value, progress); err != nil {
			return benchResult{}, err
		}
	}
	var done atomic.Int64
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	workers := make([]*benchWorker, cfg.concurrency)
	var wg sync.WaitGroup
	for w := range workers {
		bw := &benchWorker{errs: map[string]int64{}}
		workers[w] = bw
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				key := keys[rng.IntN(len(keys))]
				read := rng.Float64() < cfg.reads
				status := send(ctx, w, key, read, value)
				lat := time.Since(t0)
				done.Add(1)
				if t0.Before(measureFrom) {
					continue
				}
				ok := status == http.StatusOK || status == http.StatusCreated || (read && status == http.StatusNotFound)
				if !ok {
					bw.errs[fmt.Sprint(status)]++
					continue
				}
				bw.lat = append(bw.lat, lat)
				if read {
					bw.reads++
				} else {
					bw.writes++
				}
			}
		}()
	}
	stopProgress := showProgress(ctx, &done, progress)
	wg.Wait()
	stopProgress()
	res := summarize(cfg, workers, time.Since(measureFrom))
	if len(res.Errors) > 0 {
		samples.mu.Lock()
		res.ErrorSamples = samples.first
		samples.mu.Unlock()
	}
	if dc != nil {
		st := dc.Stats()
		res.Routing = &st
	}
	return res, ctx.Err()
}

// benchSend sends one request for key from worker w, a read or a write of value, and
// returns the status (0 when there was no answer).
type benchSend func(ctx context.Context, w int, key string, read bool, value []byte) int

// newBenchSender returns how requests are sent: to the --addr nodes, spread by worker
// (they forward to the leaders), or with --direct straight to each key's leader. Both
// build requests the same way, so the runs differ in routing alone.
func newBenchSender(ctx context.Context, cfg benchConfig, client *http.Client, samples *errorSamples) (benchSend, *direct.Client, error) {
	query := "?consistency=" + cfg.consistency
	request := func(ctx context.Context, base, key string, read bool, value []byte) (*http.Request, error) {
		if read {
			return http.NewRequestWithContext(ctx, http.MethodGet, base+"/kv/"+key+query, nil)
		}
		return http.NewRequestWithContext(ctx, http.MethodPut, base+"/kv/"+key, bytes.NewReader(value))
	}
	if !cfg.direct {
		return func(ctx context.Context, w int, key string, read bool, value []byte) int {
			req, _ := request(ctx, cfg.addrs[w%len(cfg.addrs)], key, read, value)
			resp, err := client.Do(req)
			return samples.drain(resp, err)
		}, nil, nil
	}
	dc, err := direct.New(cfg.addrs, direct.WithHTTPClient(client))
	if err != nil {
		return nil, nil, err
	}
	if err := dc.Refresh(ctx); err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, w int, key string, read bool, value []byte) int {
		resp, err := dc.Send(ctx, key, read, func(base string) (*http.Request, error) {
			return request(ctx, base, key, read, value)
		})
		return samples.drain(resp, err)
	}, dc, nil
}

// errorSamples keeps the first answer of each error status a bench met (a transport
// error under "0"), so a run's 503s can be told apart: overload, no leader, an
// outcome unknown.
type errorSamples struct {
	mu    sync.Mutex
	first map[string]string
}

// drain returns the status of an answer (0 for none), keeping a sample of an error's
// body, and reads and closes the body so its connection is reused.
func (s *errorSamples) drain(resp *http.Response, err error) int {
	if err != nil {
		s.keep("0", err.Error())
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		s.keep(fmt.Sprint(resp.StatusCode), string(b))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (s *errorSamples) keep(status, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		s.first = map[string]string{}
	}
	if _, ok := s.first[status]; !ok {
		s.first[status] = what
	}
}

// prefill writes every key once so reads find values.
func prefill(ctx context.Context, send benchSend, cfg benchConfig, keys []string, value []byte, progress io.Writer) error {
	fmt.Fprintf(progress, "pre-filling %d keys...\n", cfg.keys)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < cfg.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				if s := send(ctx, w, keys[i], false, value); s != http.StatusOK && s != http.StatusCreated {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(progress, "pre-fill: %d writes failed; their reads will answer 404\n", f)
	}
	return ctx.Err()
}

func showProgress(ctx context.Context, done *atomic.Int64, w io.Writer) func() {
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := int64(0)
		for {
			select {
			case <-stop:
				fmt.Fprintln(w)
				return
			case <-ctx.Done():
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(w, "\r%8d ops/s  %10d ops", n-last, n)
				last = n
			}
		}
	}()
	return func() { close(stop); <-finished }
}

func summarize(cfg benchConfig, workers []*benchWorker, elapsed time.Duration) benchResult {
	res := benchResult{Errors: map[string]int64{}, Seconds: elapsed.Seconds(), Config: map[string]any{
		"addrs": cfg.addrs, "concurrency": cfg.concurrency, "keys": cfg.keys, "value_size": cfg.valueSize,
		"reads": cfg.reads, "duration": cfg.duration.String(), "consistency": cfg.consistency, "direct": cfg.direct,
	}, Direct: cfg.direct}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		res.Reads += w.reads
		res.Writes += w.writes
		for k, v := range w.errs {
			res.Errors[k] += v
		}
	}
	res.Ops = int64(len(all))
	if elapsed > 0 {
		res.Throughput = float64(res.Ops) / elapsed.Seconds()
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := sort.Search(len(all), func(i int) bool { return float64(i+1)/float64(len(all)) >= p })
		return float64(all[min(i, len(all)-1)].Microseconds()) / 1000
	}
	res.P50ms, res.P90ms, res.P99ms, res.P999ms = pct(0.50), pct(0.90), pct(0.99), pct(0.999)
	return res
}
