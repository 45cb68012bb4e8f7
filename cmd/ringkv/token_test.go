package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs the binary with args and env (added to an environment without RINGKV_
// variables) and returns its exit status, stdout and stderr.
func runCLI(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(devEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("ringkv %s: %v", strings.Join(args, " "), err)
	return 0, "", ""
}

// TestTokenCommands runs `ringkv serve --auth --join-token` and manages its tokens with `ringkv
// token create|list|revoke` as a user would: the bootstrap admin token from the data
// dir, new tokens printed alone on stdout, each judged by role and prefix, a revoked
// one refused; no token ever in the node's log.
func TestTokenCommands(t *testing.T) {
	bin := devTestBinary(t)
	base := devFreeBase(t, 1)
	addr := fmt.Sprintf("127.0.0.1:%d", base)
	dataDir := filepath.Join(t.TempDir(), "n1")
	node := exec.Command(bin, "serve", "--auth", "--join-token", "cluster-secret-for-the-test", "--id", "n1", "--data-dir", dataDir, "--http-addr", addr,
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", base-1000), "--partitions", "8", "--groups", "2", "--replicas", "1")
	node.Env = devEnv()
	nodeLog := &lockedBuffer{}
	node.Stderr = nodeLog
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- node.Wait() }()
	t.Cleanup(func() {
		_ = node.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = node.Process.Kill()
			t.Errorf("serve did not stop within 30 s of SIGINT")
		}
	})
	tokenFile := filepath.Join(dataDir, "admin.token")
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		if _, ferr := os.Stat(tokenFile); err == nil && resp.StatusCode == http.StatusOK && ferr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready with its admin token in 60 s; log:\n%s", nodeLog)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(b))
	asAdmin := []string{"RINGKV_TOKEN=" + admin, "RINGKV_ADDR=http://" + addr} // no TLS: say http (a token defaults to https)
	onNode := []string{"RINGKV_ADDR=http://" + addr}

	// Without a valid token: refused (the node's own internal requests carry the join
	// secret, so they are a peer's; a client's are not).
	for _, tok := range []string{"", "rkv_0000000000000000_" + strings.Repeat("A", 43)} {
		for _, args := range [][]string{{"token", "list"}, {"get", "app/x"}, {"put", "app/x", "v"}} {
			if code, _, stderr := runCLI(t, bin, append(onNode, "RINGKV_TOKEN="+tok), args...); code != 2 || !strings.Contains(stderr, "401") {
				t.Fatalf("%v with token %q: exit %d, %s", args, tok, code, stderr)
			}
		}
	}

	code, reader, stderr := runCLI(t, bin, asAdmin, "token", "create", "--role", "read", "--name", "reader")
	reader = strings.TrimSpace(reader)
	if code != 0 || !strings.HasPrefix(reader, "rkv_") || strings.Contains(reader, "\n") || !strings.Contains(stderr, "role read") {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, reader, stderr)
	}
	code, out, stderr := runCLI(t, bin, onNode, "token", "create", "--token", admin, "--role", "readwrite", "--prefix", "app/", "--prefix", "a,b/", "-o", "json")
	var app struct {
		ID       string   `json:"id"`
		Token    string   `json:"token"`
		Prefixes []string `json:"prefixes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &app) != nil || app.Token == "" || len(app.Prefixes) != 2 || app.Prefixes[1] != "a,b/" {
		t.Fatalf("token create -o json: exit %d, %s %s", code, out, stderr)
	}
	readerID := strings.Split(reader, "_")[1]
	code, out, _ = runCLI(t, bin, asAdmin, "token", "list")
	if code != 0 || !strings.Contains(out, readerID) || !strings.Contains(out, app.ID) || !strings.Contains(out, "app/,a,b/") ||
		!strings.Contains(out, "admin") || strings.Contains(out, reader) || strings.Contains(out, app.Token) {
		t.Fatalf("token list: exit %d\n%s", code, out)
	}

	// Judged by role and prefix.
	for _, tc := range []struct {
		args     []string
		tok      string
		code     int
		inStderr string
	}{
		{[]string{"put", "app/x", "v"}, app.Token, 0, ""},
		{[]string{"put", "other", "v"}, app.Token, 2, "403"},
		{[]string{"put", "app/y", "v"}, reader, 2, "403"},
		{[]string{"get", "app/x"}, reader, 0, ""},
		{[]string{"nodes"}, reader, 2, "403"},
		{[]string{"nodes"}, admin, 0, ""},
		{[]string{"token", "list"}, app.Token, 2, "403"},
		{[]string{"token", "create", "--role", "admin", "--prefix", "a/"}, admin, 2, "400"},
		{[]string{"token", "create"}, admin, 2, "--role is required"},
	} {
		code, _, stderr := runCLI(t, bin, append(onNode, "RINGKV_TOKEN="+tc.tok), tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.inStderr) {
			t.Fatalf("%v: exit %d, stderr %q; want %d with %q", tc.args, code, stderr, tc.code, tc.inStderr)
		}
	}

	// Revoked: refused from then on; a second revocation finds nothing (exit 1).
	if code, out, stderr := runCLI(t, bin, asAdmin, "token", "revoke", readerID); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("token revoke: exit %d, %s %s", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, bin, append(onNode, "RINGKV_TOKEN="+reader), "get", "app/x"); code != 2 || !strings.Contains(stderr, "401") {
		t.Fatalf("get with a revoked token: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, bin, asAdmin, "token", "revoke", readerID); code != 1 || !strings.Contains(stderr, "404") {
		t.Fatalf("revoke again: exit %d, %s", code, stderr)
	}
	for _, tok := range []string{admin, reader, app.Token} {
		if secret := tok[len("rkv_0123456789abcdef_"):]; strings.Contains(nodeLog.String(), secret) {
			t.Fatalf("a token is in the node's log:\n%s", nodeLog)
		}
	}
}
