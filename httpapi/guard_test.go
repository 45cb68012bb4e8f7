package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// testHosts names httptest.NewRequest's default Host, so the other tests' requests
// pass the Host check as a node's own name would.
var testHosts = []string{"example.com"}

// recordingAdmin counts the admin calls that change something.
type recordingAdmin struct {
	fixedAdmin
	joins     []JoinRequest
	transfers []string
	drains    []string
}

func (a *recordingAdmin) Join(_ context.Context, req JoinRequest) (Node, error) {
	a.joins = append(a.joins, req)
	return Node{ID: req.ID}, nil
}

func (a *recordingAdmin) TransferLeader(_ context.Context, _ uint32, node string) (string, error) {
	a.transfers = append(a.transfers, node)
	return "n1", nil
}

func (a *recordingAdmin) Decommission(_ context.Context, id string, dry bool) (DecommissionPlan, error) {
	a.drains = append(a.drains, id)
	return DecommissionPlan{Node: id, DryRun: dry}, nil
}

func newGuardedServer(t *testing.T, admin *recordingAdmin) *Server {
	t.Helper()
	kv := &routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}}
	return New(Config{KV: kv, Admin: admin, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AllowedHosts: []string{"node1:8080", "ringkv.internal", "LB.Example.COM."}})
}

