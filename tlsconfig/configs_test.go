package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// clientMaterial is a Load of a client certificate of ca with CN=role.
func clientMaterial(t *testing.T, ca *testCA, role string) *Material {
	t.Helper()
	c, k := ca.client(t, role)
	m, err := Load(certsDir(t, ca.pem, c, k), quiet)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPeerServerAcceptsOnlyNodesOfItsCA(t *testing.T) {
	ca, other := newCA(t, "ringkv CA"), newCA(t, "another CA")
	server := nodeMaterial(t, ca)
	peer := nodeMaterial(t, ca)
	foreign := nodeMaterial(t, other)
	admin := clientMaterial(t, ca, "admin")
	// Clients that trust the server, so that only the server's checks can refuse them.
	presenting := func(m *Material) *tls.Config {
		cfg := peer.PeerClientConfig("127.0.0.1")
		cert := m.cur.Load().cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		return cfg
	}
	noCert := peer.PeerClientConfig("127.0.0.1")
	noCert.GetClientCertificate = nil

	for _, tc := range []struct {
		name   string
		client *tls.Config
		want   string // a part of the server's error; empty: accepted
	}{
		{"node of the cluster's CA", peer.PeerClientConfig("127.0.0.1"), ""},
		{"node of another CA", presenting(foreign), "unknown authority"},
		{"client certificate CN=admin of the cluster's CA", presenting(admin), `CN="admin"`},
		{"no certificate", noCert, "certificate"},
		{"TLS 1.2", func() *tls.Config {
			c := peer.PeerClientConfig("127.0.0.1")
			c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			return c
		}(), "version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverErr, clientErr, state := handshake(t, server.PeerServerConfig(), tc.client)
			if tc.want == "" {
				if serverErr != nil || clientErr != nil {
					t.Fatalf("refused: server %v, client %v", serverErr, clientErr)
				}
				if cn, ok := PeerIdentity(&state); !ok || cn != NodeCommonName || !IsNode(&state) {
					t.Fatalf("peer identity %q %v", cn, ok)
				}
				return
			}
			mustContain(t, serverErr, tc.want)
			if clientErr == nil {
				t.Fatal("the client did not see the refusal")
			}
		})
	}
}

