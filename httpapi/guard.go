package httpapi

import (
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
)

// Browser-facing defences of a node's HTTP listener (issue #14, item 6), in front of
// every route, the dashboard included:
//
//   - DNS rebinding: a page on evil.example whose name is made to resolve to a node's
//     address is same-origin with it for the browser, so its scripts could read and
//     write freely. The browser still sends Host: evil.example; a request whose Host
//     names none of the node's names is refused with 421 Misdirected Request
//     (RFC 9110 §15.5.20: this server does not answer for that name), which says what
//     is wrong and that --allowed-hosts is the fix, rather than 403's "you may not".
//   - Cross-site writes (CSRF): a page on another site can make a browser send a POST
//     (a form, or fetch with a "simple" content type, which needs no CORS preflight).
//     State-changing requests whose Sec-Fetch-Site or Origin says they come from
//     another origin are refused with 403 before anything is done. The check is
//     net/http's CrossOriginProtection (Go 1.25; Filippo Valsorda's design): requests
//     with neither header (curl, Go and other non-browser clients) pass.
//   - Content sniffing: every answer carries X-Content-Type-Options: nosniff, so stored
//     bytes served by ?raw=true as application/octet-stream are never rendered as
//     HTML, and a Content-Security-Policy that forbids everything in case one is (the
//     dashboard sets its own, stricter than none but as strict as its pages allow).
//
// JSON endpoints that take a body are wrapped with requireJSON (415 unless the body
// is application/json): a cross-site POST of text/plain needs no preflight, one of
// application/json does, so the type requirement closes the hole even for a browser
// that sent neither Sec-Fetch-Site nor Origin.
//
// These checks hold with authentication off and on (auth.go). With auth a rebinding
// page has no credentials for the node's name, but the Origin check and the
// content-type rule stay: the dashboard's session cookie is a credential a browser
// sends by itself.

// apiCSP is the policy of every answer but the dashboard's: nothing may load, run or
// frame it (OWASP's REST Security Cheat Sheet).
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// guard holds the names a request's Host may carry and the cross-origin check.
type guard struct {
	anyHost bool
	hosts   map[string]bool // lower case, no port, no trailing dot
	origin  *http.CrossOriginProtection
	log     *slog.Logger
}

// newGuard accepts, besides IP literals and localhost, the host names in allowed
// (host or host:port; ports are ignored); "*" accepts any Host. Refusals are logged
// at WARN on log: an attack, or a proxy's name missing from --allowed-hosts.
func newGuard(allowed []string, log *slog.Logger) *guard {
	if log == nil {
		log = slog.Default()
	}
	g := &guard{hosts: map[string]bool{}, origin: http.NewCrossOriginProtection(), log: log}
	for _, h := range allowed {
		if h = strings.TrimSpace(h); h == "*" {
			g.anyHost = true
		} else if n := hostName(h); n != "" {
			g.hosts[n] = true
		}
	}
	return g
}

// hostName is the name part of a Host header or address (host, host:port, [v6]:port),
// lower case and without a trailing dot.
func hostName(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	return strings.ToLower(h)
}

// hostAllowed says whether a request whose Host header is host may be served.
func (g *guard) hostAllowed(host string) bool {
	if g.anyHost || host == "" { // HTTP/1.0 without Host, the dashboard's in-process calls: no name to rebind
		return true
	}
	n := hostName(host)
	if ip := net.ParseIP(strings.SplitN(n, "%", 2)[0]); ip != nil {
		// An attacker cannot make a browser send an IP literal it did not type: an IP
		// is not a name that DNS rebinding can point elsewhere.
		return true
	}
	return n == "localhost" || g.hosts[n]
}

// wrap applies the checks and headers before next.
func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", apiCSP)
		if !g.hostAllowed(r.Host) {
			g.log.Warn("refused a request for a host this node does not answer for (DNS rebinding, or a name missing from --allowed-hosts)",
				"host", r.Host, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeProblem(w, Problem{Title: "Misdirected Request", Status: http.StatusMisdirectedRequest, Instance: r.URL.Path,
				Detail: fmt.Sprintf("this node does not answer for host %q; a name it should answer for (a proxy's or load balancer's) goes in its --allowed-hosts", hostName(r.Host))})
			return
		}
		if err := g.origin.Check(r); err != nil {
			g.log.Warn("refused a cross-origin write", "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"),
				"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeProblem(w, Problem{Title: "Forbidden", Status: http.StatusForbidden, Instance: r.URL.Path,
				Detail: "cross-origin " + r.Method + " refused, nothing was done: " + err.Error()})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireJSON answers 415 to a request to a JSON endpoint whose body is not declared
// application/json (parameters such as charset allowed). A request without a body
// passes whatever its type.
func requireJSON(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 { // -1: a body of unknown length (chunked)
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeProblem(w, Problem{Title: "Unsupported Media Type", Status: http.StatusUnsupportedMediaType, Instance: r.URL.Path,
					Detail: fmt.Sprintf("the body must be sent with Content-Type: application/json, not %q", r.Header.Get("Content-Type"))})
				return
			}
		}
		next(w, r)
	}
}