// TestGuardRefusesCrossSiteAndRebinding: each refused case is answered with its
// status as a problem and reaches no handler; each allowed case is served.
func TestGuardRefusesCrossSiteAndRebinding(t *testing.T) {
	const joinBody = `{"id":"evil","http_addr":"10.0.0.9:8080","raft_addr":"10.0.0.9:7080"}`
	cases := []struct {
		name, method, path, host, body string
		header                         map[string]string
		want                           int
		changed                        bool // a join or transfer reached the admin backend
	}{
		// Host: DNS rebinding.
		{name: "foreign host", method: "GET", path: "/kv/k", host: "evil.example", want: 421},
		{name: "foreign host with port", method: "GET", path: "/admin/nodes", host: "evil.example:8080", want: 421},
		{name: "foreign host on a write", method: "POST", path: "/admin/nodes", host: "evil.example", body: joinBody,
			header: map[string]string{"Content-Type": "application/json"}, want: 421},
		{name: "subdomain of an allowed name", method: "GET", path: "/healthz", host: "x.ringkv.internal", want: 421},
		{name: "IPv4 literal", method: "GET", path: "/healthz", host: "10.1.2.3:8080", want: 200},
		{name: "IPv6 literal", method: "GET", path: "/healthz", host: "[::1]:8080", want: 200},
		{name: "localhost", method: "GET", path: "/healthz", host: "localhost:8080", want: 200},
		{name: "own advertised name", method: "GET", path: "/healthz", host: "node1:8080", want: 200},
		{name: "own name on another port", method: "GET", path: "/healthz", host: "node1:9999", want: 200},
		{name: "allowed name, any case, trailing dot", method: "GET", path: "/healthz", host: "lb.example.com.", want: 200},
		{name: "allowed name without port", method: "GET", path: "/healthz", host: "ringkv.internal", want: 200},

		// Origin / Sec-Fetch-Site: cross-site writes.
		{name: "cross-site text/plain leader transfer", method: "POST", path: "/admin/groups/1/leader", host: "node1:8080",
			body: `{"node":"n2"}`, header: map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, want: 403},
		{name: "join with a foreign Origin", method: "POST", path: "/admin/nodes", host: "node1:8080", body: joinBody,
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, want: 403},
		{name: "Sec-Fetch-Site cross-site", method: "POST", path: "/admin/nodes", host: "node1:8080", body: joinBody,
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, want: 403},
		{name: "Sec-Fetch-Site same-site", method: "POST", path: "/admin/groups/1/leader", host: "node1:8080",
			header: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://other.node1:8080"}, want: 403},
		{name: "cross-site PUT", method: "PUT", path: "/kv/k", host: "node1:8080", body: "v",
			header: map[string]string{"Origin": "http://evil.example"}, want: 403},
		{name: "cross-site DELETE", method: "DELETE", path: "/kv/k", host: "node1:8080",
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: 403},
		{name: "cross-site decommission", method: "DELETE", path: "/admin/nodes/n2", host: "node1:8080",
			header: map[string]string{"Origin": "http://evil.example"}, want: 403},
		{name: "same origin on another port is another origin", method: "POST", path: "/admin/nodes", host: "node1:8080", body: joinBody,
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://node1:9999"}, want: 403},
		{name: "same-origin browser write", method: "POST", path: "/admin/nodes", host: "node1:8080", body: joinBody,
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://node1:8080", "Sec-Fetch-Site": "same-origin"}, want: 200, changed: true},
		{name: "same Origin, no Sec-Fetch-Site", method: "POST", path: "/admin/groups/1/leader", host: "node1:8080",
			header: map[string]string{"Origin": "http://node1:8080"}, want: 200, changed: true},
		{name: "cross-site read is allowed", method: "GET", path: "/healthz", host: "node1:8080",
			header: map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, want: 200},
		{name: "non-browser join (no Origin)", method: "POST", path: "/admin/nodes", host: "10.0.0.1:8080", body: joinBody,
			header: map[string]string{"Content-Type": "application/json"}, want: 200, changed: true},

		// Content-Type on JSON endpoints.
		{name: "text/plain leader transfer, no Origin", method: "POST", path: "/admin/groups/1/leader", host: "node1:8080",
			body: `{"node":"n2"}`, header: map[string]string{"Content-Type": "text/plain"}, want: 415},
		{name: "form-encoded join", method: "POST", path: "/admin/nodes", host: "node1:8080", body: joinBody,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: 415},
		{name: "join without Content-Type", method: "POST", path: "/admin/nodes", host: "node1:8080", body: joinBody, want: 415},
		{name: "json with charset", method: "POST", path: "/admin/groups/1/leader", host: "node1:8080", body: `{"node":"n2"}`,
			header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, want: 200, changed: true},
		{name: "leader transfer without a body", method: "POST", path: "/admin/groups/1/leader", host: "node1:8080", want: 200, changed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			admin := &recordingAdmin{}
			s := newGuardedServer(t, admin)
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			if c.body == "" {
				req = httptest.NewRequest(c.method, c.path, nil)
			}
			req.Host = c.host
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("%s %s Host %s: %d %s, want %d", c.method, c.path, c.host, rec.Code, rec.Body, c.want)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if c.want >= 400 {
				var p Problem
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q, want application/problem+json", ct)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != c.want || p.Detail == "" {
					t.Errorf("problem %+v (%v), want status %d with a detail", p, err, c.want)
				}
			}
			if changed := len(admin.joins)+len(admin.transfers)+len(admin.drains) > 0; changed != c.changed {
				t.Errorf("joins %v transfers %v: changed = %v, want %v", admin.joins, admin.transfers, changed, c.changed)
			}
		})
	}
}

// TestGuardAnyHost: --allowed-hosts '*' turns the Host check off, not the others.
func TestGuardAnyHost(t *testing.T) {
	g := newGuard([]string{"*"}, nil)
	for _, h := range []string{"evil.example", "evil.example:8080", "anything"} {
		if !g.hostAllowed(h) {
			t.Errorf("host %q refused with *", h)
		}
	}
	s := New(Config{KV: &routeKV{id: "n1"}, Admin: &recordingAdmin{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowedHosts: []string{"*"}})
	req := httptest.NewRequest("POST", "/admin/groups/1/leader", nil)
	req.Host = "evil.example"
	req.Header.Set("Origin", "http://attacker.example")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("cross-origin POST with any host allowed: %d, want 403", rec.Code)
	}
}

// TestGuardNoNamesGiven: with no names configured, IP literals and localhost are still
// served and a name is not.
func TestGuardNoNamesGiven(t *testing.T) {
	g := newGuard(nil, nil)
	for h, want := range map[string]bool{"127.0.0.1:8080": true, "[fe80::1%25eth0]:80": true, "LOCALHOST": true,
		"": true, "example.com": false, "localhost.evil.example": false, "127.0.0.1.nip.io": false} {
		if got := g.hostAllowed(h); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestRawAnswersAreNotSniffed: a stored HTML value read with ?raw=true is served as
// application/octet-stream with nosniff and a CSP that lets nothing run; JSON answers
// carry nosniff too.
func TestRawAnswersAreNotSniffed(t *testing.T) {
	kv := &routeKV{id: "n1", rt: Route{Group: 1, Local: true, Leader: true, LeaderID: "n1"}}
	s := New(Config{AllowedHosts: testHosts, KV: kv, Admin: &recordingAdmin{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, path := range []string{"/kv/k?raw=true", "/kv/k", "/admin/groups"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		h := rec.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != apiCSP {
			t.Errorf("%s: %d nosniff %q CSP %q", path, rec.Code, h.Get("X-Content-Type-Options"), h.Get("Content-Security-Policy"))
		}
		if path == "/kv/k?raw=true" && rec.Code == http.StatusOK && h.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("raw answer typed %q, want application/octet-stream", h.Get("Content-Type"))
		}
	}
}
