package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringkv/ringkv/cmd/ringkv/app"
	"github.com/ringkv/ringkv/tlsconfig"
)

// secureFlags are serve's security flags (docs/SECURITY.md).
type secureFlags struct {
	certsDir       string
	tls, peer      tlsconfig.Files
	insecure, auth bool
	joinToken      string
}

func (f *secureFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certsDir, "certs-dir", "", "secure mode: TLS on both ports and authentication, with ca.crt, node.crt and node.key from this directory (make them with `ringkv cert`)")
	fs.StringVar(&f.tls.CA, "tls-ca", "", "the cluster's CA certificate (instead of <certs-dir>/ca.crt)")
	fs.StringVar(&f.tls.Cert, "tls-cert", "", "this node's certificate for the HTTP port (instead of <certs-dir>/node.crt)")
	fs.StringVar(&f.tls.Key, "tls-key", "", "the key of --tls-cert (instead of <certs-dir>/node.key)")
	fs.StringVar(&f.peer.CA, "peer-tls-ca", "", "the CA for the cluster port (default: --tls-ca)")
	fs.StringVar(&f.peer.Cert, "peer-tls-cert", "", "this node's certificate for the cluster port (default: --tls-cert)")
	fs.StringVar(&f.peer.Key, "peer-tls-key", "", "the key of --peer-tls-cert (default: --tls-key)")
	fs.BoolVar(&f.auth, "auth", false, "ask every client for a token or client certificate (on with TLS); without TLS, tokens cross the network in clear")
	fs.StringVar(&f.joinToken, "join-token", "", "without TLS: the cluster's join secret, which a node must show to join and on every internal request (give every node the same; prefer RINGKV_JOIN_TOKEN, which keeps it out of the process list)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow listening beyond loopback without TLS and authentication (a warning is logged at every start)")
}

// apply sets cfg from the flags (fs parsed, the environment applied): --certs-dir fills the TLS files not given
// one by one, and TLS turns authentication on; --auth=false with TLS is refused rather
// than ignored.
func (f *secureFlags) apply(fs *flag.FlagSet, getenv func(string) string, cfg *app.Config) error {
	tf := f.tls
	if f.certsDir != "" {
		d := tlsconfig.CertsDir(f.certsDir)
		tf.CA, tf.Cert, tf.Key = or(tf.CA, d.CA), or(tf.Cert, d.Cert), or(tf.Key, d.Key)
	}
	pf := f.peer
	if pf != (tlsconfig.Files{}) {
		pf.CA, pf.Cert, pf.Key = or(pf.CA, tf.CA), or(pf.Cert, tf.Cert), or(pf.Key, tf.Key)
	}
	cfg.HTTPTLS, cfg.PeerTLS = tf, pf
	tlsOn := tf != (tlsconfig.Files{})
	if tlsOn && !f.auth && explicit(fs, getenv, "auth") {
		return errors.New("--auth=false: with TLS authentication is always on (secure mode); to run without it, run without TLS on loopback, or with --insecure")
	}
	cfg.Auth = f.auth || tlsOn
	cfg.JoinToken, cfg.Insecure = f.joinToken, f.insecure
	return nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// reloadOnSIGHUP reloads node's certificates on every SIGHUP until ctx ends.
func reloadOnSIGHUP(ctx context.Context, node *app.Node, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := node.ReloadTLS(); err != nil {
				log.Warn("SIGHUP: certificates not reloaded; the current ones stay in use", "err", err)
			} else {
				log.Info("SIGHUP: certificates reloaded")
			}
		}
	}
}
