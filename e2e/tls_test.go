package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Secure clusters (startSecureProcCluster) run with TLS and authentication on, with
// certificates made once per test process: a CA, one node certificate every node
// uses (its names are loopback's), and an admin client certificate that every client
// of the tests presents, so the tests' requests are authenticated without tokens.
// The node certificates are the same kind `ringkv cert create-node` makes (CN=node,
// TLS server and client usages); cmd/ringkv/cert_test.go checks that command itself.

// testCerts is the directory holding ca.crt, ca.key, node.crt, node.key, client.admin.crt and
// client.admin.key; clientTLS trusts the CA and presents the admin certificate.
var (
	testCerts string
	clientTLS *tls.Config
)

func init() {
	dir, err := os.MkdirTemp("", "ringkv-e2e-certs-")
	if err != nil {
		panic(err)
	}
	if err := makeTestCerts(dir); err != nil {
		panic(fmt.Sprintf("e2e certificates: %v", err))
	}
	testCerts = dir
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	pool.AppendCertsFromPEM(caPEM)
	admin, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.admin.crt"), filepath.Join(dir, "client.admin.key"))
	if err != nil {
		panic(err)
	}
	clientTLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{admin}}
	// Every client of the tests (sharedTransport's and http.Get's) can then talk to a
	// secure cluster; plain ones are reached over http:// as before.
	sharedTransport.TLSClientConfig = clientTLS
	http.DefaultTransport.(*http.Transport).TLSClientConfig = clientTLS
	bulkClient.Transport.(*http.Transport).TLSClientConfig = clientTLS
	tokenClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// testCA is a CA the tests sign with: the process's own (e2eCA) or another cluster's.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var e2eCA *testCA

// newTestCA makes a CA valid for a day.
func newTestCA(cn string) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}, err
}

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	return n
}

// writeCA writes ca.crt and ca.key into dir.
func (ca *testCA) writeCA(dir string) error {
	kder, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", ca.cert.Raw, 0o644); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "ca.key"), "PRIVATE KEY", kder, 0o600)
}

// issueNode writes a node certificate (CN=node, TLS server and client, loopback's
// names) as <dir>/<name>.crt and .key; it returns the certificate's serial.
func (ca *testCA) issueNode(dir, name string) (*big.Int, error) {
	return ca.issue(dir, name, "node", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, true)
}

// issue writes a certificate with subject CN cn as <dir>/<name>.crt and .key.
func (ca *testCA) issue(dir, name, cn string, usages []x509.ExtKeyUsage, loopback bool) (*big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(23 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages,
	}
	if loopback {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return tmpl.SerialNumber, writePEM(filepath.Join(dir, name+".key"), "PRIVATE KEY", kder, 0o600)
}

// makeTestCerts makes e2eCA and writes it (ca.key kept so that compose's certs step
// can sign with it: docker_test.go), the node and the admin client certificates.
func makeTestCerts(dir string) error {
	ca, err := newTestCA("ringkv e2e CA")
	if err != nil {
		return err
	}
	e2eCA = ca
	if err := ca.writeCA(dir); err != nil {
		return err
	}
	if _, err := ca.issueNode(dir, "node"); err != nil {
		return err
	}
	_, err = ca.issue(dir, "client.admin", "admin", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false)
	return err
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// nodeCertsDir gives a node of c its own copy of the node certificate (a node under
// its own user id must own its key, which is 0600).
func (c *cluster) nodeCertsDir(id string) string {
	c.t.Helper()
	dir := filepath.Join(c.dir, id+"-certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "node.crt", "node.key"} {
		b, err := os.ReadFile(filepath.Join(testCerts, f))
		if err != nil {
			c.t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if f == "node.key" {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, mode); err != nil {
			c.t.Fatal(err)
		}
	}
	return dir
}
