package app

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"time"
)

// peerSecretHeader carries the cluster's join secret (--join-token) on internal
// requests of a cluster without TLS; with TLS a peer proves itself by its node
// certificate instead and the header is never sent.
const peerSecretHeader = "X-Ringkv-Join-Token"

// clusterClient is the node's one client for internal traffic: forwarding, list
// fan-out, probes, leader transfers, joins and backup sections all go through it. It
// is the one place that knows the scheme (https once the node has TLS), the TLS
// settings used to dial a peer (this node's certificate, the cluster's CA, the name
// dialled), the credentials a peer shows, dial timeouts and connection reuse.
type clusterClient struct {
	client *http.Client // no overall timeout: callers bound requests by context
	scheme string       // "http" or "https"
	secret string       // the join secret, sent when there is no TLS
}

// newClusterClient returns the client; peerTLS (nil: plain HTTP) gives the TLS
// settings for dialling the peer named serverName, read at every dial so a reloaded
// certificate is used from the next connection on.
func newClusterClient(peerTLS func(serverName string) *tls.Config, secret string) *clusterClient {
	// A node cut off by a partition does not refuse connections, it just never
	// answers: a short dial timeout turns that into a quick failure the caller can
	// retry elsewhere, by which time the group has elected a reachable leader.
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = dialer.DialContext
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	// A section of a backup is long, but its first byte comes at once: waiting longer
	// than this for an answer means the peer is stuck.
	t.ResponseHeaderTimeout = 15 * time.Second
	c := &clusterClient{client: &http.Client{Transport: t}, scheme: "http", secret: secret}
	if peerTLS != nil {
		c.scheme = "https"
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			d := tls.Dialer{NetDialer: dialer, Config: peerTLS(host)}
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				// A refused handshake sent nothing, like a refused connection: callers
				// (httpapi's neverSent) may send the request elsewhere.
				if _, ok := err.(*net.OpError); !ok {
					err = &net.OpError{Op: "dial", Net: network, Err: err}
				}
				return nil, err
			}
			return conn, nil
		}
	}
	return c
}

// URL is the absolute URL of pathAndQuery on the node whose HTTP address is addr
// ("host:port"; a scheme already on addr is replaced by the cluster's).
func (c *clusterClient) URL(addr, pathAndQuery string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	return c.scheme + "://" + strings.TrimSuffix(addr, "/") + pathAndQuery
}

// Do sends req with this node's peer credentials.
func (c *clusterClient) Do(req *http.Request) (*http.Response, error) {
	if c.secret != "" && c.scheme == "http" {
		req.Header.Set(peerSecretHeader, c.secret)
	}
	return c.client.Do(req)
}

// secretMatches says whether got is the join secret, in constant time.
func secretMatches(got, secret string) bool {
	return secret != "" && subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1
}
