package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// Tokens of the auth tests: long enough to be found in a log if one leaked there.
const (
	tokRead     = "rkv_1111111111111111_read-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tokWrite    = "rkv_2222222222222222_write-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	tokAdmin    = "rkv_3333333333333333_admin-secret-ccccccccccccccccccccccccccccccccccc"
	tokAppRead  = "rkv_4444444444444444_app-read-secret-dddddddddddddddddddddddddddddddd"
	tokAppWrite = "rkv_5555555555555555_app-write-secret-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	tokRevoked  = "rkv_6666666666666666_revoked-secret-fffffffffffffffffffffffffffffffff"
)

// mapAuth is an Authenticator over a fixed set of tokens.
type mapAuth map[string]Grant

func (m mapAuth) Authenticate(token string) (Grant, bool) {
	g, ok := m[token]
	return g, ok
}

var testGrants = mapAuth{
	tokRead:     {Role: RoleRead, TokenID: "1111111111111111"},
	tokWrite:    {Role: RoleReadWrite, TokenID: "2222222222222222"},
	tokAdmin:    {Role: RoleAdmin, TokenID: "3333333333333333"},
	tokAppRead:  {Role: RoleRead, Prefixes: []string{"app/", "shared/"}, TokenID: "4444444444444444"},
	tokAppWrite: {Role: RoleReadWrite, Prefixes: []string{"app/"}, TokenID: "5555555555555555"},
}

// memTokens is a Tokens in memory.
type memTokens struct {
	mu   sync.Mutex
	list []TokenInfo
}

func (m *memTokens) CreateToken(_ context.Context, req TokenRequest) (CreatedToken, error) {
	if req.Role == RoleAdmin && len(req.Prefixes) > 0 {
		return CreatedToken{}, fmt.Errorf("%w: an admin token cannot be limited to prefixes", ErrBadRequest)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	info := TokenInfo{ID: fmt.Sprintf("%016d", len(m.list)+1), Role: req.Role, Prefixes: req.Prefixes, Name: req.Name, Created: time.Unix(1, 0).UTC()}
	m.list = append(m.list, info)
	return CreatedToken{TokenInfo: info, Token: "rkv_" + info.ID + "_new"}, nil
}

func (m *memTokens) ListTokens(context.Context) ([]TokenInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]TokenInfo{}, m.list...), nil
}

func (m *memTokens) RevokeToken(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, t := range m.list {
		if t.ID == id {
			m.list = append(m.list[:i], m.list[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: no token %s", ErrNotFound, id)
}

// peerHeader marks a peer's request in these tests (the node's real Peer checks a
// certificate or the join secret).
const peerHeader = "X-Test-Peer"

func headerPeer(r *http.Request) bool { return r.Header.Get(peerHeader) == "yes" }

// authServer is a node with auth on over an in-memory store holding app/a, shared/s
// and other/o; log receives its log at debug level.
func authServer(t *testing.T, log io.Writer, peer func(*http.Request) bool) *Server {
	t.Helper()
	kv := &memKV{data: map[string]Value{}}
	for _, k := range []string{"app/a", "shared/s", "other/o"} {
		kv.data[k] = Value{Value: []byte("v"), Version: 1, ETag: `"1.0"`}
	}
	var s *Server
	ui := http.NewServeMux()
	ui.HandleFunc("/ui/login", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "login page") })
	ui.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		// As the dashboard does: read through the node's own API, in process.
		ctx := context.WithValue(r.Context(), chi.RouteCtxKey, nil) // as web.LocalAPI does
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/admin/nodes", nil)
		req.Host = ""
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		fmt.Fprintf(w, "nodes: %d", rec.Code)
	})
	s = New(Config{KV: kv, Admin: fixedAdmin{}, Tokens: &memTokens{}, AllowedHosts: testHosts,
		Log:     slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "up 1\n") }),
		Spec:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "openapi: 3.0.3\n") }),
		UI:      ui,
		Auth:    testGrants, Peer: peer,
	})
	return s
}

