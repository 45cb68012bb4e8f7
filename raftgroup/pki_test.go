package raftgroup

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// Certificates for the mux's TLS tests, shaped as `ringkv cert` makes them (node:
// CN=node, server and client usage; client: CN=<role>, client usage). raftgroup
// imports nothing of the project, so the configs below restate, in a few lines,
// the cluster port's policy that tlsconfig implements and tests against reloads:
// a client certificate of the cluster's CA with CN=node, nothing else.

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(tb testing.TB) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ringkv CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// sign makes a certificate with CN=cn for 127.0.0.1, usable as TLS client (and as
// TLS server when cn is "node").
func (ca *testCA) sign(tb testing.TB, cn string) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if cn == "node" {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// requireNodePeer refuses a peer whose verified certificate is not CN=node.
func requireNodePeer(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 || cs.VerifiedChains[0][0].Subject.CommonName != "node" {
		return errors.New("not a node certificate")
	}
	return nil
}

// muxTLS is a node's MuxTLS: it serves and presents cert, and trusts ca.
func (ca *testCA) muxTLS(cert tls.Certificate) MuxTLS {
	return MuxTLS{
		Server: &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(), VerifyConnection: requireNodePeer,
			SessionTicketsDisabled: true,
		},
		Client: func(serverName string) *tls.Config {
			return &tls.Config{
				MinVersion: tls.VersionTLS13, ServerName: serverName, RootCAs: ca.pool(),
				Certificates: []tls.Certificate{cert}, VerifyConnection: requireNodePeer,
			}
		},
	}
}
