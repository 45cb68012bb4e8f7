package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ringkv/ringkv/tlsconfig"
)

// connFlags are how every client command (put, get, ls, bench, backup, token, health)
// reaches a secure node: the cluster's CA to trust and, optionally, a client
// certificate whose common name is its role (docs/SECURITY.md). With any of them the
// default scheme is https.
type connFlags struct {
	certsDir, cacert, cert, key string
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certsDir, "certs-dir", "", "directory with the cluster's ca.crt and, if any, a client.<role>.crt/.key (admin, readwrite, then read is used); turns on https")
	fs.StringVar(&f.cacert, "cacert", "", "the cluster's CA certificate (instead of <certs-dir>/ca.crt)")
	fs.StringVar(&f.cert, "cert", "", "client certificate to authenticate with (its CN is the role)")
	fs.StringVar(&f.key, "key", "", "the client certificate's key")
}

// secure says whether any TLS flag was given.
func (f *connFlags) secure() bool {
	return f.certsDir != "" || f.cacert != "" || f.cert != "" || f.key != ""
}

// tlsConfig is the TLS settings the flags give; nil without any.
func (f *connFlags) tlsConfig() (*tls.Config, error) {
	if !f.secure() {
		return nil, nil
	}
	ca, cert, key := f.cacert, f.cert, f.key
	if f.certsDir != "" {
		if ca == "" {
			ca = filepath.Join(f.certsDir, "ca.crt")
		}
		if cert == "" && key == "" {
			for _, role := range clientRoles { // most powerful first
				c := filepath.Join(f.certsDir, "client."+role+".crt")
				if _, err := os.Stat(c); err == nil {
					cert, key = c, filepath.Join(f.certsDir, "client."+role+".key")
					break
				}
			}
		}
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	cfg, err := tlsconfig.ClientTLS(ca, cert, key)
	if err != nil {
		return nil, fmt.Errorf("TLS flags: %w", err)
	}
	return cfg, nil
}

// transport is a clone of http.DefaultTransport with the flags' TLS settings.
func (f *connFlags) transport() (*http.Transport, error) {
	cfg, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	return t, nil
}

// base turns an address into a base URL: "host:port" gets https when TLS flags are
// given, http otherwise; a URL passes unchanged.
func (f *connFlags) base(addr string) string {
	addr = strings.TrimSuffix(strings.TrimSpace(addr), "/")
	if strings.Contains(addr, "://") {
		return addr
	}
	if f.secure() {
		return "https://" + addr
	}
	return "http://" + addr
}