func TestPeerClientChecksTheServer(t *testing.T) {
	ca, other := newCA(t, "ringkv CA"), newCA(t, "another CA")
	self := nodeMaterial(t, ca)
	// A server of the cluster's CA whose certificate is not a node certificate (a web
	// certificate given with --tls-cert, say).
	webCert, webKey := ca.sign(t, leafSpec{cn: "web", usages: serverAndClient})
	web, err := Load(certsDir(t, ca.pem, webCert, webKey), quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		server     *tls.Config
		serverName string
		want       string // a part of the client's error; empty: accepted
	}{
		{"node of the cluster's CA by IP", nodeMaterial(t, ca).PeerServerConfig(), "127.0.0.1", ""},
		{"node of the cluster's CA by name", nodeMaterial(t, ca).PeerServerConfig(), "localhost", ""},
		{"a name the certificate lacks", nodeMaterial(t, ca).PeerServerConfig(), "node9.example", "node9.example"},
		{"node of another CA", nodeMaterial(t, other).PeerServerConfig(), "127.0.0.1", "unknown authority"},
		{"not a node certificate", web.HTTPServerConfig(), "127.0.0.1", `CN="web"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, clientErr, _ := handshake(t, tc.server, self.PeerClientConfig(tc.serverName))
			if tc.want == "" {
				if clientErr != nil {
					t.Fatal(clientErr)
				}
				return
			}
			mustContain(t, clientErr, tc.want)
		})
	}
}

func TestHTTPServerVerifiesClientCertificatesIfGiven(t *testing.T) {
	ca, other := newCA(t, "ringkv CA"), newCA(t, "another CA")
	server := nodeMaterial(t, ca)
	c, k := ca.client(t, "admin")
	adminFiles := certsDir(t, ca.pem, c, k)
	fc, fk := other.client(t, "admin")
	foreignFiles := certsDir(t, other.pem, fc, fk)
	cli := func(caFile, cert, key string) *tls.Config {
		cfg, err := ClientTLS(caFile, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, tc := range []struct {
		name     string
		client   *tls.Config
		identity string // the role the server sees; "" none
		refused  bool
	}{
		{"no client certificate", cli(adminFiles.CA, "", ""), "", false},
		{"client certificate CN=admin", cli(adminFiles.CA, adminFiles.Cert, adminFiles.Key), "admin", false},
		{"a node as client", server.PeerClientConfig("127.0.0.1"), NodeCommonName, false},
		{"client certificate of another CA", cli(adminFiles.CA, foreignFiles.Cert, foreignFiles.Key), "", true},
		{"TLS 1.1", func() *tls.Config { c := cli(adminFiles.CA, "", ""); c.MaxVersion = tls.VersionTLS11; return c }(), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverErr, clientErr, state := handshake(t, server.HTTPServerConfig(), tc.client)
			if tc.refused {
				if serverErr == nil || clientErr == nil {
					t.Fatalf("accepted: server %v, client %v", serverErr, clientErr)
				}
				return
			}
			if serverErr != nil || clientErr != nil {
				t.Fatalf("refused: server %v, client %v", serverErr, clientErr)
			}
			cn, ok := PeerIdentity(&state)
			if cn != tc.identity || ok != (tc.identity != "") {
				t.Fatalf("identity %q %v, want %q", cn, ok, tc.identity)
			}
		})
	}
	// A client trusting another CA refuses the server.
	_, clientErr, _ := handshake(t, server.HTTPServerConfig(), cli(foreignFiles.CA, "", ""))
	mustContain(t, clientErr, "unknown authority")
}

// TestHTTPServerConfigServesHTTP2 runs the config the way a node will: an http.Server's
// ServeTLS with no certificate files, and a client made by ClientTLS.
func TestHTTPServerConfigServesHTTP2(t *testing.T) {
	ca := newCA(t, "ringkv CA")
	server := nodeMaterial(t, ca)
	c, k := ca.client(t, "readwrite")
	files := certsDir(t, ca.pem, c, k)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: server.HTTPServerConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn, _ := PeerIdentity(r.TLS)
		fmt.Fprintf(w, "%s %s", r.Proto, cn)
	})}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	cfg, err := ClientTLS(files.CA, files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	resp, err := hc.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "HTTP/2.0 readwrite" {
		t.Fatalf("got %q", body)
	}
}

// TestPeerDialTLSReachesANodesHTTPPort is the cluster's internal HTTP client: it
// dials a peer's HTTPS port with its node certificate, and the peer sees a node.
func TestPeerDialTLSReachesANodesHTTPPort(t *testing.T) {
	ca := newCA(t, "ringkv CA")
	server, self := nodeMaterial(t, ca), nodeMaterial(t, ca)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: server.HTTPServerConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, IsNode(r.TLS))
	})}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialTLSContext: self.PeerDialTLS(nil)}}
	resp, err := hc.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "true" {
		t.Fatalf("the server saw a node: %s", body)
	}
}

func TestClientTLSNeedsBothCertAndKey(t *testing.T) {
	ca := newCA(t, "ringkv CA")
	c, k := ca.client(t, "read")
	f := certsDir(t, ca.pem, c, k)
	if _, err := ClientTLS(f.CA, f.Cert, ""); err == nil {
		t.Fatal("a certificate without its key was taken")
	}
	if _, err := ClientTLS(f.CA, f.Key, f.Cert); err == nil {
		t.Fatal("swapped files were taken")
	}
	if _, err := ClientTLS(f.Cert, "", ""); err == nil {
		t.Fatal("a leaf was taken as CA")
	}
}
