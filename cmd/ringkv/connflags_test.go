package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConnFlagsKeepATokenOffPlainHTTP(t *testing.T) {
	f := connFlags{token: "rkv_0123456789abcdef_x"}
	if got := f.base("10.0.0.1:8080"); got != "https://10.0.0.1:8080" {
		t.Fatalf("a token without a scheme: %s, want https", got)
	}
	if err := f.checkAddr("http://10.0.0.1:8080"); err == nil || !strings.Contains(err.Error(), "in clear") {
		t.Fatalf("a token over http beyond loopback: %v, want a refusal", err)
	}
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "https://10.0.0.1:8080", "10.0.0.1:8080"} {
		if err := f.checkAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if err := (&connFlags{}).checkAddr("http://10.0.0.1:8080"); err != nil {
		t.Errorf("no token, plain http: %v", err)
	}
	if got := (&connFlags{}).base("10.0.0.1:8080"); got != "http://10.0.0.1:8080" {
		t.Errorf("no TLS flag, no token: %s, want http", got)
	}
}

func TestConnFlagsPickNoCertificateWhenGivenAToken(t *testing.T) {
	dir := t.TempDir()
	spec := clusterCertsSpec{dir: dir, nodes: []string{"n1"}}
	if _, err := ensureClusterCerts(spec, time.Now()); err != nil {
		t.Fatal(err)
	}
	client := filepath.Join(dir, clientDirName)
	if _, err := os.Stat(filepath.Join(client, "client.admin.crt")); err != nil {
		t.Fatal(err)
	}
	withCert, err := (&connFlags{certsDir: client}).tlsConfig()
	if err != nil || withCert.GetClientCertificate == nil {
		t.Fatalf("--certs-dir alone: %v; want the admin certificate presented", err)
	}
	withToken, err := (&connFlags{certsDir: client, token: "rkv_0123456789abcdef_x"}).tlsConfig()
	if err != nil || withToken.GetClientCertificate != nil || withToken.RootCAs == nil {
		t.Fatalf("--certs-dir with a token: %v; want the CA trusted and no certificate presented", err)
	}
}
