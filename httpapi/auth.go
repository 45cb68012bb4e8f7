package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Authentication and authorization of every request (issue #14, items 3 and 4), in
// front of the router; authrules.go says what each request needs.
//
// Credentials, the first one present counts:
//   - a TLS client certificate verified against the node's CA whose subject's common
//     name is a role (read, readwrite, admin): that role, every key. A certificate
//     with another name (a node's, CN=node) is no client credential; whether it makes
//     the request a peer's is Peer's to say;
//   - Authorization: Bearer <token>, a token of the cluster's token set;
//   - the dashboard's session cookie (SessionCookie), on the dashboard's paths and on
//     any GET or HEAD (the dashboard's links to /metrics and to raw values);
//   - inside the node, the credential of the dashboard request an in-process API call
//     is made for (the dashboard reads through the node's own API, web.LocalAPI):
//     carried in the request's context, which no client can set.
//
// A request presenting a credential is judged by it: 401 when it is not valid, 403
// when it does not allow the request. A request from an authenticated cluster peer
// (Peer) presenting none is allowed everything: peers forward requests of clients
// that the first node has already judged (without their credentials). Without peer
// or valid credential: 401, but a dashboard page (GET /ui/...) is sent to the login
// page instead.
//
// Peer-only requests (/internal/..., ?group= listings, joins) are answered 403 unless
// Peer says the request is a peer's, whatever credential it carries; a request that
// is not a peer's has its X-Ringkv-Forwarded-By header removed before routing: a
// client setting it gets nothing special. These peer rules hold whenever Peer is set,
// with auth on or off.
//
// Neither a credential nor a part of one is ever logged or echoed in an answer.

// Grant is what a credential allows.
type Grant struct {
	Role Role
	// Prefixes limit the keys the credential may touch (authrules.go); empty: every key.
	Prefixes []string
	// TokenID is the public id of a token credential ("" for a certificate), for logs.
	TokenID string
}

// Authenticator looks bearer tokens up in the cluster's token set.
type Authenticator interface {
	// Authenticate returns the grant of token; ok is false for a token that is
	// malformed, unknown or revoked. It must compare secrets in constant time.
	Authenticate(token string) (g Grant, ok bool)
}

// SessionCookie is the name of the dashboard's session cookie (Session).
const SessionCookie = "ringkv_session"

// grantKey carries an in-process request's grant in its context.
type grantKey struct{}

// authn applies the rules; auth nil: no credentials checked (peer rules only).
type authn struct {
	auth  Authenticator
	peer  func(*http.Request) bool
	log   *slog.Logger
	write func(w http.ResponseWriter, r *http.Request, err error) // answers a refusal
}

// refusalKey carries a refusal's error to the observed handler that writes it.
type refusalKey struct{}

func newAuthn(cfg Config) *authn {
	a := &authn{auth: cfg.Auth, peer: cfg.Peer, log: cfg.Log}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.write = func(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, a.log, err) }
	if cfg.Observe != nil {
		// Refusals happen before routing: they are counted under their own route,
		// ringkv_http_requests_total{route="(refused)",code="401"|"403"}, so a scan or
		// a guessing client shows in /metrics.
		h := cfg.Observe("(refused)", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, a.log, r.Context().Value(refusalKey{}).(error))
		}))
		a.write = func(w http.ResponseWriter, r *http.Request, err error) {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), refusalKey{}, err)))
		}
	}
	return a
}

// isPeer says whether r comes from an authenticated cluster peer. Without a Peer
// function: nothing is a peer when auth is on, and every request is (as before
// authentication existed) when it is off.
func (a *authn) isPeer(r *http.Request) bool {
	if a.peer != nil {
		return a.peer(r)
	}
	return a.auth == nil
}

func (a *authn) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := a.isPeer(r)
		if !peer {
			r.Header.Del(forwardedHeader)
		}
		n := needOf(r)
		if n.access == accessPeer {
			if !peer {
				a.refuse(w, r, fmt.Errorf("%w: %s %s is served to the cluster's own nodes only", ErrForbidden, r.Method, routePath(r)), "")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if a.auth == nil || n.access == accessOpen {
			next.ServeHTTP(w, r)
			return
		}
		g, present, err := a.credential(r)
		switch {
		case (err != nil || !present && !peer) && r.Method == http.MethodGet && isDashboard(r):
			// A browser: to the login page (a session whose token was revoked too).
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		case err != nil:
			a.refuse(w, r, err, "")
			return
		case !present && peer:
			next.ServeHTTP(w, r)
			return
		case !present:
			a.refuse(w, r, fmt.Errorf("%w: %s %s needs a credential: Authorization: Bearer <token> (ringkv token create; the bootstrap admin token is in the data dir's admin.token) or a client certificate", ErrUnauthorized, r.Method, routePath(r)), "")
			return
		}
		if why := g.refusal(n, r); why != "" {
			a.refuse(w, r, fmt.Errorf("%w: %s; nothing was done", ErrForbidden, why), g.TokenID)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, g)))
	})
}

// errBadToken: the bearer token (or session cookie) is not valid now.
var errBadToken = fmt.Errorf("%w: the token is malformed, unknown or revoked", ErrUnauthorized)

// credential returns the grant of the credential r presents (a bearer token, else a
// client certificate's role, else the session cookie); present is false
// when it presents none, err is errBadToken when the one it presents is not valid.
func (a *authn) credential(r *http.Request) (g Grant, present bool, err error) {
	if g, ok := r.Context().Value(grantKey{}).(Grant); ok {
		return g, true, nil
	}
	// A bearer token, when sent, is the credential: a client certificate the same
	// request carries (a CLI with a certs dir) must not lend it more rights, nor make a
	// revoked token pass.
	token, present := bearer(r)
	if !present && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		if role := Role(r.TLS.VerifiedChains[0][0].Subject.CommonName); role.rank() > 0 {
			return Grant{Role: role}, true, nil
		}
	}
	if !present {
		if c, err := r.Cookie(SessionCookie); err == nil && cookieCounts(r) {
			token, present = c.Value, true
		}
	}
	if !present {
		return Grant{}, false, nil
	}
	if g, ok := a.auth.Authenticate(token); ok {
		return g, true, nil
	}
	return Grant{}, true, errBadToken
}

// bearer returns the token of an Authorization header; present is true for any
// Authorization header (one of another scheme is a credential that is not valid here).
func bearer(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(token), true
}

// cookieCounts says whether the session cookie is a credential for r: on the
// dashboard's paths, and for GET and HEAD anywhere.
func cookieCounts(r *http.Request) bool {
	return isDashboard(r) || r.Method == http.MethodGet || r.Method == http.MethodHead
}

func isDashboard(r *http.Request) bool {
	p := routePath(r)
	return p == "/ui" || strings.HasPrefix(p, "/ui/")
}

// refuse answers 401 or 403 as a problem, and logs the refusal at debug level with
// the token's public id when known (never the token).
func (a *authn) refuse(w http.ResponseWriter, r *http.Request, err error, tokenID string) {
	if errors.Is(err, ErrUnauthorized) {
		v := `Bearer realm="ringkv"`
		if errors.Is(err, errBadToken) {
			v += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	a.log.Debug("request refused", "method", r.Method, "path", routePath(r), "remote", r.RemoteAddr, "token_id", tokenID, "why", err)
	a.write(w, r, err)
}