// serve sends one request; hdr are header name/value pairs.
func serve(h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != "" && strings.HasPrefix(target, "/admin") {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func bearerOf(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestAuthRules walks the rules of authrules.go: every case's status, with 401 and
// 403 answered as problems that name what is missing.
func TestAuthRules(t *testing.T) {
	var logs bytes.Buffer
	s := authServer(t, &logs, headerPeer)
	peer := []string{peerHeader, "yes"}
	cookie := func(tok string) []string { return []string{"Cookie", SessionCookie + "=" + tok} }
	for _, tc := range []struct {
		name, method, target, body string
		hdr                        []string
		want                       int
		says                       string // in the problem's detail
	}{
		{"no credential", "GET", "/kv/app/a", "", nil, 401, "needs a credential"},
		{"unknown token", "GET", "/kv/app/a", "", bearerOf(tokRevoked), 401, "malformed, unknown or revoked"},
		{"other scheme", "GET", "/kv/app/a", "", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "malformed, unknown or revoked"},
		{"empty bearer", "GET", "/kv/app/a", "", []string{"Authorization", "Bearer "}, 401, ""},
		{"bearer scheme any case", "GET", "/kv/app/a", "", []string{"Authorization", "bearer " + tokRead}, 200, ""},
		{"read gets", "GET", "/kv/other/o", "", bearerOf(tokRead), 200, ""},
		{"read heads", "HEAD", "/kv/other/o", "", bearerOf(tokRead), 200, ""},
		{"read lists", "GET", "/kv?prefix=o", "", bearerOf(tokRead), 200, ""},
		{"read may not put", "PUT", "/kv/other/o", "x", bearerOf(tokRead), 403, "needs the readwrite role; this credential has the read role"},
		{"read may not delete", "DELETE", "/kv/other/o", "", bearerOf(tokRead), 403, "readwrite"},
		{"readwrite puts", "PUT", "/kv/other/o", "x", bearerOf(tokWrite), 200, ""},
		{"readwrite deletes", "DELETE", "/kv/other/o", "", bearerOf(tokWrite), 200, ""},
		{"readwrite may not admin", "GET", "/admin/nodes", "", bearerOf(tokWrite), 403, "needs the admin role"},
		{"readwrite may not see tokens", "GET", "/admin/tokens", "", bearerOf(tokWrite), 403, "admin"},
		{"admin admins", "GET", "/admin/nodes", "", bearerOf(tokAdmin), 200, ""},
		{"admin writes", "PUT", "/kv/x", "x", bearerOf(tokAdmin), 201, ""},
		{"unknown path needs admin", "GET", "/nope", "", bearerOf(tokRead), 403, "admin"},
		{"unknown path as admin", "GET", "/nope", "", bearerOf(tokAdmin), 404, ""},
		// Prefixes: keys, and listings that stay inside one prefix.
		{"prefix key inside", "GET", "/kv/app/a", "", bearerOf(tokAppRead), 200, ""},
		{"prefix second prefix", "GET", "/kv/shared/s", "", bearerOf(tokAppRead), 200, ""},
		{"prefix key outside", "GET", "/kv/other/o", "", bearerOf(tokAppRead), 403, `"app/" "shared/"`},
		{"prefix escaped key inside", "GET", "/kv/%61pp%2Fa", "", bearerOf(tokAppRead), 200, ""},
		{"prefix escaped slash", "GET", "/kv/ap%2Fp/a", "", bearerOf(tokAppRead), 403, ""},
		{"prefix write inside", "PUT", "/kv/app/new", "x", bearerOf(tokAppWrite), 201, ""},
		{"prefix write outside", "PUT", "/kv/apple", "x", bearerOf(tokAppWrite), 403, "only keys starting with"},
		{"prefix delete outside", "DELETE", "/kv/other/o", "", bearerOf(tokAppWrite), 403, ""},
		{"prefix list inside", "GET", "/kv?prefix=app/", "", bearerOf(tokAppRead), 200, ""},
		{"prefix list narrower", "GET", "/kv?prefix=app/a&start_after=app/", "", bearerOf(tokAppRead), 200, ""},
		{"prefix list wider", "GET", "/kv?prefix=ap", "", bearerOf(tokAppRead), 403, "list only within"},
		{"prefix list everything", "GET", "/kv", "", bearerOf(tokAppRead), 403, ""},
		{"prefix list slash form", "GET", "/kv/?prefix=other/", "", bearerOf(tokAppRead), 403, ""},
		{"prefix list start_after elsewhere", "GET", "/kv?start_after=other/", "", bearerOf(tokAppRead), 403, ""},
		{"prefix token reads metrics", "GET", "/metrics", "", bearerOf(tokAppRead), 200, ""},
		// Open, any role.
		{"healthz open", "GET", "/healthz", "", nil, 200, ""},
		{"readyz open", "GET", "/readyz", "", nil, 200, ""},
		{"spec open", "GET", "/openapi.yaml", "", nil, 200, ""},
		{"open even with a bad token", "GET", "/healthz", "", bearerOf(tokRevoked), 200, ""},
		{"metrics needs a credential", "GET", "/metrics", "", nil, 401, ""},
		{"metrics with any role", "GET", "/metrics", "", bearerOf(tokRead), 200, ""},
		{"metrics with the cookie", "GET", "/metrics", "", cookie(tokRead), 200, ""},
		{"login page open", "GET", "/ui/login", "", nil, 200, ""},
		{"dashboard sends to login", "GET", "/ui/", "", nil, 303, ""},
		{"dashboard with the cookie", "GET", "/ui/", "", cookie(tokAdmin), 200, ""},
		{"dashboard with a bad cookie", "GET", "/ui/", "", cookie(tokRevoked), 303, ""},
		{"dashboard form with a bad cookie", "POST", "/ui/keys/put", "", cookie(tokRevoked), 401, ""},
		{"cookie is no credential for API writes", "PUT", "/kv/app/a", "x", cookie(tokAdmin), 401, ""},
		// Peers: peer-only paths, and a peer's request without a credential.
		{"internal needs a peer", "GET", "/internal/status", "", bearerOf(tokAdmin), 403, "cluster's own nodes only"},
		{"internal for a peer", "GET", "/internal/status", "", peer, 200, ""},
		{"group share needs a peer", "GET", "/kv?group=1", "", bearerOf(tokAdmin), 403, "own nodes only"},
		{"group share for a peer", "GET", "/kv?group=1", "", peer, 200, ""},
		{"join needs a peer", "POST", "/admin/nodes", `{"id":"n9","http_addr":"h:1","raft_addr":"r:1"}`, bearerOf(tokAdmin), 403, ""},
		{"join for a peer", "POST", "/admin/nodes", `{"id":"n9","http_addr":"h:1","raft_addr":"r:1"}`, peer, 200, ""},
		{"peer without credential", "PUT", "/kv/peer/p", "x", peer, 201, ""},
		{"peer with a bad token is judged by it", "GET", "/kv/app/a", "", append(bearerOf(tokRevoked), peer...), 401, ""},
		// The forwarded-by header gets a client nothing: removed, so a whole listing
		// is served rather than refused as a forwarded one without its group.
		{"client's forwarded-by removed", "GET", "/kv?prefix=app/", "", append(bearerOf(tokRead), forwardedHeader, "n2"), 200, ""},
		{"peer's forwarded-by kept", "GET", "/kv?prefix=app/", "", append(peer, forwardedHeader, "n2"), 400, "must name its group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(s, tc.method, tc.target, tc.body, tc.hdr...)
			if rec.Code != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.target, rec.Code, rec.Body, tc.want)
			}
			if tc.want == 401 || tc.want == 403 {
				var p Problem
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Header().Get("Content-Type") != "application/problem+json" || p.Status != tc.want {
					t.Fatalf("not a problem: %q %s", rec.Header().Get("Content-Type"), rec.Body)
				}
				if !strings.Contains(p.Detail, tc.says) {
					t.Fatalf("detail %q lacks %q", p.Detail, tc.says)
				}
			}
			if w := rec.Header().Get("WWW-Authenticate"); (tc.want == 401) != strings.HasPrefix(w, `Bearer realm="ringkv"`) {
				t.Fatalf("status %d with WWW-Authenticate %q", rec.Code, w)
			}
			if tc.want == 303 && rec.Header().Get("Location") != "/ui/login" {
				t.Fatalf("redirected to %q", rec.Header().Get("Location"))
			}
		})
	}
	// The dashboard's in-process calls carry the credential of its page's request.
	if body := serve(s, "GET", "/ui/", "", cookie(tokAdmin)...).Body.String(); body != "nodes: 200" {
		t.Fatalf("dashboard as admin: %q", body)
	}
	if body := serve(s, "GET", "/ui/", "", cookie(tokRead)...).Body.String(); body != "nodes: 403" {
		t.Fatalf("dashboard as read: %q", body)
	}
	for _, tok := range []string{tokRead, tokWrite, tokAdmin, tokAppRead, tokAppWrite, tokRevoked} {
		if secret := tok[len("rkv_1111111111111111_"):]; strings.Contains(logs.String(), secret) {
			t.Fatalf("a token is in the log:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "request refused") || !strings.Contains(logs.String(), "token_id=1111111111111111") {
		t.Fatalf("refusals are not logged with the token id:\n%s", logs.String())
	}
}

// TestPeerRulesWithoutAuth: with auth off the peer rules still hold when the node can
// tell peers (Peer set), and nothing changes when it cannot (Peer nil).
func TestPeerRulesWithoutAuth(t *testing.T) {
	kv := &memKV{data: map[string]Value{}}
	for _, tc := range []struct {
		name   string
		peer   func(*http.Request) bool
		hdr    []string
		target string
		want   int
	}{
		{"internal, not a peer", headerPeer, nil, "/internal/status", 403},
		{"internal, a peer", headerPeer, []string{peerHeader, "yes"}, "/internal/status", 200},
		{"key, not a peer", headerPeer, nil, "/kv/x", 404},
		{"no Peer: internal open as before", nil, nil, "/internal/status", 200},
		{"no Peer: forwarded-by kept", nil, []string{forwardedHeader, "n2"}, "/kv", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{KV: kv, Admin: fixedAdmin{}, AllowedHosts: testHosts, Log: slog.New(slog.DiscardHandler), Peer: tc.peer})
			if rec := serve(s, "GET", tc.target, "", tc.hdr...); rec.Code != tc.want {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.want)
			}
		})
	}
	// Auth on without a Peer function: nothing is a peer.
	s := New(Config{KV: kv, Admin: fixedAdmin{}, AllowedHosts: testHosts, Log: slog.New(slog.DiscardHandler), Auth: testGrants})
	if rec := serve(s, "GET", "/internal/status", ""); rec.Code != 403 {
		t.Fatalf("auth on, no Peer: /internal/status %d", rec.Code)
	}
	if rec := serve(s, "GET", "/kv/x", ""); rec.Code != 401 {
		t.Fatalf("auth on, no Peer: /kv/x without credential %d", rec.Code)
	}
}

