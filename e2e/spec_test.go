package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ringkv/ringkv/openapi"
)

// The e2e tests talk to the binary only through the client generated from
// openapi/openapi.yaml, and every answer they get is checked against that spec: the
// server and the spec cannot drift apart without a test failing.

// specRouter finds the spec operation of a request. The spec's servers list is
// dropped so any host:port matches (the tests' nodes listen on many ports).
var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil
	return gorillamux.NewRouter(doc)
})

// checkResponse validates one answer (status, headers, content type, body) against
// the spec operation of its request.
func checkResponse(req *http.Request, status int, header http.Header, body []byte) error {
	router, err := specRouter()
	if err != nil {
		return fmt.Errorf("loading openapi.yaml: %w", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s: no operation in the spec: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%s %s -> %d does not match openapi.yaml: %w", req.Method, req.URL.RequestURI(), status, err)
	}
	return nil
}

// validatingTransport checks every response that passes through it and reports the
// mismatches; the caller still gets the response, unchanged.
type validatingTransport struct {
	base   http.RoundTripper
	report func(error)
}

func (v validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if verr := checkResponse(req, resp.StatusCode, resp.Header, body); verr != nil {
		v.report(verr)
	}
	return resp, nil
}

// sharedTransport keeps connections alive across every test's clients.
var sharedTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}()

// specViolations collects a test's mismatches and fails the test with them at its
// end; reports that arrive after the test ended (a straggling goroutine) are dropped
// rather than panicking in t.Errorf.
type specViolations struct {
	mu    sync.Mutex
	ended bool
	errs  []error
}

var violationsByTest sync.Map // testing.TB -> *specViolations

func violationsOf(t testing.TB) *specViolations {
	if v, ok := violationsByTest.Load(t); ok {
		return v.(*specViolations)
	}
	v, loaded := violationsByTest.LoadOrStore(t, &specViolations{})
	sv := v.(*specViolations)
	if !loaded {
		t.Cleanup(func() {
			sv.mu.Lock()
			sv.ended = true
			errs := sv.errs
			sv.mu.Unlock()
			violationsByTest.Delete(t)
			for _, err := range errs {
				t.Errorf("spec violation: %v", err)
			}
		})
	}
	return sv
}

func (s *specViolations) add(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.errs = append(s.errs, err)
	}
}

// validatingHTTPClient is an http.Client whose answers are checked against the spec;
// a mismatch fails t when it ends.
func validatingHTTPClient(t testing.TB, timeout time.Duration) *http.Client {
	v := violationsOf(t)
	return &http.Client{Timeout: timeout, Transport: validatingTransport{base: sharedTransport, report: v.add}}
}

// api is the generated client for the node at url, with spec validation on.
func api(t testing.TB, url string) *openapi.ClientWithResponses {
	t.Helper()
	return apiWithTimeout(t, url, 15*time.Second)
}

func apiWithTimeout(t testing.TB, url string, timeout time.Duration) *openapi.ClientWithResponses {
	t.Helper()
	c, err := openapi.NewClientWithResponses(url, openapi.WithHTTPClient(validatingHTTPClient(t, timeout)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHeadAndMethodNotAllowed (issue #12, item 6) through the binary: `curl -I` on
// any GET path answers GET's status and headers with no body (HEAD /kv/{key},
// /healthz and /readyz through the generated client, checked against openapi.yaml),
// and a method a path does not take is a 405 problem with Allow.
func TestHeadAndMethodNotAllowed(t *testing.T) {
	c := startProcCluster(t, 1)
	url := c.procs[0].httpURL
	ctx := context.Background()
	cl := api(t, url)
	if r, err := cl.PutKeyWithBodyWithResponse(ctx, "h", nil, "application/octet-stream", bytes.NewReader([]byte("v"))); err != nil || r.StatusCode() != http.StatusCreated {
		t.Fatalf("PUT h: %v %v", r, err)
	}
	if r, err := cl.HeadKeyWithResponse(ctx, "h", nil); err != nil || r.StatusCode() != http.StatusOK || r.HTTPResponse.Header.Get("ETag") == "" || len(r.Body) != 0 {
		t.Fatalf("HEAD /kv/h: %v %v", r, err)
	}
	if r, err := cl.HeadKeyWithResponse(ctx, "absent", nil); err != nil || r.StatusCode() != http.StatusNotFound || len(r.Body) != 0 {
		t.Fatalf("HEAD /kv/absent: %v %v", r, err)
	}
	if r, err := cl.HealthzHeadWithResponse(ctx); err != nil || r.StatusCode() != http.StatusOK || len(r.Body) != 0 {
		t.Fatalf("HEAD /healthz: %v %v", r, err)
	}
	if r, err := cl.ReadyzHeadWithResponse(ctx); err != nil || r.StatusCode() != http.StatusOK || len(r.Body) != 0 {
		t.Fatalf("HEAD /readyz: %v %v", r, err)
	}

	plain := &http.Client{Timeout: 15 * time.Second}
	do := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, nil)
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, path := range []string{"/kv/h", "/kv?limit=1", "/healthz", "/readyz", "/admin/partitions", "/openapi.yaml", "/metrics", "/ui/", "/ui/keys", "/ui/keys/view?key=h"} {
		get, _ := do(http.MethodGet, path)
		head, body := do(http.MethodHead, path)
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || len(body) != 0 {
			t.Errorf("HEAD %s: %d %q, %d body bytes; GET: %d %q", path, head.StatusCode, head.Header.Get("Content-Type"), len(body), get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPatch, "/kv/h", "GET, HEAD, PUT, DELETE"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodDelete, "/readyz", "GET, HEAD"},
		{http.MethodPut, "/kv", "GET, HEAD"},
		{http.MethodHead, "/admin/groups/1/leader", "POST"},
		{http.MethodPut, "/admin/nodes", "GET, HEAD, POST"},
		{http.MethodPut, "/ui/keys", "GET, HEAD"},
		{http.MethodGet, "/ui/keys/put", "POST"},
	} {
		resp, body := do(tc.method, tc.path)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d Allow %q %q %s, want a 405 problem with Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), body, tc.allow)
		}
	}
}
