package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ringkv/ringkv/tlsconfig"
)

// connFlags are how every client command (put, get, ls, bench, backup, token, health)
// reaches a secure node: the cluster's CA to trust, a client certificate whose common
// name is its role, or a token (docs/SECURITY.md). With any of them the default scheme
// is https, and a token is never sent in clear beyond loopback.
type connFlags struct {
	certsDir, cacert, cert, key string
	token                       string // sent as Authorization: Bearer ("": none)
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certsDir, "certs-dir", "", "directory with the cluster's ca.crt and, if any, a client.<role>.crt/.key (admin, readwrite, then read is used); turns on https")
	fs.StringVar(&f.cacert, "cacert", "", "the cluster's CA certificate (instead of <certs-dir>/ca.crt)")
	fs.StringVar(&f.cert, "cert", "", "client certificate to authenticate with (its CN is the role)")
	fs.StringVar(&f.key, "key", "", "the client certificate's key")
	fs.StringVar(&f.token, "token", "", "API token, sent as Authorization: Bearer (a node with auth on needs one; prefer RINGKV_TOKEN, which keeps it out of the process list). With a token, --certs-dir picks no client certificate: the token is the credential")
}

// secure says whether any TLS flag or a token was given: the default scheme is then
// https.
func (f *connFlags) secure() bool {
	return f.certsDir != "" || f.cacert != "" || f.cert != "" || f.key != "" || f.token != ""
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
		// A token is the credential when given: a certificate picked here would be
		// judged instead and could hold more rights than the token the user chose.
		if cert == "" && key == "" && f.token == "" {
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

// checkAddr refuses to send a token over plain HTTP to a host beyond loopback, where
// anyone on the path could read it.
func (f *connFlags) checkAddr(addr string) error {
	base := f.base(addr)
	if f.token == "" || !strings.HasPrefix(base, "http://") {
		return nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if h := u.Hostname(); h == "localhost" || (net.ParseIP(h) != nil && net.ParseIP(h).IsLoopback()) {
		return nil
	}
	return fmt.Errorf("refusing to send a token in clear to %s: use https:// (or an address without a scheme)", base)
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
