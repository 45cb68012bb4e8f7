package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tokens and roles through the binary (issue #14 item 3): a secure 3-node cluster,
// clients that show only the CA (no client certificate) and a token or nothing.

// tokenClient is a client that trusts the tests' CA and presents no certificate (made
// with clientTLS, in tls_test.go's init).
var tokenClient *http.Client

// authDo sends one request with token ("" for none) and extra headers; it returns the
// status and body.
func authDo(t *testing.T, method, url, body, token string, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := tokenClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// createToken makes a token with the admin token and returns its id and secret.
func createToken(t *testing.T, url, admin, role string, prefixes ...string) (id, token string) {
	t.Helper()
	req := map[string]any{"role": role, "name": "e2e " + role}
	if len(prefixes) > 0 {
		req["prefixes"] = prefixes
	}
	b, _ := json.Marshal(req)
	status, body, _ := authDo(t, http.MethodPost, url+"/admin/tokens", string(b), admin, "Content-Type", "application/json")
	if status != http.StatusCreated {
		t.Fatalf("POST /admin/tokens %s: %d %s", b, status, body)
	}
	var got struct{ Id, Token string }
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Token == "" {
		t.Fatalf("POST /admin/tokens answered %s (%v)", body, err)
	}
	return got.Id, got.Token
}

func TestTokensAndRolesThroughTheBinary(t *testing.T) {
	c := startSecureProcCluster(t, 3)
	u0, u2 := c.procs[0].httpURL, c.procs[2].httpURL
	b, err := os.ReadFile(filepath.Join(c.procs[0].dataDir(), "admin.token"))
	if err != nil {
		t.Fatalf("the bootstrap admin token: %v", err)
	}
	admin := strings.TrimSpace(string(b))
	if st, _ := os.Stat(filepath.Join(c.procs[0].dataDir(), "admin.token")); st.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode %v, want 0600", st.Mode().Perm())
	}
	mustStatus := func(what string, want, got int, body string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: %d %s, want %d", what, got, body, want)
		}
	}

	// No credentials: 401 as a problem, on data and admin alike; health stays open.
	status, body, h := authDo(t, http.MethodGet, u0+"/kv/app/x", "", "")
	mustStatus("GET without a token", http.StatusUnauthorized, status, body)
	if !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") || !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 answer headers %v", h)
	}
	status, body, _ = authDo(t, http.MethodGet, u0+"/admin/nodes", "", "not-a-token")
	mustStatus("GET /admin/nodes with a made-up token", http.StatusUnauthorized, status, body)
	status, body, _ = authDo(t, http.MethodGet, u0+"/readyz", "", "")
	mustStatus("/readyz without a token", http.StatusOK, status, body)

	// The admin token writes; a read token reads but may not write.
	status, body, _ = authDo(t, http.MethodPut, u0+"/kv/app/x", "v1", admin)
	mustStatus("PUT with the admin token", http.StatusCreated, status, body)
	_, read := createToken(t, u0, admin, "read")
	status, body, _ = authDo(t, http.MethodGet, u2+"/kv/app/x", "", read)
	mustStatus("GET with a read token through another node", http.StatusOK, status, body)
	status, body, _ = authDo(t, http.MethodPut, u2+"/kv/app/x", "v2", read)
	mustStatus("PUT with a read token", http.StatusForbidden, status, body)
	status, body, _ = authDo(t, http.MethodGet, u0+"/admin/nodes", "", read)
	mustStatus("admin API with a read token", http.StatusForbidden, status, body)
	// The forwarded-by header gives a client nothing.
	status, body, _ = authDo(t, http.MethodPut, u0+"/kv/app/x", "v2", read, "X-Ringkv-Forwarded-By", "node2")
	mustStatus("PUT with a read token claiming to be forwarded", http.StatusForbidden, status, body)
	status, body, _ = authDo(t, http.MethodGet, u0+"/internal/status?nonce=abc", "", admin)
	mustStatus("an internal endpoint with the admin token", http.StatusForbidden, status, body)

	// A prefix-limited readwrite token: its prefix only, for keys and listings.
	rwID, rw := createToken(t, u0, admin, "readwrite", "app/")
	status, body, _ = authDo(t, http.MethodPut, u2+"/kv/app/y", "mine", rw)
	mustStatus("PUT inside the token's prefix", http.StatusCreated, status, body)
	status, body, _ = authDo(t, http.MethodPut, u2+"/kv/other/y", "not mine", rw)
	mustStatus("PUT outside the token's prefix", http.StatusForbidden, status, body)
	status, body, _ = authDo(t, http.MethodGet, u0+"/kv?prefix=app/", "", rw)
	mustStatus("list inside the prefix", http.StatusOK, status, body)
	status, body, _ = authDo(t, http.MethodGet, u0+"/kv?prefix=other/", "", rw)
	mustStatus("list outside the prefix", http.StatusForbidden, status, body)
	status, body, _ = authDo(t, http.MethodGet, u0+"/kv", "", rw)
	mustStatus("list of everything", http.StatusForbidden, status, body)

	// A client certificate's role counts like a token's.
	readCertDir := t.TempDir()
	if _, err := e2eCA.issue(readCertDir, "client.read", "read", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(readCertDir, "client.read.crt"), filepath.Join(readCertDir, "client.read.key"))
	if err != nil {
		t.Fatal(err)
	}
	certClient := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: clientTLS.RootCAs, Certificates: []tls.Certificate{pair}}}}
	for method, want := range map[string]int{http.MethodGet: http.StatusOK, http.MethodPut: http.StatusForbidden} {
		req, _ := http.NewRequest(method, u0+"/kv/app/x", strings.NewReader("by certificate"))
		resp, err := certClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mustStatus(method+" with a read client certificate", want, resp.StatusCode, "")
	}

	// Cross-site: a browser page's POST is refused even when the browser holds a
	// valid credential (the admin token here stands for a session cookie).
	status, body, _ = authDo(t, http.MethodPost, u0+"/admin/groups/1/leader", "{}", admin,
		"Content-Type", "text/plain", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	mustStatus("cross-site POST", http.StatusForbidden, status, body)

	// Revocation: refused on every node within a second of the 204.
	status, body, _ = authDo(t, http.MethodDelete, u0+"/admin/tokens/"+rwID, "", admin)
	mustStatus("DELETE the readwrite token", http.StatusNoContent, status, body)
	revoked := time.Now()
	for _, p := range c.procs {
		eventually(t, time.Second, "the revoked token refused by "+p.httpURL, func() error {
			if status, body, _ := authDo(t, http.MethodGet, p.httpURL+"/kv/app/y", "", rw); status != http.StatusUnauthorized {
				return fmt.Errorf("%d %s", status, body)
			}
			return nil
		})
	}
	t.Logf("the revoked token was refused by every node %v after the 204", time.Since(revoked).Round(time.Millisecond))
	status, body, _ = authDo(t, http.MethodGet, u2+"/kv/app/y", "", read)
	mustStatus("the other tokens still work", http.StatusOK, status, body)
}