// TestTokenEndpoints: create (201, the token shown once, not cached), list, revoke
// (204, then 404), and bad requests as problems.
func TestTokenEndpoints(t *testing.T) {
	s := authServer(t, io.Discard, headerPeer)
	admin := bearerOf(tokAdmin)
	rec := serve(s, "POST", "/admin/tokens", `{"role":"read","prefixes":["app/"],"name":"ci"}`, admin...)
	var created CreatedToken
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &created) != nil || created.Token == "" || created.ID == "" ||
		created.Role != RoleRead || created.Prefixes[0] != "app/" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	rec = serve(s, "GET", "/admin/tokens", "", admin...)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), created.ID) || strings.Contains(rec.Body.String(), created.Token) {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	for _, bad := range []struct{ body, says string }{
		{`{"role":"root"}`, "role must be"},
		{`{"role":"admin","prefixes":["a/"]}`, "prefixes"},
		{`{"role":"read","extra":1}`, "unknown field"},
		{`not json`, "JSON object"},
	} {
		rec := serve(s, "POST", "/admin/tokens", bad.body, admin...)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), bad.says) {
			t.Errorf("create %s: %d %s", bad.body, rec.Code, rec.Body)
		}
	}
	if rec := serve(s, "DELETE", "/admin/tokens/"+created.ID, "", admin...); rec.Code != 204 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(s, "DELETE", "/admin/tokens/"+created.ID, "", admin...); rec.Code != 404 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("revoke again: %d %s", rec.Code, rec.Body)
	}
}

