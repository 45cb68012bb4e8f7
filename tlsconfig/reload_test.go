package tlsconfig

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// servedSerial is the serial of the certificate a handshake with server shows a
// client that trusts caPEM, or the client's error.
func servedSerial(t *testing.T, server *tls.Config, client *tls.Config) (string, error) {
	t.Helper()
	var serial string
	client = client.Clone()
	client.VerifyConnection = func(cs tls.ConnectionState) error {
		serial = cs.PeerCertificates[0].SerialNumber.Text(16)
		return nil
	}
	_, err, _ := handshake(t, server, client)
	return serial, err
}

// rotate replaces f's files by those of a new node certificate of ca.
func rotate(t *testing.T, f Files, ca *testCA) {
	t.Helper()
	c, k := ca.node(t)
	writeAtomic(t, f.CA, ca.pem)
	writeAtomic(t, f.Key, k)
	writeAtomic(t, f.Cert, c)
}

// TestReloadToANewCA replaces a node's files with those of another CA: after Reload,
// new connections on every config use the new certificate and trust only the new CA.
func TestReloadToANewCA(t *testing.T) {
	oldCA, newCA := newCA(t, "old CA"), newCA(t, "new CA")
	c, k := oldCA.node(t)
	f := certsDir(t, oldCA.pem, c, k)
	var log logBuffer
	m, err := LoadNode(f, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	// The configs are made once, before the reload, as a server makes them.
	peerServer, httpServer := m.PeerServerConfig(), m.HTTPServerConfig()
	oldPeer, newPeer := nodeMaterial(t, oldCA), nodeMaterial(t, newCA)
	before := m.Leaf().SerialNumber.Text(16)
	if _, err := servedSerial(t, peerServer, oldPeer.PeerClientConfig("127.0.0.1")); err != nil {
		t.Fatalf("before the reload: %v", err)
	}

	rotate(t, f, newCA)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	after := m.Leaf().SerialNumber.Text(16)
	if after == before {
		t.Fatal("the certificate did not change")
	}
	if !strings.Contains(log.String(), `msg="TLS certificate reloaded"`) || !strings.Contains(log.String(), "serial="+after) {
		t.Fatalf("no INFO line with the new serial:\n%s", log.String())
	}
	for name, server := range map[string]*tls.Config{"peer": peerServer, "http": httpServer} {
		got, err := servedSerial(t, server, newPeer.PeerClientConfig("127.0.0.1"))
		if err != nil || got != after {
			t.Fatalf("%s port after the reload: served %s (%v), want %s", name, got, err, after)
		}
	}
	// A peer of the old CA that would trust the new server is refused by it.
	stale := oldPeer.PeerClientConfig("127.0.0.1")
	stale.RootCAs = newPeer.cur.Load().pool
	serverErr, _, _ := handshake(t, peerServer, stale)
	mustContain(t, serverErr, "unknown authority")
	// And as a client: the node dials peers of the new CA and refuses those of the old.
	if _, clientErr, _ := handshake(t, newPeer.PeerServerConfig(), m.PeerClientConfig("127.0.0.1")); clientErr != nil {
		t.Fatalf("dialling a peer of the new CA: %v", clientErr)
	}
	_, clientErr, _ := handshake(t, oldPeer.PeerServerConfig(), m.PeerClientConfig("127.0.0.1"))
	mustContain(t, clientErr, "unknown authority")
}

// TestFailedReloadKeepsTheCurrentMaterial: broken files leave the material in use
// and say why, at WARN.
func TestFailedReloadKeepsTheCurrentMaterial(t *testing.T) {
	ca, other := newCA(t, "ringkv CA"), newCA(t, "another CA")
	c, k := ca.node(t)
	_, otherKey := ca.node(t)
	expired, expiredKey := ca.sign(t, leafSpec{cn: NodeCommonName, usages: serverAndClient,
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	admin, adminKey := ca.client(t, "admin")
	foreign, foreignKey := other.node(t)
	for _, tc := range []struct {
		name    string
		break_  func(f Files)
		wantIs  error
		wantMsg string
	}{
		{"key of another certificate", func(f Files) { writeAtomic(t, f.Key, otherKey) }, nil, "private key does not match"},
		{"truncated certificate", func(f Files) { writeAtomic(t, f.Cert, c[:len(c)/2]) }, nil, "node.crt"},
		{"certificate removed", func(f Files) { os.Remove(f.Cert) }, os.ErrNotExist, "node.crt"},
		{"expired certificate", func(f Files) { writeAtomic(t, f.Cert, expired); writeAtomic(t, f.Key, expiredKey) }, ErrExpired, ""},
		{"client certificate", func(f Files) { writeAtomic(t, f.Cert, admin); writeAtomic(t, f.Key, adminKey) }, ErrNotNode, ""},
		{"certificate of a CA not in ca.crt", func(f Files) { writeAtomic(t, f.Cert, foreign); writeAtomic(t, f.Key, foreignKey) }, ErrUntrusted, ""},
		{"empty CA file", func(f Files) { writeAtomic(t, f.CA, nil) }, nil, "ca.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := certsDir(t, ca.pem, c, k)
			var log logBuffer
			m, err := LoadNode(f, log.logger())
			if err != nil {
				t.Fatal(err)
			}
			server, peer := m.PeerServerConfig(), nodeMaterial(t, ca)
			before := m.Leaf().SerialNumber.Text(16)
			tc.break_(f)
			err = m.Reload()
			if err == nil {
				t.Fatal("broken files reloaded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("error %q is not %v", err, tc.wantIs)
			}
			mustContain(t, err, tc.wantMsg)
			if !strings.Contains(log.String(), `level=WARN msg="TLS certificate reload failed, keeping the current one"`) {
				t.Fatalf("no WARN line:\n%s", log.String())
			}
			got, err := servedSerial(t, server, peer.PeerClientConfig("127.0.0.1"))
			if err != nil || got != before || m.Leaf().SerialNumber.Text(16) != before {
				t.Fatalf("after the failed reload: served %s (%v), want the old %s", got, err, before)
			}
		})
	}
}

// eventually waits for cond, checking every 10 ms, for at most 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestWatchFilesReloadsWhenTheFilesChange(t *testing.T) {
	ca := newCA(t, "ringkv CA")
	c, k := ca.node(t)
	f := certsDir(t, ca.pem, c, k)
	var log logBuffer
	m, err := LoadNode(f, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.WatchFiles(ctx, 10*time.Millisecond)
	first := m.Leaf().SerialNumber

	// A certificate whose key has not arrived yet fails, and is kept out...
	c2, k2 := ca.node(t)
	writeAtomic(t, f.Cert, c2)
	eventually(t, "the failed reload's WARN", func() bool { return strings.Contains(log.String(), "reload failed") })
	if m.Leaf().SerialNumber.Cmp(first) != 0 {
		t.Fatal("a certificate without its key was taken")
	}
	// ...and once the key lands, the pair loads.
	writeAtomic(t, f.Key, k2)
	eventually(t, "the new certificate", func() bool { return m.Leaf().SerialNumber.Cmp(first) != 0 })
	if got := strings.Count(log.String(), "reload failed"); got != 1 {
		t.Fatalf("the failed change was tried %d times, want once:\n%s", got, log.String())
	}
}

func TestSIGHUPReloads(t *testing.T) {
	ca := newCA(t, "ringkv CA")
	c, k := ca.node(t)
	f := certsDir(t, ca.pem, c, k)
	m, err := LoadNode(f, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ReloadOnSIGHUP(ctx, m)
	first := m.Leaf().SerialNumber
	rotate(t, f, ca)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload on SIGHUP", func() bool { return m.Leaf().SerialNumber.Cmp(first) != 0 })
}
