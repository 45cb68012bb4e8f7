package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ringkv/ringkv/tlsconfig"
)

// Secure mode (docs/SECURITY.md): with a node certificate of the cluster's CA the
// node serves HTTPS, runs its cluster port with mutual TLS, dials its peers with its
// certificate and, with Config.Auth, asks every client for a token or a client
// certificate. Without TLS and auth it may listen on loopback only, unless told
// --insecure.

// secure says whether c turns TLS on.
func (c *Config) secure() bool { return c.HTTPTLS != (tlsconfig.Files{}) }

// peerFiles are the cluster port's files: PeerTLS, or HTTPTLS when it is not given.
func (c *Config) peerFiles() tlsconfig.Files {
	if c.PeerTLS != (tlsconfig.Files{}) {
		return c.PeerTLS
	}
	return c.HTTPTLS
}

// validateSecurity adds the problems of c's security settings to errs.
func (c *Config) validateSecurity() []error {
	var errs []error
	for _, f := range []struct {
		flags string
		files tlsconfig.Files
	}{{"--tls-ca, --tls-cert and --tls-key", c.HTTPTLS}, {"--peer-tls-ca, --peer-tls-cert and --peer-tls-key", c.PeerTLS}} {
		if f.files != (tlsconfig.Files{}) && (f.files.CA == "" || f.files.Cert == "" || f.files.Key == "") {
			errs = append(errs, fmt.Errorf("%s go together (or give --certs-dir)", f.flags))
		}
	}
	if c.PeerTLS != (tlsconfig.Files{}) && !c.secure() {
		errs = append(errs, errors.New("--peer-tls-* need TLS on the HTTP port too (--certs-dir or --tls-*)"))
	}
	if c.Auth && !c.secure() && c.JoinToken == "" && c.testPeer == nil {
		// Without TLS, peers prove themselves with the join secret; with neither,
		// nothing could tell a client's request from a peer's forwarded one.
		errs = append(errs, errors.New("--auth without TLS needs --join-token (the same secret on every node): peers prove themselves with it"))
	}
	if c.Insecure || (c.secure() && c.Auth) {
		return errs
	}
	for _, a := range []struct{ flag, v string }{{"--http-addr", c.HTTPAddr}, {"--raft-addr", c.RaftAddr}} {
		if host, _, err := net.SplitHostPort(a.v); err == nil && !isLoopback(host) {
			errs = append(errs, fmt.Errorf("%s %s listens beyond loopback without %s. Give --certs-dir (make one with `ringkv cert`, "+
				"see docs/SECURITY.md), or --insecure on a network only the cluster and its operators reach", a.flag, a.v, c.exposure()))
		}
	}
	return errs
}

// exposure says what a node without TLS or auth lacks and what that lets anyone on its
// network do.
func (c *Config) exposure() string {
	switch {
	case c.secure():
		return "authentication: anyone who reaches it could read and change every key"
	case c.Auth:
		return "TLS: tokens would cross the network in clear and anyone who reaches the cluster port could forge Raft messages"
	default:
		return "TLS and authentication: anyone who reaches it could read and change every key and forge Raft messages"
	}
}

// isLoopback says whether host (from a listen address) is a loopback name or address;
// "", 0.0.0.0 and [::] listen on every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// nodeTLS is a secure node's certificate material: http for the HTTP port, peer for
// the cluster port and the internal client (the same files unless --peer-tls-* differ).
type nodeTLS struct{ http, peer *tlsconfig.Material }

// loadTLS loads cfg's certificates; nil when TLS is off. Both must be node
// certificates of the cluster's CA: a peer dials the HTTP port as well as the cluster
// port and accepts only a node certificate there.
func loadTLS(cfg Config) (*nodeTLS, error) {
	if !cfg.secure() {
		return nil, nil
	}
	h, err := tlsconfig.LoadNode(cfg.HTTPTLS, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	t := &nodeTLS{http: h, peer: h}
	if pf := cfg.peerFiles(); pf != cfg.HTTPTLS {
		if t.peer, err = tlsconfig.LoadNode(pf, cfg.Log); err != nil {
			return nil, fmt.Errorf("peer TLS: %w", err)
		}
	}
	return t, nil
}

// checkNames refuses certificates that do not name the addresses this node advertises:
// its peers (and its own internal requests) would fail every handshake with it, with
// nothing but "bad certificate" in the logs to say why.
func (t *nodeTLS) checkNames(httpAddr, raftAddr string) error {
	for _, c := range []struct {
		what, addr string
		m          *tlsconfig.Material
	}{{"--advertise-http", httpAddr, t.http}, {"--advertise-raft", raftAddr, t.peer}} {
		host, _, err := net.SplitHostPort(c.addr)
		if err != nil {
			return err
		}
		if err := c.m.Leaf().VerifyHostname(host); err != nil {
			return fmt.Errorf("%s: the node certificate %s does not name %q, the host this node advertises as %s (%v): make it with `ringkv cert create-node --host %s,...` or set %s to a name it has",
				c.what, c.m.Files().Cert, host, c.what, err, host, c.what)
		}
	}
	return nil
}

// materials are t's distinct materials.
func (t *nodeTLS) materials() []*tlsconfig.Material {
	if t.peer == t.http {
		return []*tlsconfig.Material{t.http}
	}
	return []*tlsconfig.Material{t.http, t.peer}
}

// certWatchEvery is how often a secure node looks for changed certificate files.
const certWatchEvery = 5 * time.Second

// watchCertificates reloads the node's certificates when their files change, until
// ctx ends; ReloadTLS does it at once (SIGHUP).
func (n *Node) watchCertificates(ctx context.Context) {
	if n.tls == nil {
		return
	}
	for _, m := range n.tls.materials() {
		go m.WatchFiles(ctx, certWatchEvery)
	}
	<-ctx.Done()
}

// ReloadTLS reads the node's certificate files again (SIGHUP). New connections use the
// new certificates; open ones keep theirs. A file that does not load leaves the
// current certificate in use and is reported.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return nil
	}
	var errs []error
	for _, m := range n.tls.materials() {
		errs = append(errs, m.Reload())
	}
	return errors.Join(errs...)
}

// isPeer says whether r comes from another node of the cluster: with TLS, a verified
// node certificate of the cluster's CA; without, the join secret when there is one;
// with neither, every request when auth is off (a loopback or --insecure node trusts
// its network) and none when it is on (Validate refuses that configuration anyway).
func (n *Node) isPeer(r *http.Request) bool {
	switch {
	case n.tls != nil:
		return tlsconfig.IsNode(r.TLS)
	case n.cfg.JoinToken != "":
		return secretMatches(r.Header.Get(peerSecretHeader), n.cfg.JoinToken)
	default:
		return !n.cfg.Auth
	}
}

// warnInsecure logs, at every start, that a node listening beyond loopback has no
// TLS or no authentication (--insecure).
func (n *Node) warnInsecure() {
	if n.cfg.secure() && n.cfg.Auth {
		return
	}
	for _, a := range []string{n.cfg.HTTPAddr, n.cfg.RaftAddr} {
		if host, _, err := net.SplitHostPort(a); err == nil && !isLoopback(host) {
			n.log.Warn("INSECURE: listening beyond loopback (--insecure) without "+n.cfg.exposure()+"; see docs/SECURITY.md",
				"http", n.cfg.HTTPAddr, "raft", n.cfg.RaftAddr, "tls", n.cfg.secure(), "auth", n.cfg.Auth)
			return
		}
	}
}
