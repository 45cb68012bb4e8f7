package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// RFC 9110 §9.3.2 and §15.5.6: a resource that answers GET answers HEAD the same way
// without the body (chi's middleware.GetHead routes HEAD to the GET handler, and
// net/http drops the body a handler writes to a HEAD request), and a 405 names the
// methods the resource does answer in Allow.

// probedMethods are the methods a route may answer, in the order Allow lists them.
var probedMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// allowedMethods lists the methods routes answers on path: those a handler is
// registered for, mounted sub-routers included, and HEAD wherever GET is.
func allowedMethods(routes chi.Routes, path string) []string {
	// A mounted sub-router answers its whole prefix, but chi's Match takes the stubs
	// Mount registers for the prefix itself ("/ui", "/ui/") as routes of every method:
	// ask the sub-router, with the rest of the path, instead.
	for _, rt := range routes.Routes() {
		prefix, ok := strings.CutSuffix(rt.Pattern, "/*")
		if !ok || rt.SubRoutes == nil || (path != prefix && !strings.HasPrefix(path, prefix+"/")) {
			continue
		}
		rest := strings.TrimPrefix(path, prefix)
		if rest == "" {
			rest = "/"
		}
		return allowedMethods(rt.SubRoutes, rest)
	}
	var out []string
	for _, m := range probedMethods {
		// Match fills the context it is given: a fresh one per probe.
		if routes.Match(chi.NewRouteContext(), m, path) ||
			(m == http.MethodHead && routes.Match(chi.NewRouteContext(), http.MethodGet, path)) {
			out = append(out, m)
		}
	}
	return out
}

// methodNotAllowed answers a request whose path exists but not for its method: a 405
// problem with Allow. The path is probed in the whole router (s.router), so the answer
// is right in a mounted sub-router (the dashboard) too, which inherits this handler.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	allow := allowedMethods(s.router, path)
	if len(allow) == 0 {
		// chi sends methods it does not know here whatever the path; there is no
		// resource at this one.
		writeProblem(w, Problem{Title: "Not Found", Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path, Instance: r.URL.Path})
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeProblem(w, Problem{Title: "Method Not Allowed", Status: http.StatusMethodNotAllowed,
		Detail: fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")), Instance: r.URL.Path})
}
