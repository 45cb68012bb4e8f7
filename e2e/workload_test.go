package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ringkv/ringkv/openapi"
)

// workload runs clients against a cluster and records a porcupine history.
type workload struct {
	urls     func() []string // HTTP URLs of the nodes, index-stable; "" for a node that is down
	keys     []string
	clients  int
	stale    bool // read with ?consistency=stale (the negative control)
	pinEvery int  // client i is pinned to node i%n when i%pinEvery == 0 (0: none pinned)
	http     *http.Client
	start    time.Time
	nextID   atomic.Int64 // porcupine client ids; a client takes a new one after an unknown outcome
	seq      atomic.Int64 // unique write values

	mu      sync.Mutex
	history []porcupine.Operation
	counts  map[string]int
}

func newWorkload(t testing.TB, urls func() []string, keys []string, clients int) *workload {
	return &workload{
		urls: urls, keys: keys, clients: clients, pinEvery: 2,
		http:   validatingHTTPClient(t, 3*time.Second),
		start:  time.Now(),
		counts: map[string]int{},
	}
}

func (w *workload) now() int64 { return int64(time.Since(w.start)) }

func (w *workload) record(id int, in kvInput, out kvOutput, call, ret int64, what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.history = append(w.history, porcupine.Operation{ClientId: id, Input: in, Output: out, Call: call, Return: ret})
	w.counts[what]++
}

func (w *workload) count(what string) {
	w.mu.Lock()
	w.counts[what]++
	w.mu.Unlock()
}

// run drives the clients until ctx ends.
func (w *workload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for c := 0; c < w.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(ctx, c)
		}()
	}
	wg.Wait()
}

type seen struct{ value, etag string }

func (w *workload) client(ctx context.Context, c int) {
	rng := rand.New(rand.NewPCG(uint64(c), uint64(w.start.UnixNano())))
	id := int(w.nextID.Add(1) - 1)
	known := map[string]seen{} // last value and ETag this client saw per key
	for ctx.Err() == nil {
		urls := w.urls()
		var url string
		if w.pinEvery > 0 && c%w.pinEvery == 0 {
			url = urls[c%len(urls)]
		} else {
			url = urls[rng.IntN(len(urls))]
		}
		if url == "" {
			time.Sleep(20 * time.Millisecond) // pinned node is down: wait for it
			continue
		}
		key := w.keys[rng.IntN(len(w.keys))]
		in := kvInput{Key: key}
		switch p := rng.IntN(100); {
		case p < 40:
			in.Op = opGet
		case p < 70:
			in.Op = opPut
		case p < 90:
			in.Op = opCAS
		default:
			in.Op = opDelete
		}
		if in.Op == opCAS && known[key].etag == "" {
			in.Op = opGet // nothing to compare with yet
		}
		if in.Op == opPut || in.Op == opCAS {
			in.Value = fmt.Sprintf("v%d", w.seq.Add(1))
		}
		var etag string
		if in.Op == opCAS {
			in.Expect, etag = known[key].value, known[key].etag
		}
		call := w.now()
		out, newTag, ok := w.do(url, in, etag)
		ret := w.now()
		switch {
		case !ok:
			w.count("dropped")
			continue
		case out.Result == outUnknown:
			// Open-ended: the write may take effect at any time after its call.
			w.record(id, in, out, call, math.MaxInt64, "unknown")
			id = int(w.nextID.Add(1) - 1)
			continue
		}
		w.record(id, in, out, call, ret, "ok")
		switch {
		case in.Op == opGet && out.Result == outOK:
			known[key] = seen{out.Value, newTag}
		case (in.Op == opPut || in.Op == opCAS) && (out.Result == outOK || out.Result == outCreated):
			known[key] = seen{in.Value, newTag}
		case in.Op == opDelete && out.Result == outOK:
			delete(known, key)
		}
	}
}

// do performs one operation through the generated client. ok=false means the
// operation certainly did nothing (or was a read without an answer) and is left out
// of the history.
func (w *workload) do(url string, in kvInput, etag string) (kvOutput, string, bool) {
	c, err := openapi.NewClientWithResponses(url, openapi.WithHTTPClient(w.http))
	if err != nil {
		return kvOutput{}, "", false
	}
	ctx := context.Background()
	var (
		status int
		header http.Header
		value  string
		p      *openapi.Problem
	)
	switch in.Op {
	case opGet:
		consistency := openapi.GetKeyParamsConsistency("linearizable")
		if w.stale {
			consistency = "stale"
		}
		var r *openapi.GetKeyResponse
		if r, err = c.GetKeyWithResponse(ctx, in.Key, &openapi.GetKeyParams{Consistency: &consistency}); err == nil {
			status, header = r.StatusCode(), r.HTTPResponse.Header
			if r.JSON200 != nil && r.JSON200.Value != nil {
				value = *r.JSON200.Value
			}
		}
	case opPut, opCAS:
		params := &openapi.PutKeyParams{}
		if in.Op == opCAS {
			params.IfMatch = &etag
		}
		var r *openapi.PutKeyResponse
		if r, err = c.PutKeyWithBodyWithResponse(ctx, in.Key, params, "application/octet-stream", strings.NewReader(in.Value)); err == nil {
			status, header = r.StatusCode(), r.HTTPResponse.Header
			p = firstProblem(r.ApplicationproblemJSON503, r.ApplicationproblemJSON504)
		}
	case opDelete:
		var r *openapi.DeleteKeyResponse
		if r, err = c.DeleteKeyWithResponse(ctx, in.Key, nil); err == nil {
			status, header = r.StatusCode(), r.HTTPResponse.Header
			p = firstProblem(r.ApplicationproblemJSON503, r.ApplicationproblemJSON504)
		}
	}
	if err != nil {
		if in.Op == opGet {
			return kvOutput{}, "", false
		}
		return kvOutput{Result: outUnknown}, "", true // sent, no answer: may have happened
	}
	tag := header.Get("ETag")
	switch status {
	case http.StatusOK:
		if in.Op == opGet {
			return kvOutput{Result: outOK, Value: value}, tag, true
		}
		return kvOutput{Result: outOK}, tag, true
	case http.StatusCreated:
		return kvOutput{Result: outCreated}, tag, true
	case http.StatusNotFound:
		return kvOutput{Result: outNotFound}, "", true
	case http.StatusPreconditionFailed:
		return kvOutput{Result: outFailed}, "", true
	}
	if in.Op == opGet {
		return kvOutput{}, "", false
	}
	if (p != nil && p.Outcome != nil && *p.Outcome == "unknown") || status == http.StatusGatewayTimeout {
		return kvOutput{Result: outUnknown}, "", true
	}
	return kvOutput{}, "", false // a 503 that says nothing was done
}

func firstProblem(ps ...*openapi.Problem) *openapi.Problem {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// finalReads appends a linearizable read of every key through url, so a lost
// acknowledged write shows up as a violation.
func (w *workload) finalReads(url string) error {
	for _, k := range w.keys {
		call := w.now()
		out, _, ok := (&workload{http: w.http}).do(url, kvInput{Op: opGet, Key: k}, "")
		if !ok {
			return fmt.Errorf("final read of %s through %s failed", k, url)
		}
		w.record(int(w.nextID.Add(1)-1), kvInput{Op: opGet, Key: k}, out, call, w.now(), "final")
	}
	return nil
}
