package tlsconfig

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadValidatesAndNamesTheFileAtFault(t *testing.T) {
	ca, other := newCA(t, "ringkv CA"), newCA(t, "another CA")
	nodeCert, nodeKey := ca.node(t)
	_, otherKey := ca.node(t)
	adminCert, adminKey := ca.client(t, "admin")
	foreignCert, foreignKey := other.node(t)
	expiredCert, expiredKey := ca.sign(t, leafSpec{cn: NodeCommonName, usages: serverAndClient,
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	futureCert, futureKey := ca.sign(t, leafSpec{cn: NodeCommonName, usages: serverAndClient,
		notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(48 * time.Hour)})
	serverOnlyCert, serverOnlyKey := ca.sign(t, leafSpec{cn: NodeCommonName,
		usages: serverAndClient[:1]})
	bundle := append(append([]byte{}, other.pem...), ca.pem...)

	for _, tc := range []struct {
		name           string
		ca, cert, key  []byte
		node           bool
		wantIs         error
		wantFile       string // "ca", "cert" or "key": the path the error must name
		wantSubstrings []string
	}{
		{name: "node certificate", ca: ca.pem, cert: nodeCert, key: nodeKey, node: true},
		{name: "CA bundle of two CAs", ca: bundle, cert: nodeCert, key: nodeKey, node: true},
		{name: "client certificate without the node check", ca: ca.pem, cert: adminCert, key: adminKey},
		{name: "key of another certificate", ca: ca.pem, cert: nodeCert, key: otherKey, wantFile: "key",
			wantSubstrings: []string{"private key does not match"}},
		{name: "not a PEM certificate", ca: ca.pem, cert: []byte("garbage"), key: nodeKey, wantFile: "cert"},
		{name: "CA file without certificates", ca: []byte("nothing here"), cert: nodeCert, key: nodeKey,
			wantFile: "ca", wantSubstrings: []string{"no PEM CERTIFICATE"}},
		{name: "CA file holding a leaf", ca: nodeCert, cert: nodeCert, key: nodeKey, wantFile: "ca",
			wantSubstrings: []string{"not a CA"}},
		{name: "expired", ca: ca.pem, cert: expiredCert, key: expiredKey, wantIs: ErrExpired, wantFile: "cert"},
		{name: "not yet valid", ca: ca.pem, cert: futureCert, key: futureKey, wantIs: ErrExpired, wantFile: "cert"},
		{name: "another CA's certificate", ca: ca.pem, cert: foreignCert, key: foreignKey, wantIs: ErrUntrusted, wantFile: "cert"},
		{name: "client certificate as node", ca: ca.pem, cert: adminCert, key: adminKey, node: true, wantIs: ErrNotNode,
			wantSubstrings: []string{`CN is "admin"`}},
		{name: "node CN without client usage", ca: ca.pem, cert: serverOnlyCert, key: serverOnlyKey, node: true, wantIs: ErrNotNode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := certsDir(t, tc.ca, tc.cert, tc.key)
			load := Load
			if tc.node {
				load = LoadNode
			}
			m, err := load(f, quiet)
			if tc.wantIs == nil && tc.wantFile == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Leaf() == nil {
					t.Fatal("no leaf")
				}
				return
			}
			if err == nil {
				t.Fatal("loaded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("error %q is not %v", err, tc.wantIs)
			}
			if path := map[string]string{"ca": f.CA, "cert": f.Cert, "key": f.Key}[tc.wantFile]; path != "" {
				mustContain(t, err, path)
			}
			mustContain(t, err, tc.wantSubstrings...)
		})
	}
}

func TestLoadNamesAMissingFile(t *testing.T) {
	ca := newCA(t, "ringkv CA")
	c, k := ca.node(t)
	for _, which := range []string{"ca", "cert", "key"} {
		t.Run(which, func(t *testing.T) {
			f := certsDir(t, ca.pem, c, k)
			path := map[string]string{"ca": f.CA, "cert": f.Cert, "key": f.Key}[which]
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			_, err := LoadNode(f, quiet)
			mustContain(t, err, path)
			if !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("error %q is not ErrNotExist", err)
			}
		})
	}
}

func TestLoadLogsSerialAndWarnsOfNearExpiry(t *testing.T) {
	ca := newCA(t, "ringkv CA")
	c, k := ca.sign(t, leafSpec{cn: NodeCommonName, usages: serverAndClient,
		notBefore: time.Now().Add(-time.Hour), notAfter: time.Now().Add(24 * time.Hour)})
	var log logBuffer
	m, err := LoadNode(certsDir(t, ca.pem, c, k), log.logger())
	if err != nil {
		t.Fatal(err)
	}
	out := log.String()
	for _, want := range []string{"level=INFO msg=\"TLS certificate loaded\"", "serial=" + m.Leaf().SerialNumber.Text(16),
		"level=WARN msg=\"TLS certificate expires soon\""} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestCertsDirNamesTheNodeFiles(t *testing.T) {
	f := CertsDir("/etc/ringkv/certs")
	if f.CA != "/etc/ringkv/certs/ca.crt" || f.Cert != "/etc/ringkv/certs/node.crt" || f.Key != "/etc/ringkv/certs/node.key" {
		t.Fatalf("%+v", f)
	}
}
