package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The cert tests run the real binary, as a user would: `ringkv cert ...`.

// runCert runs `ringkv cert args...` and returns its exit status and output.
func runCert(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"cert"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()} // no stray RINGKV_ settings
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("ringkv cert %v: %v", args, err)
	}
	return 0, out.String()
}

func mustCert(t *testing.T, bin string, args ...string) {
	t.Helper()
	if code, out := runCert(t, bin, args...); code != 0 {
		t.Fatalf("ringkv cert %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func caPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(dir, caCertFile)))
	return pool
}

// TestCertCommandsMakeAVerifiableCluster: create-ca, create-node and create-client
// write the CockroachDB file names with keys 0600; the node certificate chains to the
// CA for each of its hosts as a server and as a client; the client certificate
// carries its role and chains as a client only.
func TestCertCommandsMakeAVerifiableCluster(t *testing.T) {
	bin := devTestBinary(t)
	dir := filepath.Join(t.TempDir(), "certs")
	mustCert(t, bin, "create-ca", "--certs-dir", dir)
	mustCert(t, bin, "create-node", "--certs-dir", dir, "--host", "node1.example,127.0.0.1", "--host", "localhost", "--host", "::1")
	mustCert(t, bin, "create-client", "--certs-dir", dir, "--role", "admin")
	mustCert(t, bin, "create-client", "--certs-dir", dir, "--role", "read", "--lifetime", "720h")

	for name, mode := range map[string]os.FileMode{
		"ca.crt": 0o644, "ca.key": 0o600, "node.crt": 0o644, "node.key": 0o600,
		"client.admin.crt": 0o644, "client.admin.key": 0o600, "client.read.crt": 0o644, "client.read.key": 0o600,
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %04o, want %04o", name, st.Mode().Perm(), mode)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("certs dir: %v mode %v, want 0700", err, st.Mode().Perm())
	}

	ca := readCert(t, filepath.Join(dir, caCertFile))
	if !ca.IsCA || ca.NotAfter.Sub(time.Now()) < 9*365*24*time.Hour {
		t.Errorf("CA: IsCA %v, valid until %s; want a CA for 10 years", ca.IsCA, ca.NotAfter)
	}
	pool := caPool(t, dir)
	node := readCert(t, filepath.Join(dir, nodeCertFile))
	if node.Subject.CommonName != "node" {
		t.Errorf("node CN %q, want node", node.Subject.CommonName)
	}
	if d := time.Until(node.NotAfter); d < 729*24*time.Hour || d > 731*24*time.Hour {
		t.Errorf("node certificate valid for %s, want 2 years", d)
	}
	for _, host := range []string{"node1.example", "127.0.0.1", "localhost", "::1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := node.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("node certificate for %s, usage %v: %v", host, usage, err)
			}
		}
	}
	if _, err := node.Verify(x509.VerifyOptions{DNSName: "evil.example", Roots: pool}); err == nil {
		t.Error("node certificate verified for a host it was not made for")
	}

	for role, lifetime := range map[string]time.Duration{"admin": 2 * 365 * 24 * time.Hour, "read": 720 * time.Hour} {
		c := readCert(t, filepath.Join(dir, "client."+role+".crt"))
		if c.Subject.CommonName != role {
			t.Errorf("client.%s.crt: CN %q, want the role", role, c.Subject.CommonName)
		}
		if d := time.Until(c.NotAfter); d < lifetime-2*time.Hour || d > lifetime+time.Hour {
			t.Errorf("client.%s.crt valid for %s, want %s", role, d, lifetime)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("client.%s.crt as a client: %v", role, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Errorf("client.%s.crt verified as a server certificate", role)
		}
	}
}

// TestCertFilesAreNotOverwritten: a second create refuses, writes nothing and leaves
// the first files as they were; --overwrite replaces them. Bad flags exit 2 or fail.
func TestCertFilesAreNotOverwritten(t *testing.T) {
	bin := devTestBinary(t)
	dir := t.TempDir()
	mustCert(t, bin, "create-ca", "--certs-dir", dir)
	mustCert(t, bin, "create-node", "--certs-dir", dir, "--host", "node1")
	key0, _ := os.ReadFile(filepath.Join(dir, nodeKeyFile))
	ca0, _ := os.ReadFile(filepath.Join(dir, caKeyFile))

	for _, args := range [][]string{
		{"create-ca", "--certs-dir", dir},
		{"create-node", "--certs-dir", dir, "--host", "node2"},
	} {
		code, out := runCert(t, bin, args...)
		if code == 0 || !strings.Contains(out, "already exists") {
			t.Errorf("%v over existing files: exit %d %q, want a refusal", args, code, out)
		}
	}
	if key, _ := os.ReadFile(filepath.Join(dir, nodeKeyFile)); !bytes.Equal(key, key0) {
		t.Error("a refused create-node changed node.key")
	}
	if key, _ := os.ReadFile(filepath.Join(dir, caKeyFile)); !bytes.Equal(key, ca0) {
		t.Error("a refused create-ca changed ca.key")
	}
	if node := readCert(t, filepath.Join(dir, nodeCertFile)); node.DNSNames[0] != "node1" {
		t.Errorf("a refused create-node changed node.crt: %v", node.DNSNames)
	}
	mustCert(t, bin, "create-node", "--certs-dir", dir, "--host", "node2", "--overwrite")
	if node := readCert(t, filepath.Join(dir, nodeCertFile)); node.DNSNames[0] != "node2" {
		t.Errorf("--overwrite left node.crt for %v", node.DNSNames)
	}
	if st, _ := os.Stat(filepath.Join(dir, nodeKeyFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("overwritten node.key mode %04o", st.Mode().Perm())
	}
	matches, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}

	for _, args := range [][]string{
		{"create-client", "--certs-dir", dir, "--role", "root"},
		{"create-client", "--certs-dir", dir},
		{"create-node", "--certs-dir", dir},
		{"create-node", "--host", "x"},
		{"create-node", "--certs-dir", dir, "--host", "x", "--lifetime", "100000h", "--overwrite"}, // outlives the CA
		{"create-node", "--certs-dir", t.TempDir(), "--host", "x"},                                 // no CA there
		{"create-everything", "--certs-dir", dir},
	} {
		if code, out := runCert(t, bin, args...); code == 0 {
			t.Errorf("%v: exit 0, want a failure\n%s", args, out)
		}
	}
}

// TestCertCAKeyElsewhere: with --ca-key the CA key lives outside the certs dir, which
// then holds no ca.key; signing needs that key, and refuses another CA's.
func TestCertCAKeyElsewhere(t *testing.T) {
	bin := devTestBinary(t)
	dir, safe := t.TempDir(), t.TempDir()
	caKey := filepath.Join(safe, "ca.key")
	mustCert(t, bin, "create-ca", "--certs-dir", dir, "--ca-key", caKey)
	if _, err := os.Stat(filepath.Join(dir, caKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ca.key in the certs dir: %v", err)
	}
	if st, err := os.Stat(caKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("--ca-key file: %v", err)
	}
	if code, _ := runCert(t, bin, "create-node", "--certs-dir", dir, "--host", "n1"); code == 0 {
		t.Error("create-node without the CA key succeeded")
	}
	other := t.TempDir()
	mustCert(t, bin, "create-ca", "--certs-dir", other)
	if code, out := runCert(t, bin, "create-node", "--certs-dir", dir, "--host", "n1", "--ca-key", filepath.Join(other, caKeyFile)); code == 0 || !strings.Contains(out, "does not belong") {
		t.Errorf("create-node with another CA's key: exit %d %q", code, out)
	}
	mustCert(t, bin, "create-node", "--certs-dir", dir, "--host", "n1", "--ca-key", caKey)
	if _, err := readCert(t, filepath.Join(dir, nodeCertFile)).Verify(x509.VerifyOptions{DNSName: "n1", Roots: caPool(t, dir)}); err != nil {
		t.Error(err)
	}
}

// TestCertTLSHandshake: a node's files copied into another directory serve mutual
// TLS: a client with client.admin.crt (or a peer with node.crt) and the CA completes
// the handshake and is seen as its CN; a client certificate of another CA, or none,
// is refused.
func TestCertTLSHandshake(t *testing.T) {
	bin := devTestBinary(t)
	dir := t.TempDir()
	mustCert(t, bin, "create-ca", "--certs-dir", dir)
	mustCert(t, bin, "create-node", "--certs-dir", dir, "--host", "node1.example,127.0.0.1")
	mustCert(t, bin, "create-client", "--certs-dir", dir, "--role", "admin")
	evil := t.TempDir()
	mustCert(t, bin, "create-ca", "--certs-dir", evil)
	mustCert(t, bin, "create-client", "--certs-dir", evil, "--role", "admin")

	// "Another machine": only ca.crt, node.crt and node.key, copied.
	machine := t.TempDir()
	for _, f := range []string{caCertFile, nodeCertFile, nodeKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(machine, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(machine, nodeCertFile), filepath.Join(machine, nodeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: caPool(t, machine), MinVersion: tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					peers <- "refused: " + err.Error()
					return
				}
				peers <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
				_, _ = io.WriteString(tc, "ok")
			}()
		}
	}()

	dial := func(certDir, name, serverName string) (string, error) {
		cfg := &tls.Config{RootCAs: caPool(t, dir), ServerName: serverName, MinVersion: tls.VersionTLS13}
		if name != "" {
			cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		// With TLS 1.3 the server checks the client's certificate after the client's
		// handshake is done: the refusal shows on the first read.
		b, err := io.ReadAll(conn)
		if err != nil && len(b) == 0 {
			return "", err
		}
		return string(b), nil
	}
	for _, c := range []struct {
		certDir, name, serverName, wantPeer string
	}{
		{dir, "client.admin", "node1.example", "admin"},
		{dir, "client.admin", "127.0.0.1", "admin"},
		{dir, "node", "node1.example", "node"}, // a peer node
	} {
		got, err := dial(c.certDir, c.name, c.serverName)
		if err != nil || got != "ok" {
			t.Fatalf("%s to %s: %q %v, want a handshake", c.name, c.serverName, got, err)
		}
		if p := <-peers; p != c.wantPeer {
			t.Errorf("%s: the server saw %q, want %q", c.name, p, c.wantPeer)
		}
	}
	for _, c := range []struct{ certDir, name, why string }{
		{evil, "client.admin", "another CA's client certificate"},
		{dir, "", "no client certificate"},
	} {
		if got, err := dial(c.certDir, c.name, "node1.example"); err == nil {
			t.Errorf("%s: handshake and read %q, want a refusal", c.why, got)
		}
		if p := <-peers; !strings.HasPrefix(p, "refused") {
			t.Errorf("%s: the server saw %q, want a refused handshake", c.why, p)
		}
	}
	// The client checks the server too: a name the node certificate does not carry.
	if _, err := dial(dir, "client.admin", "evil.example"); err == nil {
		t.Error("the client accepted a node certificate for another name")
	}
	<-peers
}
