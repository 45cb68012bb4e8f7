package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenJSON is a token as /admin/tokens answers it.
type tokenJSON struct {
	ID       string   `json:"id"`
	Role     string   `json:"role"`
	Prefixes []string `json:"prefixes"`
	Name     string   `json:"name"`
	Token    string   `json:"token"`
}

// bearer is the headers of a client's request with token tok ("": none).
func bearer(tok string) []string {
	h := []string{"User-Agent", "ringkv-test-client"}
	if tok != "" {
		h = append(h, "Authorization", "Bearer "+tok)
	}
	return h
}

// goClientIsPeer stands in for peer authentication in these tests: the nodes' own
// internal requests carry Go's default User-Agent, the tests' client requests another.
func goClientIsPeer(cfg *Config) {
	cfg.testPeer = func(r *http.Request) bool { return strings.HasPrefix(r.UserAgent(), "Go-http-client/") }
}

// TestTokensOnEveryNode: with auth on, a 3-node cluster made with a bootstrap admin
// token (in the first node's data dir alone, 0600) serves tokens made through any
// node on every node, judges them by role and prefix on every node, and refuses a
// revoked one on every node within a second of the revocation's answer.
func TestTokensOnEveryNode(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.Auth = true }, goClientIsPeer)
	path := filepath.Join(c.nodes[0].cfg.DataDir, AdminTokenFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, mode %v", err, st.Mode())
	}
	b, _ := os.ReadFile(path)
	admin := strings.TrimSpace(string(b))
	for _, tn := range c.nodes[1:] {
		if _, err := os.Stat(filepath.Join(tn.cfg.DataDir, AdminTokenFile)); err == nil {
			t.Fatalf("%s, which joined, has an admin token file", tn.cfg.ID)
		}
	}

	// Tokens are made through a node that may not lead the meta group (forwarded).
	create := func(i int, body string) tokenJSON {
		t.Helper()
		status, hdr, resp := c.do(i, "POST", "/admin/tokens", body, bearer(admin)...)
		var tok tokenJSON
		if status != http.StatusCreated || json.Unmarshal(resp, &tok) != nil || tok.Token == "" || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("create %s via node %d: %d %s", body, i, status, resp)
		}
		return tok
	}
	reader := create(1, `{"role":"read","name":"reader"}`)
	appWriter := create(2, `{"role":"readwrite","prefixes":["app/"],"name":"app"}`)
	if status, _, resp := c.do(0, "POST", "/admin/tokens", `{"role":"admin","prefixes":["app/"]}`, bearer(admin)...); status != http.StatusBadRequest {
		t.Fatalf("admin token with prefixes: %d %s", status, resp)
	}
	if status, _, _ := c.do(0, "POST", "/admin/tokens", `{"role":"read"}`, bearer(reader.Token)...); status != http.StatusForbidden {
		t.Fatalf("a read token made a token: %d", status)
	}
	var listed struct{ Tokens []tokenJSON }
	if status, _, resp := c.do(1, "GET", "/admin/tokens", "", bearer(admin)...); status != 200 || json.Unmarshal(resp, &listed) != nil || len(listed.Tokens) != 3 ||
		strings.Contains(string(resp), reader.Token) || strings.Contains(string(resp), "hash") {
		t.Fatalf("list: %d %s", status, resp)
	}

	// Every node knows every token (its own meta replica applies the creations).
	for i := range c.nodes {
		eventually(t, 10*time.Second, fmt.Sprintf("node %d judges the new tokens", i), func() error {
			if status, _, resp := c.do(i, "PUT", fmt.Sprintf("/kv/app/%d", i), "v", bearer(appWriter.Token)...); status != http.StatusCreated {
				return fmt.Errorf("app token PUT: %d %s", status, resp)
			}
			if status, _, resp := c.do(i, "GET", fmt.Sprintf("/kv/app/%d", i), "", bearer(reader.Token)...); status != http.StatusOK {
				return fmt.Errorf("read token GET: %d %s", status, resp)
			}
			return nil
		})
		for _, tc := range []struct {
			method, path, tok string
			want              int
		}{
			{"PUT", "/kv/app/x", reader.Token, http.StatusForbidden},
			{"PUT", "/kv/other", appWriter.Token, http.StatusForbidden},
			{"GET", "/kv?prefix=", appWriter.Token, http.StatusForbidden},
			{"GET", "/kv?prefix=app/", appWriter.Token, http.StatusOK},
			{"GET", "/admin/nodes", appWriter.Token, http.StatusForbidden},
			{"GET", "/kv/app/x", "rkv_0000000000000000_" + strings.Repeat("A", 43), http.StatusUnauthorized},
			{"GET", "/kv/app/x", "", http.StatusUnauthorized},
			{"GET", "/internal/status", admin, http.StatusForbidden},
			{"GET", "/kv?group=1", admin, http.StatusForbidden},
			{"GET", "/metrics", "", http.StatusUnauthorized},
			{"GET", "/metrics", reader.Token, http.StatusOK},
			{"GET", "/healthz", "", http.StatusOK},
		} {
			if status, _, resp := c.do(i, tc.method, tc.path, "v", bearer(tc.tok)...); status != tc.want {
				t.Fatalf("node %d: %s %s: %d %s, want %d", i, tc.method, tc.path, status, resp, tc.want)
			}
		}
	}

	// Revoked through one node: every node refuses it within a second of the answer.
	status, _, resp := c.do(2, "DELETE", "/admin/tokens/"+reader.ID, "", bearer(admin)...)
	revoked := time.Now()
	if status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", status, resp)
	}
	var wg sync.WaitGroup
	took := make([]time.Duration, len(c.nodes))
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(revoked) < 5*time.Second {
				if status, _, _ := c.do(i, "GET", "/kv/app/0", "", bearer(reader.Token)...); status == http.StatusUnauthorized {
					took[i] = time.Since(revoked)
					return
				}
				time.Sleep(5 * time.Millisecond) // poll interval
			}
			took[i] = -1
		}()
	}
	wg.Wait()
	for i, d := range took {
		if d < 0 || d > time.Second {
			t.Fatalf("node %d refused the revoked token after %v (-1: not within 5 s); every node: %v", i, d, took)
		}
	}
	t.Logf("revoked token refused after %v", took)
	if status, _, _ := c.do(0, "DELETE", "/admin/tokens/"+reader.ID, "", bearer(admin)...); status != http.StatusNotFound {
		t.Fatalf("revoke again: %d", status)
	}
	// The other tokens still work.
	if status, _, resp := c.do(1, "GET", "/kv/app/1", "", bearer(appWriter.Token)...); status != http.StatusOK {
		t.Fatalf("after another token's revocation: %d %s", status, resp)
	}
}
