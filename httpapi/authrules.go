package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
)

// What each request needs (issue #14, items 3 and 4): the one table of the API's
// authorization rules, applied by auth.go before routing.
//
//	open                /healthz /readyz /openapi.yaml, the dashboard's login
//	                    page, logout and static files
//	any role            /metrics (Prometheus sends a bearer token), the dashboard
//	read                GET/HEAD /kv (a listing) and /kv/{key}
//	readwrite           PUT/DELETE (any other method) /kv/{key}
//	admin               /admin/... (tokens included), /debug/pprof, any other path
//	peer only           /internal/..., a listing with ?group= (one group's share of
//	                    another node's fan-out), POST /admin/nodes (a join)
//
// A token limited to key prefixes may touch a key only when it starts with one of
// them, and list only a `prefix` that starts with one (a listing never leaves its
// prefix: cursor and start_after only start it later). Its prefixes do not limit what
// its role allows elsewhere (/metrics, the dashboard's pages).

// Role is what a credential may do; each role includes the ones before it.
type Role string

const (
	RoleRead      Role = "read"
	RoleReadWrite Role = "readwrite"
	RoleAdmin     Role = "admin"
)

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleReadWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// access is a class of request in the table above.
type access int

const (
	accessOpen access = iota
	accessAnyRole
	accessRole // need.role, and need's key or listing within the grant's prefixes
	accessPeer
)

// need is what one request needs.
type need struct {
	access access
	role   Role
	// key is the key of a /kv/{key} request (nil when the path does not parse: the
	// handler answers 400 then); listing marks a /kv listing of prefix.
	key     []byte
	listing bool
	prefix  string
}

// routePath is the path as chi routes it (the escaped form when it differs), so the
// rules see what the router sees.
func routePath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

// openPaths need no credential.
var openPaths = map[string]bool{
	"/healthz": true, "/readyz": true, "/openapi.yaml": true,
	"/ui/login": true, "/ui/logout": true,
}

// needOf classifies r.
func needOf(r *http.Request) need {
	p := routePath(r)
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case openPaths[p] || strings.HasPrefix(p, "/ui/static/"):
		return need{access: accessOpen}
	case p == "/metrics" || p == "/ui" || strings.HasPrefix(p, "/ui/"):
		return need{access: accessAnyRole}
	case strings.HasPrefix(p, "/internal/"), p == "/admin/nodes" && r.Method == http.MethodPost:
		return need{access: accessPeer}
	case p == "/kv" || (p == "/kv/" && read):
		if r.URL.Query().Has("group") {
			return need{access: accessPeer}
		}
		return need{access: accessRole, role: RoleRead, listing: true, prefix: r.URL.Query().Get("prefix")}
	case strings.HasPrefix(p, "/kv/"):
		n := need{access: accessRole, role: RoleReadWrite}
		if read || r.Method == http.MethodOptions {
			n.role = RoleRead
		}
		n.key, _ = keyFromPath(r)
		return n
	default:
		return need{access: accessRole, role: RoleAdmin}
	}
}

// refusal says why g may not do what n needs ("" when it may): the role it lacks, or
// the key or listing outside its prefixes. It names the grant's prefixes (the client's
// own) but never the credential.
func (g Grant) refusal(n need, r *http.Request) string {
	if n.access != accessRole {
		return ""
	}
	if g.Role.rank() < n.role.rank() {
		return fmt.Sprintf("%s %s needs the %s role; this credential has the %s role", r.Method, routePath(r), n.role, g.Role)
	}
	if len(g.Prefixes) == 0 || g.Role == RoleAdmin || (n.key == nil && !n.listing) {
		return ""
	}
	for _, p := range g.Prefixes {
		if (n.listing && strings.HasPrefix(n.prefix, p)) || (!n.listing && bytes.HasPrefix(n.key, []byte(p))) {
			return ""
		}
	}
	if n.listing {
		return fmt.Sprintf("this credential may list only within the key prefixes %q: give one of them (or a longer prefix) as prefix", g.Prefixes)
	}
	return fmt.Sprintf("this credential may touch only keys starting with one of %q", g.Prefixes)
}