// TestSessionCookie: a valid token logs in with an HttpOnly, SameSite=Strict cookie
// for the whole site, Secure over TLS; a bad one sets nothing; logout clears it.
func TestSessionCookie(t *testing.T) {
	sess := Session{Auth: testGrants}
	rec := httptest.NewRecorder()
	if err := sess.Login(rec, httptest.NewRequest("POST", "/ui/login", nil), " "+tokRead+"\n"); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != SessionCookie || c[0].Value != tokRead || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode || c[0].Path != "/" || c[0].Secure {
		t.Fatalf("login cookie over plain HTTP: %+v", c)
	}
	rec = httptest.NewRecorder()
	if err := sess.Login(rec, httptest.NewRequest("POST", "https://example.com/ui/login", nil), tokRead); err != nil || !rec.Result().Cookies()[0].Secure {
		t.Fatalf("login cookie over TLS is not Secure: %v %+v", err, rec.Result().Cookies())
	}
	rec = httptest.NewRecorder()
	err := sess.Login(rec, httptest.NewRequest("POST", "/ui/login", nil), tokRevoked)
	if err == nil || len(rec.Result().Cookies()) != 0 || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad token: %v, cookies %v", err, rec.Result().Cookies())
	}
	rec = httptest.NewRecorder()
	sess.Logout(rec, httptest.NewRequest("POST", "/ui/logout", nil))
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 || c[0].Value != "" {
		t.Fatalf("logout cookie: %+v", c)
	}
}
