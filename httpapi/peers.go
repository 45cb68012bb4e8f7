package httpapi

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// Peers is how this node reaches the other nodes of its cluster: the node's one cluster
// client (cmd/ringkv/app/clusterclient.go) holds the scheme, the TLS settings, this
// node's peer credentials, timeouts and connection reuse, so forwarding and list
// fan-out never build a URL or a client of their own.
type Peers interface {
	// URL is the absolute URL of pathAndQuery (starting with "/") on the node whose
	// advertised HTTP address is addr ("host:port").
	URL(addr, pathAndQuery string) string
	// Do sends an internal request carrying this node's peer credentials. It has no
	// overall timeout: callers bound it with the request's context.
	Do(req *http.Request) (*http.Response, error)
}

// plainPeers is the Peers of a Server given none (tests): plain HTTP, no credentials.
type plainPeers struct{ client *http.Client }

func newPlainPeers() plainPeers {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConnsPerHost = 128
	return plainPeers{client: &http.Client{Transport: t}}
}

func (p plainPeers) URL(addr, pathAndQuery string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/") + pathAndQuery
	}
	return "http://" + addr + pathAndQuery
}

func (p plainPeers) Do(req *http.Request) (*http.Response, error) { return p.client.Do(req) }
