package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// clusterCertsSpec is what `ringkv cert create-cluster` (and `ringkv dev --secure`)
// makes in one directory: the CA, one certs dir per node and one for an admin client.
type clusterCertsSpec struct {
	dir        string   // root: ca.crt and ca.key here
	nodes      []string // a sub-directory each, named after the node
	extraHosts []string // names and addresses every node certificate also carries
	// nodeOwner, when set (uid, gid), is given each node's dir and files: an init
	// step running as root writes them for the user the nodes run as, and nothing
	// else (the CA key, the admin client's key) becomes that user's.
	nodeOwner *[2]int
}

// loopbackHosts are in every node certificate create-cluster makes: a client on the
// node's own machine (`ringkv health` in a container, curl on the host a port is
// published on) reaches it by these.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// clientDirName is the sub-directory holding the admin client's certificate.
const clientDirName = "client"

// ensureClusterCerts makes what of spec is missing and returns the files it wrote: a
// CA unless <dir>/ca.crt exists (then its ca.key signs), <dir>/<node>/{ca.crt,
// node.crt,node.key} for each node without a node.crt (hosts: its name, loopback and
// extraHosts; valid 2 years, or until the CA ends if sooner), and <dir>/client/{ca.crt,client.admin.crt,client.admin.key}. Run again,
// it writes nothing: an init step may run at every start.
func ensureClusterCerts(spec clusterCertsSpec, now time.Time) ([]pemFile, error) {
	caCert, caKey := filepath.Join(spec.dir, caCertFile), filepath.Join(spec.dir, caKeyFile)
	var written []pemFile
	if _, err := os.Stat(caCert); errors.Is(err, os.ErrNotExist) {
		ca, key, err := createCA(defaultCALifetime, now)
		if err != nil {
			return nil, err
		}
		kf, err := keyFile(caKey, key)
		if err != nil {
			return nil, err
		}
		files := []pemFile{kf, certFile(caCert, ca)}
		if err := writeFiles(files, false); err != nil {
			return nil, err
		}
		written = append(written, files...)
	}
	ca, signer, err := loadCA(caCert, caKey)
	if err != nil {
		return written, err
	}
	// Certificates signed by a CA found in dir end with it if it ends sooner.
	lifetime := min(defaultCertLifetime, ca.NotAfter.Sub(now))
	type want struct {
		sub, certName, keyName string
		spec                   leafSpec
	}
	var wants []want
	for _, n := range spec.nodes {
		wants = append(wants, want{sub: n, certName: nodeCertFile, keyName: nodeKeyFile, spec: leafSpec{
			commonName: nodeCommonName, hosts: append(append([]string{n}, loopbackHosts...), spec.extraHosts...),
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, lifetime: lifetime,
		}})
	}
	wants = append(wants, want{sub: clientDirName, certName: clientCertFile("admin"), keyName: clientKeyFile("admin"), spec: leafSpec{
		commonName: "admin", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, lifetime: lifetime,
	}})
	for _, w := range wants {
		dir := filepath.Join(spec.dir, w.sub)
		if _, err := os.Stat(filepath.Join(dir, w.certName)); err == nil {
			continue
		}
		cert, key, err := createLeaf(ca, signer, w.spec, now)
		if err != nil {
			return written, fmt.Errorf("%s: %w", w.sub, err)
		}
		kf, err := keyFile(filepath.Join(dir, w.keyName), key)
		if err != nil {
			return written, err
		}
		files := []pemFile{kf, certFile(filepath.Join(dir, w.certName), cert), certFile(filepath.Join(dir, caCertFile), ca)}
		if err := writeFiles(files, true); err != nil {
			return written, err
		}
		written = append(written, files...)
		if spec.nodeOwner != nil && w.sub != clientDirName {
			for _, p := range []string{dir, files[0].path, files[1].path, files[2].path} {
				if err := os.Chown(p, spec.nodeOwner[0], spec.nodeOwner[1]); err != nil {
					return written, err
				}
			}
		}
	}
	return written, nil
}
