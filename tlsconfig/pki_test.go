package tlsconfig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test certificates shaped as `ringkv cert` makes them (cmd/ringkv/certs.go, package
// main, so not importable): an ECDSA P-256 CA with path length 0; node certificates
// CN=node with server and client usage; client certificates CN=<role>, client usage.

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var (
	serverAndClient = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	clientOnly      = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
)

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leafSpec: what to sign; zero times mean valid from an hour ago for a day.
type leafSpec struct {
	cn        string
	usages    []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
}

// sign returns a certificate and key, PEM encoded, valid for 127.0.0.1 and localhost.
func (ca *testCA) sign(t testing.TB, s leafSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	if s.notBefore.IsZero() {
		s.notBefore, s.notAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: s.cn},
		NotBefore: s.notBefore, NotAfter: s.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: s.usages,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
}

func (ca *testCA) node(t testing.TB) (certPEM, keyPEM []byte) {
	return ca.sign(t, leafSpec{cn: NodeCommonName, usages: serverAndClient})
}

func (ca *testCA) client(t testing.TB, role string) (certPEM, keyPEM []byte) {
	return ca.sign(t, leafSpec{cn: role, usages: clientOnly})
}

// writeAtomic replaces path's content by rename, as `ringkv cert` writes its files.
func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// certsDir writes a certs dir holding caPEM and a certificate and key.
func certsDir(t testing.TB, caPEM, certPEM, keyPEM []byte) Files {
	t.Helper()
	f := CertsDir(t.TempDir())
	writeAtomic(t, f.CA, caPEM)
	writeAtomic(t, f.Cert, certPEM)
	writeAtomic(t, f.Key, keyPEM)
	return f
}

// nodeMaterial is a LoadNode of a fresh node certificate of ca.
func nodeMaterial(t testing.TB, ca *testCA) *Material {
	t.Helper()
	c, k := ca.node(t)
	m, err := LoadNode(certsDir(t, ca.pem, c, k), quiet)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var quiet = slog.New(slog.DiscardHandler)

// logBuffer is a slog text log a test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// handshake runs a TLS handshake between server and client configs over loopback
// TCP and returns each side's error and the server's view of the connection. The
// client reads after its handshake so that a refusal the server sends after the
// client's Finished (TLS 1.3 checks the client certificate then) reaches it.
func handshake(t testing.TB, server, client *tls.Config) (serverErr, clientErr error, state tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, server)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		_, err = tc.Write([]byte{1}) // the client's proof that the server accepted it
		done <- result{err: err, state: tc.ConnectionState()}
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	r := <-done
	return r.err, err, r.state
}

func mustContain(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}
