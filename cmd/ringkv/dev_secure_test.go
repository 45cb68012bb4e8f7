package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDevSecure: `ringkv dev --secure` runs a cluster that answers only over TLS and
// only to credentials: no token 401, the printed admin token works from any node, and
// so does the CLI with the admin client certificate dev made.
func TestDevSecure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster")
	}
	bin := devTestBinary(t)
	base := devFreeBase(t, 3)
	p := startDev(t, bin, t.TempDir(), "--nodes", "3", "--base-port", strconv.Itoa(base), "--secure")
	printed := func(label string) string {
		for _, l := range p.stdout {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), label); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("dev --secure printed no %q line:\n%s", label, strings.Join(p.stdout, "\n"))
		return ""
	}
	caFile, token, clientDir := printed("CA:"), printed("admin token:"), printed("admin cert:")
	for _, r := range p.rows {
		if !strings.HasPrefix(r.http, "https://") {
			t.Fatalf("%s listed at %s, want https", r.id, r.http)
		}
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(method, url, body, bearer string) (int, string) {
		t.Helper()
		for start := time.Now(); ; {
			req, _ := http.NewRequest(method, url, strings.NewReader(body))
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, url, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || time.Since(start) > 15*time.Second {
				return resp.StatusCode, string(b)
			}
			time.Sleep(50 * time.Millisecond) // poll interval while a group elects
		}
	}
	if status, body := do(http.MethodPut, p.rows[0].http+"/kv/dev-secure", "x", ""); status != http.StatusUnauthorized {
		t.Fatalf("PUT without a token: %d %s, want 401", status, body)
	}
	if status, body := do(http.MethodPut, p.rows[0].http+"/kv/dev-secure", "from a token", token); status != http.StatusCreated {
		t.Fatalf("PUT with the admin token: %d %s", status, body)
	}
	if status, body := do(http.MethodGet, p.rows[2].http+"/kv/dev-secure", "", token); status != http.StatusOK || !strings.Contains(body, "from a token") {
		t.Fatalf("GET through node3 with the admin token: %d %s", status, body)
	}
	var out, stderr bytes.Buffer
	get := exec.Command(bin, "get", "dev-secure", "--addr", p.rows[1].http, "--certs-dir", clientDir)
	get.Env = devEnv()
	get.Stdout, get.Stderr = &out, &stderr
	if err := get.Run(); err != nil || strings.TrimSpace(out.String()) != "from a token" {
		t.Fatalf("ringkv get --certs-dir %s: %v, stdout %q, stderr %s", clientDir, err, out.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(caFile), "node1", "node.key")); err != nil {
		t.Fatalf("node1's key is not where dev said the certificates are: %v", err)
	}
	stopDev(t, p)
}
