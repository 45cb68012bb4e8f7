package app

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestEveryRouteOfANodeAnswersHeadAndAllow (issue #12, item 6) walks every route of
// a real node's router (the API, the dashboard, /metrics, /openapi.yaml): HEAD of a
// GET route answers GET's status and content type with no body, and a method a route
// does not take is a 405 problem whose Allow lists exactly the methods it takes.
func TestEveryRouteOfANodeAnswersHeadAndAllow(t *testing.T) {
	c := startCluster(t, 1)
	c.mustPut(0, "h", "v")
	// Every route pattern and its methods; a path is served by every pattern matching
	// it ("/kv/" by the listing and by /kv/* with an empty key, a 400).
	patterns := map[string][]string{}
	walk := func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.ReplaceAll(strings.ReplaceAll(route, "/*/", "/"), "{id}", "1")
		patterns[route] = append(patterns[route], method)
		return nil
	}
	if err := chi.Walk(c.nodes[0].node.api.Routes(), walk); err != nil || len(patterns) < 25 {
		t.Fatalf("walked %d routes: %v", len(patterns), err)
	}
	for p := range patterns {
		path := strings.ReplaceAll(p, "*", "h")
		if strings.HasPrefix(path, "/ui/static/") {
			path = "/ui/static/style.css"
		}
		var methods []string
		for q, ms := range patterns {
			if prefix, wild := strings.CutSuffix(q, "*"); q == p || (wild && strings.HasPrefix(p, prefix)) {
				methods = append(methods, ms...)
			}
		}
		var allow []string
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			if slices.Contains(methods, m) || (m == "HEAD" && slices.Contains(methods, "GET")) {
				allow = append(allow, m)
			}
		}
		t.Run(path, func(t *testing.T) {
			if slices.Contains(methods, "GET") {
				gs, gh, _ := c.do(0, "GET", path, "")
				hs, hh, body := c.do(0, "HEAD", path, "")
				if hs != gs || hh.Get("Content-Type") != gh.Get("Content-Type") || len(body) != 0 {
					t.Errorf("HEAD: %d %q %d body bytes; GET: %d %q", hs, hh.Get("Content-Type"), len(body), gs, gh.Get("Content-Type"))
				}
			}
			s, h, body := c.do(0, "PATCH", path, "")
			if s != http.StatusMethodNotAllowed || h.Get("Allow") != strings.Join(allow, ", ") || h.Get("Content-Type") != "application/problem+json" {
				t.Errorf("PATCH: %d Allow %q %q %s, want a 405 problem with Allow %q", s, h.Get("Allow"), h.Get("Content-Type"), body, strings.Join(allow, ", "))
			}
		})
	}
}
