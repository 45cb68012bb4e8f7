package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchConfig is what `ringkv bench` is asked to do.
type benchConfig struct {
	addrs       []string
	concurrency int
	keys        int
	valueSize   int
	reads       float64
	duration    time.Duration
	warmup      time.Duration
	consistency string
	output      string
}

// benchResult is what it measured (the -o json form).
type benchResult struct {
	Ops        int64            `json:"ops"`
	Seconds    float64          `json:"seconds"`
	Throughput float64          `json:"ops_per_sec"`
	Reads      int64            `json:"reads"`
	Writes     int64            `json:"writes"`
	Errors     map[string]int64 `json:"errors"`
	P50ms      float64          `json:"p50_ms"`
	P90ms      float64          `json:"p90_ms"`
	P99ms      float64          `json:"p99_ms"`
	P999ms     float64          `json:"p999_ms"`
	Config     map[string]any   `json:"config"`
}

func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	var addr string
	fs := flag.NewFlagSet("ringkv bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addr, "addr", "http://127.0.0.1:8080", "node HTTP address(es), comma-separated; clients spread over them")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "concurrent clients (closed loop: each waits for its answer)")
	fs.IntVar(&cfg.keys, "keys", 100000, "distinct keys")
	fs.IntVar(&cfg.valueSize, "value-size", 100, "value size in bytes")
	fs.Float64Var(&cfg.reads, "reads", 0, "fraction of operations that are reads (0..1)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured warm-up before the measurement")
	fs.StringVar(&cfg.consistency, "consistency", "linearizable", "read consistency: linearizable or stale")
	fs.StringVar(&cfg.output, "o", "text", "output: text or json")
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
		if a = strings.TrimSuffix(strings.TrimSpace(a), "/"); a != "" {
			if !strings.Contains(a, "://") {
				a = "http://" + a
			}
			cfg.addrs = append(cfg.addrs, a)
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
	fmt.Fprintf(stdout, "%d ops in %.1fs: %.0f ops/s (%d reads, %d writes)\n", res.Ops, res.Seconds, res.Throughput, res.Reads, res.Writes)
	fmt.Fprintf(stdout, "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p999 %.2f\n", res.P50ms, res.P90ms, res.P99ms, res.P999ms)
	if len(res.Errors) > 0 {
		fmt.Fprintf(stdout, "errors: %v\n", res.Errors)
	}
	return nil
}

func benchKey(i int) string { return fmt.Sprintf("bench/%08d", i) }

type benchWorker struct {
	lat           []time.Duration
	reads, writes int64
	errs          map[string]int64
}

func runBench(ctx context.Context, cfg benchConfig, progress io.Writer) (benchResult, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = cfg.concurrency * 2
	tr.MaxIdleConnsPerHost = cfg.concurrency * 2
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	value := bytes.Repeat([]byte("v"), cfg.valueSize)
	if cfg.reads > 0 {
		if err := prefill(ctx, client, cfg, value, progress); err != nil {
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
			base := cfg.addrs[w%len(cfg.addrs)]
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				key := benchKey(rng.IntN(cfg.keys))
				read := rng.Float64() < cfg.reads
				var req *http.Request
				if read {
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/kv/"+key+"?consistency="+cfg.consistency, nil)
				} else {
					req, _ = http.NewRequestWithContext(ctx, http.MethodPut, base+"/kv/"+key, bytes.NewReader(value))
				}
				status := doBench(client, req)
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
	return summarize(cfg, workers, time.Since(measureFrom)), ctx.Err()
}

// doBench sends one request and returns its status (0 when there was no answer).
func doBench(client *http.Client, req *http.Request) int {
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// prefill writes every key once so reads find values.
func prefill(ctx context.Context, client *http.Client, cfg benchConfig, value []byte, progress io.Writer) error {
	fmt.Fprintf(progress, "pre-filling %d keys...\n", cfg.keys)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < cfg.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := cfg.addrs[w%len(cfg.addrs)]
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.keys {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/kv/"+benchKey(i), bytes.NewReader(value))
				if s := doBench(client, req); s != http.StatusOK && s != http.StatusCreated {
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
		"reads": cfg.reads, "duration": cfg.duration.String(), "consistency": cfg.consistency,
	}}
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
