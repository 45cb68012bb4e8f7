package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testCA issues client certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// certPeer is what a node's Peer does with TLS: a verified certificate named node.
func certPeer(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && r.TLS.VerifiedChains[0][0].Subject.CommonName == "node"
}

// TestClientCertificateRoles: over TLS, a client certificate of the node's CA whose
// name is a role is that role's credential; a node's certificate makes a peer; a
// certificate of another CA does not get through the handshake.
func TestClientCertificateRoles(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	srv := httptest.NewUnstartedServer(authServer(t, io.Discard, certPeer))
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	defer srv.Close()
	clientWith := func(cert *tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}
	certs := map[string]tls.Certificate{}
	for _, cn := range []string{"read", "readwrite", "admin", "node", "somebody"} {
		certs[cn] = ca.client(t, cn)
	}
	for _, tc := range []struct {
		cert           string
		method, target string
		hdr            []string
		want           int
	}{
		{"", "GET", "/kv/app/a", nil, 401},
		{"read", "GET", "/kv/app/a", nil, 200},
		{"read", "GET", "/kv/other/o", nil, 200}, // a certificate's role covers every key
		{"read", "PUT", "/kv/app/a", nil, 403},
		{"readwrite", "PUT", "/kv/app/a", nil, 200},
		{"readwrite", "GET", "/admin/nodes", nil, 403},
		{"admin", "GET", "/admin/nodes", nil, 200},
		{"admin", "GET", "/internal/status", nil, 403},
		{"node", "GET", "/internal/status", nil, 200},
		{"node", "PUT", "/kv/x", nil, 201},                       // a peer forwarding a client's write
		{"somebody", "GET", "/kv/app/a", nil, 401},               // no role in the name: no credential
		{"somebody", "GET", "/kv/app/a", bearerOf(tokRead), 200}, // then a token counts
		{"read", "PUT", "/kv/app/a", bearerOf(tokAdmin), 200},    // a token sent is the credential
		{"admin", "PUT", "/kv/app/a", bearerOf(tokRead), 403},    // it lends no more rights than it has
		{"admin", "GET", "/kv/app/a", bearerOf(tokRevoked), 401}, // nor does a revoked one pass
		{"node", "GET", "/kv/app/a", bearerOf(tokRevoked), 401},  // a peer's bad token is judged
		{"", "GET", "/kv?prefix=app/", []string{forwardedHeader, "n2"}, 401},
	} {
		t.Run(tc.cert+" "+tc.method+" "+tc.target, func(t *testing.T) {
			var c *tls.Certificate
			if tc.cert != "" {
				cert := certs[tc.cert]
				c = &cert
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.target, strings.NewReader("v"))
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := clientWith(c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	foreign := other.client(t, "admin")
	if resp, err := clientWith(&foreign).Get(srv.URL + "/kv/app/a"); err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate of another CA was accepted: %d", resp.StatusCode)
	}
}
