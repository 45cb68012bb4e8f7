// Package tlsconfig holds a node's TLS material (a CA bundle, a certificate and its
// key), reloadable without a restart, and makes the crypto/tls configurations of each
// of ringkv's connections from it: the HTTP port (server TLS, client certificates
// optional), the cluster port (mutual TLS between node certificates only) and the
// dialling side of both. Every configuration reads the material current at each
// handshake, so a reload (SIGHUP, or the files changing) applies to new connections;
// connections already open keep the material they were made with.
//
// It imports nothing of the project. Its row in DESIGN.md's package table (proposed;
// the lead records it there):
//
//	| `tlsconfig` | loading, validating and reloading TLS material; TLS configs for the HTTP port, the cluster port (mutual TLS, node certificates only) and clients; who a verified peer is | nothing of the project |
//
// The certificates are those `ringkv cert` makes (docs/SECURITY.md): a node
// certificate has CN=node and both the TLS server and TLS client usages; a client
// certificate has CN=<role> and the TLS client usage only.
package tlsconfig

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// NodeCommonName is the subject CN of a node certificate: a TLS peer whose verified
// certificate carries it is another node of the cluster.
const NodeCommonName = "node"

// Sentinel errors of loading, for errors.Is; the messages name the file.
var (
	// ErrExpired: a certificate is past its NotAfter or before its NotBefore.
	ErrExpired = errors.New("certificate expired or not yet valid")
	// ErrUntrusted: a certificate does not chain to the CA bundle.
	ErrUntrusted = errors.New("certificate does not chain to the CA")
	// ErrNotNode: LoadNode was given a certificate that is not a node certificate.
	ErrNotNode = errors.New("not a node certificate (CN=node, TLS server and client usage)")
)

// Files names the PEM files of a node's TLS material.
type Files struct {
	CA   string // one or more CA certificates (during a CA rotation: the old and the new)
	Cert string // the certificate, optionally followed by intermediates
	Key  string // its private key
}

// CertsDir is the files a certs dir made by `ringkv cert` holds for a node:
// ca.crt, node.crt and node.key.
func CertsDir(dir string) Files {
	return Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "node.crt"), Key: filepath.Join(dir, "node.key")}
}

func (f Files) paths() []string { return []string{f.CA, f.Cert, f.Key} }

// snapshot is one loaded, validated version of the material; it is never modified.
type snapshot struct {
	cert   *tls.Certificate // Leaf set
	pool   *x509.CertPool
	stamps []os.FileInfo // the files as they were just before they were read
	// ticketKey encrypts the HTTP port's session tickets: a new key per snapshot, so a
	// session begun under an old CA bundle cannot be resumed after a reload.
	ticketKey [32]byte
}

// readSnapshot reads and validates f as of now. node additionally requires a node
// certificate (CN=node, usable as TLS server and TLS client).
func readSnapshot(f Files, node bool, now time.Time) (*snapshot, error) {
	stamps := statFiles(f)
	pool, err := readCAs(f.CA)
	if err != nil {
		return nil, err
	}
	pair, err := readPair(f.Cert, f.Key, now)
	if err != nil {
		return nil, err
	}
	leaf := pair.Leaf
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s: intermediate certificate: %w", f.Cert, err)
		}
		inter.AddCert(c)
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if node {
		if leaf.Subject.CommonName != NodeCommonName {
			return nil, fmt.Errorf("%s: %w: its CN is %q", f.Cert, ErrNotNode, leaf.Subject.CommonName)
		}
		// A node serves its peers and dials them: its chain must allow both.
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	for _, u := range usages {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{u}})
		var inv x509.CertificateInvalidError
		switch {
		case err == nil:
		case node && errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
			return nil, fmt.Errorf("%s: %w: %v", f.Cert, ErrNotNode, err)
		default:
			return nil, fmt.Errorf("%s: %w %s: %v", f.Cert, ErrUntrusted, f.CA, err)
		}
	}
	s := &snapshot{cert: pair, pool: pool, stamps: stamps}
	_, _ = rand.Read(s.ticketKey[:]) // never fails (crypto/rand, Go 1.24+)
	return s, nil
}

// readPair reads a certificate and its key, checks that they match and that the
// certificate is valid at now; Leaf is set.
func readPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%s: %w: valid from %s until %s", certFile, ErrExpired,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &pair, nil
}

// readCAs reads a PEM bundle of CA certificates.
func readCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("%s: %q is not a CA certificate", path, c.Subject.CommonName)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return pool, nil
}

// statFiles notes each file's identity, size and modification time (nil when it
// cannot be read), to tell when one changed.
func statFiles(f Files) []os.FileInfo {
	out := make([]os.FileInfo, 0, 3)
	for _, p := range f.paths() {
		fi, err := os.Stat(p)
		if err != nil {
			fi = nil
		}
		out = append(out, fi)
	}
	return out
}

// sameFiles reports whether two statFiles results describe the same files. A file
// replaced by rename (what `ringkv cert` does) is another inode; one rewritten in
// place changes its size or modification time.
func sameFiles(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == nil || y == nil {
			if x != y {
				return false
			}
			continue
		}
		if !os.SameFile(x, y) || x.Size() != y.Size() || !x.ModTime().Equal(y.ModTime()) {
			return false
		}
	}
	return true
}
