package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// A cluster's certificates, made with crypto/x509 alone and laid out as CockroachDB
// lays out its certs dir (`cockroach cert create-ca|create-node|create-client`):
//
//	ca.crt             the cluster's CA certificate (public; every node and client has it)
//	ca.key             its key (0600); kept elsewhere with --ca-key
//	node.crt node.key  a node's certificate: CN=node, SANs = its --host names and IPs,
//	                   usable as TLS server and TLS client (peer connections go both ways)
//	client.<role>.crt client.<role>.key
//	                   a client's certificate: CN=<role> (admin, readwrite or read),
//	                   TLS client usage only
//
// Keys are ECDSA P-256 in PKCS#8 PEM ("PRIVATE KEY"), written 0600; certificates
// 0644. Nothing refers to a path or a machine, so a node's three files (ca.crt,
// node.crt, node.key) can be copied into another machine's certs dir as they are.

// File names in a certs dir.
const (
	caCertFile   = "ca.crt"
	caKeyFile    = "ca.key"
	nodeCertFile = "node.crt"
	nodeKeyFile  = "node.key"
	// nodeCommonName is a node certificate's subject CN.
	nodeCommonName = "node"
)

// Roles a client certificate may carry, as its subject CN.
var clientRoles = []string{"admin", "readwrite", "read"}

// Default lifetimes: the CA outlives the certificates it signs, which are rotated
// more often (CockroachDB: 10 years and 5; ringkv signs for 2).
const (
	defaultCALifetime   = 10 * 365 * 24 * time.Hour
	defaultCertLifetime = 2 * 365 * 24 * time.Hour
	// backdate lets a certificate be used at once on a machine whose clock is a little
	// behind the one that made it.
	backdate = time.Hour
)

// errExists: a file to write is there already and --overwrite was not given.
var errExists = errors.New("already exists (--overwrite replaces it)")

func clientCertFile(role string) string { return "client." + role + ".crt" }
func clientKeyFile(role string) string  { return "client." + role + ".key" }

// newKey makes an ECDSA P-256 key.
func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// serialNumber is a random 128-bit serial (RFC 5280 §4.1.2.2 allows up to 20 octets;
// randomness keeps two certificates of one CA apart without a counter).
func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// keyAndSerial makes a new certificate's key and serial number.
func keyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := serialNumber()
	return key, serial, err
}

// createCA makes a self-signed CA certificate valid for lifetime from now.
func createCA(lifetime time.Duration, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, serial, err := keyAndSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"ringkv"}, CommonName: "ringkv CA"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs node and client certificates, no intermediates
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// leafSpec says what a signed certificate is for.
type leafSpec struct {
	commonName string
	hosts      []string // DNS names and IP addresses (node certificates)
	usages     []x509.ExtKeyUsage
	lifetime   time.Duration
}

// createLeaf makes a key and a certificate for spec, signed by the CA. The
// certificate may not outlive the CA: a chain with an expired CA fails anyway, and
// saying so now beats finding out then.
func createLeaf(ca *x509.Certificate, caKey crypto.Signer, spec leafSpec, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	notAfter := now.Add(spec.lifetime)
	if notAfter.After(ca.NotAfter) {
		return nil, nil, fmt.Errorf("a certificate valid until %s would outlive the CA (valid until %s): give a shorter --lifetime or make a new CA",
			notAfter.UTC().Format(time.DateOnly), ca.NotAfter.UTC().Format(time.DateOnly))
	}
	key, serial, err := keyAndSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"ringkv"}, CommonName: spec.commonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  spec.usages,
	}
	for _, h := range spec.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// loadCA reads the CA certificate and its key, and checks that they belong together.
func loadCA(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA certificate (make one with ringkv cert create-ca): %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", certPath)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA key (--ca-key): %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", keyPath)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		if parsed, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
		}
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("the key %s does not belong to the CA certificate %s", keyPath, certPath)
	}
	return ca, key, nil
}

// pemFile is one file to write.
type pemFile struct {
	path  string
	block *pem.Block
	mode  os.FileMode
}

func certFile(path string, c *x509.Certificate) pemFile {
	return pemFile{path: path, block: &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}, mode: 0o644}
}

func keyFile(path string, k *ecdsa.PrivateKey) (pemFile, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	return pemFile{path: path, block: &pem.Block{Type: "PRIVATE KEY", Bytes: der}, mode: 0o600}, err
}

// writeFiles writes files, none unless all may be written: with overwrite false, any
// that exists stops them all before one is written. Each file is written to a
// temporary file with its mode in its directory and renamed into place, so a reader
// never sees half a key and a key is never readable by others, not even briefly.
func writeFiles(files []pemFile, overwrite bool) error {
	if !overwrite {
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				return fmt.Errorf("%s %w", f.path, errExists)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	for _, f := range files {
		if err := writeFile(f, overwrite); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(f pemFile, overwrite bool) error {
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(f.mode); err != nil {
		tmp.Close()
		return err
	}
	if err := pem.Encode(tmp, f.block); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if !overwrite {
		// Link fails if the name appeared since the check: never replace what another
		// command just wrote.
		if err := os.Link(tmp.Name(), f.path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s %w", f.path, errExists)
			}
			return err
		}
		return nil
	}
	return os.Rename(tmp.Name(), f.path)
}
