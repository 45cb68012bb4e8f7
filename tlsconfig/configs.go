package tlsconfig

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// HTTPServerConfig is the HTTP port's server config: TLS 1.2 or later (1.3 when the
// client has it), HTTP/2 and HTTP/1.1 offered, the current certificate served, and a
// client certificate verified against the current CA bundle when the client sends
// one (VerifyClientCertIfGiven): clients may authenticate by certificate, others by
// token. PeerIdentity tells who a verified client is. Works with http.Server's
// ServeTLS(ln, "", "") or tls.NewListener; a server that turns HTTP/2 off sets
// NextProtos on the returned config to http/1.1 only.
//
// Session tickets are keyed per loaded material: a session begun before a reload is
// not resumed after it, so a client certificate of a CA dropped from the bundle stops
// working on the next connection.
func (m *Material) HTTPServerConfig() *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s := m.cur.Load()
		return &tls.Config{
			MinVersion:       tls.VersionTLS12,
			NextProtos:       base.NextProtos,
			Certificates:     []tls.Certificate{*s.cert},
			ClientAuth:       tls.VerifyClientCertIfGiven,
			ClientCAs:        s.pool,
			SessionTicketKey: s.ticketKey,
		}, nil
	}
	return base
}

// PeerServerConfig is the cluster port's server config: TLS 1.3 only (both ends are
// ringkv), the current certificate served, and a client certificate required,
// verified against the current CA bundle for the TLS client usage, whose subject CN
// is NodeCommonName. Anything else (no certificate, another CA, a client certificate
// with CN=admin) fails the handshake. No session resumption: every connection proves
// its certificate against the material current when it is made.
func (m *Material) PeerServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := m.cur.Load()
			return &tls.Config{
				MinVersion:             tls.VersionTLS13,
				SessionTicketsDisabled: true,
				Certificates:           []tls.Certificate{*s.cert},
				ClientAuth:             tls.RequireAndVerifyClientCert,
				ClientCAs:              s.pool,
				VerifyConnection:       requireNode,
			}, nil
		},
	}
}

// PeerClientConfig is the config for one connection this node dials to a peer at
// serverName (a host name or IP address, no port; it must not be empty): TLS 1.3,
// the current certificate presented as client certificate, and the server's
// certificate verified against the current CA bundle for serverName and required to
// be a node certificate. Make one per connection (raftgroup's mux does, through
// MuxTLS.Client), so each dial uses the material current then.
func (m *Material) PeerClientConfig(serverName string) *tls.Config {
	s := m.cur.Load()
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		RootCAs:    s.pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.cert, nil
		},
		VerifyConnection: requireNode,
	}
}

// PeerDialTLS returns a dial function for http.Transport.DialTLSContext that dials
// addr ("host:port") with d (nil: a zero net.Dialer) and runs PeerClientConfig(host)'s
// handshake: the cluster's internal HTTP client, talking to peers' HTTP ports that
// serve node certificates. The connection speaks HTTP/1.1.
func (m *Material) PeerDialTLS(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		td := tls.Dialer{NetDialer: d, Config: m.PeerClientConfig(host)}
		return td.DialContext(ctx, network, addr)
	}
}

// ClientTLS is a client config loaded once, for the CLI and the generated client:
// servers verified against the CA bundle in caFile (empty: the system's roots), and,
// when certFile and keyFile are given (both or neither), that certificate presented
// to a server that asks for one. Errors name the file; an expired certificate wraps
// ErrExpired.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := readCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both the certificate and its key file")
	}
	if certFile != "" {
		pair, err := readPair(certFile, keyFile, time.Now())
		if err != nil {
			return nil, err
		}
		// Always presented, whatever CAs the server says it accepts: a refusal then
		// names the certificate rather than its absence.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair, nil }
	}
	return cfg, nil
}

// PeerIdentity is the subject CN of the peer's verified certificate: NodeCommonName
// for another node, the role (admin, readwrite, read) for a client certificate. ok is
// false when the connection has no verified peer certificate (no TLS, or no client
// certificate given).
func PeerIdentity(state *tls.ConnectionState) (cn string, ok bool) {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return "", false
	}
	return state.VerifiedChains[0][0].Subject.CommonName, true
}

// IsNode reports whether the connection's verified peer is another node.
func IsNode(state *tls.ConnectionState) bool {
	cn, ok := PeerIdentity(state)
	return ok && cn == NodeCommonName
}

// requireNode refuses a handshake whose peer is not a node (VerifyConnection runs
// after the chain was verified, on resumed connections too).
func requireNode(cs tls.ConnectionState) error {
	cn, ok := PeerIdentity(&cs)
	if !ok {
		return errors.New("tlsconfig: the peer presented no verified certificate")
	}
	if cn != NodeCommonName {
		return fmt.Errorf("tlsconfig: the peer's certificate has CN=%q, not a node certificate (CN=%s)", cn, NodeCommonName)
	}
	return nil
}
