package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const certUsage = `Usage:
  ringkv cert create-ca     --certs-dir DIR [--ca-key FILE] [--lifetime 87600h] [--overwrite]
  ringkv cert create-node   --certs-dir DIR --host NAME|IP[,NAME|IP...] [--ca-key FILE] [--lifetime 17520h] [--overwrite]
  ringkv cert create-client --certs-dir DIR --role admin|readwrite|read [--ca-key FILE] [--lifetime 17520h] [--overwrite]
  ringkv cert create-cluster --certs-dir DIR --nodes NAME[,NAME...] [--host NAME|IP[,...]] [--node-owner UID:GID]

create-cluster makes what is missing of a whole cluster's certificates in one go (for
a container init step or a test cluster): the CA in DIR unless DIR/ca.crt exists,
DIR/<node>/ (ca.crt, node.crt, node.key: the node's name, localhost, 127.0.0.1, ::1
and --host) for each node, and DIR/client/ (ca.crt, client.admin.*). Run again, it
writes nothing. --node-owner gives each node's dir to the user the nodes run as (an
init step running as root; the CA key and the admin client stay root's).

Files (as CockroachDB names them): ca.crt, ca.key, node.crt, node.key,
client.<role>.crt, client.<role>.key. Keys are ECDSA P-256, mode 0600. A node
certificate (CN=node) serves TLS and is a TLS client to its peers; a client
certificate carries its role as its subject CN. See docs/SECURITY.md.
`

// cmdCert is `ringkv cert create-ca|create-node|create-client`.
func cmdCert(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, certUsage)
		if len(args) == 0 {
			return exitCode(2)
		}
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("ringkv cert "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, certUsage) }
	certsDir := fs.String("certs-dir", "", "directory of the certificates and keys (made 0700 if missing)")
	caKey := fs.String("ca-key", "", "the CA's key file (default: <certs-dir>/ca.key); keep it off the nodes if you can")
	overwrite := fs.Bool("overwrite", false, "replace files that exist (default: refuse)")
	lifetime := defaultCertLifetime
	if sub == "create-ca" {
		lifetime = defaultCALifetime
	}
	fs.DurationVar(&lifetime, "lifetime", lifetime, "how long the certificate is valid, from now")
	var hosts, nodes listFlag
	var role, owner string
	switch sub {
	case "create-ca":
	case "create-node":
		fs.Var(&hosts, "host", "a DNS name or IP address the node is reached at; comma list or repeated (required)")
	case "create-client":
		fs.StringVar(&role, "role", "", "the client's role: admin, readwrite or read (required)")
	case "create-cluster":
		fs.Var(&nodes, "nodes", "the nodes' names (their host names); comma list or repeated (required)")
		fs.Var(&hosts, "host", "more names or IP addresses every node certificate carries; comma list or repeated")
		fs.StringVar(&owner, "node-owner", "", "UID:GID to give each node's dir and files to (the user the nodes run as)")
	default:
		fmt.Fprintf(stderr, "ringkv cert: unknown command %q\n\n%s", sub, certUsage)
		return exitCode(2)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cert %s takes no arguments, got %q", sub, strings.Join(fs.Args(), " "))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if *certsDir == "" {
		return fmt.Errorf("cert %s: --certs-dir is required", sub)
	}
	if lifetime <= 0 {
		return fmt.Errorf("cert %s: --lifetime must be positive, got %s", sub, lifetime)
	}
	if *caKey == "" {
		*caKey = filepath.Join(*certsDir, caKeyFile)
	}
	caCert := filepath.Join(*certsDir, caCertFile)
	now := time.Now()
	var files []pemFile
	switch sub {
	case "create-cluster":
		if len(nodes) == 0 {
			return fmt.Errorf("cert create-cluster: give --nodes")
		}
		spec := clusterCertsSpec{dir: *certsDir, nodes: nodes, extraHosts: hosts}
		if owner != "" {
			var uid, gid int
			if _, err := fmt.Sscanf(owner, "%d:%d", &uid, &gid); err != nil {
				return fmt.Errorf("cert create-cluster: --node-owner %q: want UID:GID", owner)
			}
			spec.nodeOwner = &[2]int{uid, gid}
		}
		written, err := ensureClusterCerts(spec, now)
		for _, f := range written {
			fmt.Fprintf(stdout, "wrote %s (%04o)\n", f.path, f.mode)
		}
		if err == nil && len(written) == 0 {
			fmt.Fprintf(stdout, "%s has every certificate already; nothing written\n", *certsDir)
		}
		if err != nil {
			return fmt.Errorf("cert create-cluster: %w", err)
		}
		return nil
	case "create-ca":
		ca, key, err := createCA(lifetime, now)
		if err != nil {
			return err
		}
		kf, err := keyFile(*caKey, key)
		if err != nil {
			return err
		}
		files = []pemFile{kf, certFile(caCert, ca)}
	case "create-node", "create-client":
		spec := leafSpec{lifetime: lifetime}
		var certName, keyName string
		if sub == "create-node" {
			if len(hosts) == 0 {
				return fmt.Errorf("cert create-node: give at least one --host (the names and IP addresses clients and peers reach the node at)")
			}
			spec.commonName, spec.hosts = nodeCommonName, hosts
			spec.usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
			certName, keyName = nodeCertFile, nodeKeyFile
		} else {
			if !slices.Contains(clientRoles, role) {
				return fmt.Errorf("cert create-client: --role must be one of %s, got %q", strings.Join(clientRoles, ", "), role)
			}
			spec.commonName = role
			spec.usages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			certName, keyName = clientCertFile(role), clientKeyFile(role)
		}
		ca, signer, err := loadCA(caCert, *caKey)
		if err != nil {
			return fmt.Errorf("cert %s: %w", sub, err)
		}
		cert, key, err := createLeaf(ca, signer, spec, now)
		if err != nil {
			return fmt.Errorf("cert %s: %w", sub, err)
		}
		kf, err := keyFile(filepath.Join(*certsDir, keyName), key)
		if err != nil {
			return err
		}
		files = []pemFile{kf, certFile(filepath.Join(*certsDir, certName), cert)}
	}
	if err := writeFiles(files, *overwrite); err != nil {
		return fmt.Errorf("cert %s: %w", sub, err)
	}
	for _, f := range files {
		fmt.Fprintf(stdout, "wrote %s (%04o)\n", f.path, f.mode)
	}
	return nil
}
