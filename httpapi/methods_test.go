package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// fixedAdmin answers every admin call with the same data.
type fixedAdmin struct{}

func (fixedAdmin) MetaLeader() (bool, Route) { return true, Route{} }
func (fixedAdmin) Nodes(context.Context) ([]Node, error) {
	return []Node{{ID: "n1", State: "up", LastSeen: time.Unix(1, 0)}}, nil
}
func (fixedAdmin) Join(_ context.Context, req JoinRequest) (Node, error) {
	return Node{ID: req.ID}, nil
}
func (fixedAdmin) Groups(context.Context) ([]Group, error) {
	return []Group{{ID: 1, Leader: "n1"}}, nil
}
func (fixedAdmin) Partitions() (Partitions, error) { return Partitions{Epoch: 1}, nil }
func (fixedAdmin) TransferLeader(context.Context, uint32, string) (string, error) {
	return "n1", nil
}
func (fixedAdmin) Ready() ([]string, error) { return nil, nil }
func (fixedAdmin) Internal(context.Context, string) (any, error) {
	return map[string]int{"groups": 1}, nil
}
func (fixedAdmin) Digest(uint32) (any, error) { return map[string]int{"keys": 1}, nil }
func (fixedAdmin) Decommission(_ context.Context, id string, dry bool) (DecommissionPlan, error) {
	return DecommissionPlan{Node: id, DryRun: dry}, nil
}

// TestEveryRouteAnswersHeadAndAllow walks every route of the router (mounted
// sub-routers included, as the dashboard is): HEAD on a GET route answers GET's status
// and headers with no body, and a method the route does not take is a 405 problem
// whose Allow lists exactly the methods it takes (HEAD with GET).
func TestEveryRouteAnswersHeadAndAllow(t *testing.T) {
	text := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, body)
		})
	}
	ui := chi.NewRouter() // shaped like the dashboard: pages, a form post, static files
	// As web.New does: HEAD of the mount point itself ("/ui/") reaches the sub-router
	// as HEAD (chi's Mount stubs take every method), so it must map HEAD to GET too.
	ui.Use(middleware.GetHead)
	ui.Get("/", text("<html>overview</html>").ServeHTTP)
	ui.Get("/keys", text("<html>keys</html>").ServeHTTP)
	ui.Post("/keys/delete", text("deleted").ServeHTTP)
	ui.Get("/static/*", text("css").ServeHTTP)
	kv := &memKV{data: map[string]Value{"h": {Value: []byte("v"), Version: 1, ModIndex: 1, ETag: `"1.0"`}}, index: 1}
	s := New(Config{AllowedHosts: testHosts, KV: kv, Admin: fixedAdmin{}, Tokens: &memTokens{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: text("metric 1\n"), Spec: text("openapi: 3.0.3\n"), UI: ui})
	srv := httptest.NewServer(s)
	defer srv.Close()

	// Every route pattern, and its methods; a path is served by every pattern that
	// matches it ("/kv/" by the listing and by /kv/* with an empty key, a 400).
	patterns := map[string][]string{}
	err := chi.Walk(s.Routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.ReplaceAll(strings.ReplaceAll(route, "/*/", "/"), "{id}", "1")
		patterns[route] = append(patterns[route], method)
		return nil
	})
	if err != nil || len(patterns) < 15 {
		t.Fatalf("walked %d routes: %v", len(patterns), err)
	}
	routes := map[string][]string{} // concrete path -> methods it takes
	for p := range patterns {
		path := strings.ReplaceAll(p, "*", "h")
		for q, methods := range patterns {
			if prefix, wild := strings.CutSuffix(q, "*"); q == path || (wild && strings.HasPrefix(path, prefix)) {
				routes[path] = append(routes[path], methods...)
			}
		}
	}
	do := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, path := range slices.Sorted(maps.Keys(routes)) {
		methods := routes[path]
		var allow []string
		for _, m := range probedMethods {
			if slices.Contains(methods, m) || (m == http.MethodHead && slices.Contains(methods, http.MethodGet)) {
				allow = append(allow, m)
			}
		}
		t.Run(path, func(t *testing.T) {
			if slices.Contains(methods, http.MethodGet) {
				get, _ := do(http.MethodGet, path)
				head, body := do(http.MethodHead, path)
				if head.StatusCode != get.StatusCode || len(body) != 0 {
					t.Errorf("HEAD: %d with %d body bytes; GET: %d", head.StatusCode, len(body), get.StatusCode)
				}
				for _, h := range []http.Header{get.Header, head.Header} {
					h.Del("Date")
				}
				if !maps.EqualFunc(get.Header, head.Header, slices.Equal) {
					t.Errorf("HEAD headers %v\nGET headers  %v", head.Header, get.Header)
				}
			}
			wrong := []string{http.MethodPatch}
			if !slices.Contains(allow, http.MethodHead) {
				wrong = append(wrong, http.MethodHead) // a HEAD where there is no GET
			}
			for _, m := range wrong {
				resp, body := do(m, path)
				if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != strings.Join(allow, ", ") {
					t.Errorf("%s: %d Allow %q, want 405 Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"), strings.Join(allow, ", "))
				}
				var p Problem
				if resp.Header.Get("Content-Type") != "application/problem+json" || (m != http.MethodHead && (json.Unmarshal(body, &p) != nil || p.Status != 405)) {
					t.Errorf("%s: answered %q %s, want a 405 problem", m, resp.Header.Get("Content-Type"), body)
				}
			}
		})
	}
}

// TestUnknownPathOrMethod: an unknown method on an unknown path is a 404, not a 405
// with an empty Allow; on a known path it is a 405 with Allow.
func TestUnknownPathOrMethod(t *testing.T) {
	s := New(Config{AllowedHosts: testHosts, KV: &memKV{data: map[string]Value{}}, Admin: fixedAdmin{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"BREW", "/nope", 404, ""},
		{"BREW", "/healthz", 405, "GET, HEAD"},
		{"PUT", "/kv", 405, "GET, HEAD"},
		{"POST", "/kv/a%2Fb", 405, "GET, HEAD, PUT, DELETE"},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), tc.status, tc.allow)
		}
	}
}
