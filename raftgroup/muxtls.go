package raftgroup

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MuxTLS turns the cluster port into mutual TLS. Every accepted connection completes
// a TLS handshake with Server before its group header is read, so a peer the config
// refuses never reaches hashicorp/raft; every dial completes one with
// Client(host of the dialled address) before the header is written. Who may connect
// is entirely the configs' business: ringkv passes tlsconfig's PeerServerConfig
// (a client certificate of the cluster's CA with CN=node, nothing else) and
// PeerClientConfig.
type MuxTLS struct {
	Server *tls.Config
	// Client makes the config of one dial; serverName is the host (name or IP
	// address, no port) of the address dialled, for verifying the peer's certificate.
	Client func(serverName string) *tls.Config
}

// MuxOption configures NewMux.
type MuxOption func(*Mux)

// WithTLS runs the mux with mutual TLS (see MuxTLS). Without it the port is
// plaintext: anyone who reaches it can speak Raft to every group.
func WithTLS(t MuxTLS) MuxOption { return func(m *Mux) { m.tls = &t } }

// refusalLogEvery: a remote host whose handshakes keep failing (a node with a
// certificate of the wrong CA, a scanner, an attacker) gets one WARN line per this
// period; the lines in between are counted in the next one's "suppressed".
const refusalLogEvery = 10 * time.Second

// HandshakeFailures counts the cluster port's failed TLS handshakes since the mux
// started (for ringkv_cluster_handshake_failures_total): Inbound, connections it
// refused (no certificate, another CA, not a node certificate, not TLS at all, or a
// peer that hung up or stalled during the handshake); Outbound, its own dials whose
// handshake failed (raft logs those as the RPC's error). A refusal the dialled peer
// sends after the handshake completed on this side (TLS 1.3 checks the client's
// certificate then) shows as that peer's Inbound, and as an RPC error here.
type HandshakeFailures struct {
	Inbound, Outbound uint64
}

// HandshakeFailures returns the counts so far; zero without TLS.
func (m *Mux) HandshakeFailures() HandshakeFailures {
	return HandshakeFailures{Inbound: m.refusals.count.Load(), Outbound: m.dialFailures.Load()}
}

// refusalLog counts refused handshakes and rate-limits their WARN lines per remote
// host.
type refusalLog struct {
	count atomic.Uint64
	mu    sync.Mutex
	last  map[string]refusal // by remote host
}

type refusal struct {
	at         time.Time
	suppressed uint64
}

// refused records a failed inbound handshake from remote and logs it unless that
// host was logged less than refusalLogEvery ago.
func (r *refusalLog) refused(log *slog.Logger, remote net.Addr, err error) {
	r.count.Add(1)
	host := remote.String()
	if h, _, splitErr := net.SplitHostPort(host); splitErr == nil {
		host = h
	}
	now := time.Now()
	r.mu.Lock()
	if r.last == nil {
		r.last = map[string]refusal{}
	}
	prev, seen := r.last[host]
	if seen && now.Sub(prev.at) < refusalLogEvery {
		prev.suppressed++
		r.last[host] = prev
		r.mu.Unlock()
		return
	}
	r.last[host] = refusal{at: now}
	if len(r.last) > 1024 { // many hosts: forget those not heard from lately
		for h, v := range r.last {
			if now.Sub(v.at) >= refusalLogEvery {
				delete(r.last, h)
			}
		}
	}
	r.mu.Unlock()
	log.Warn("refused cluster connection: TLS handshake failed", "remote", remote.String(), "err", err,
		"suppressed", prev.suppressed)
}

// validate checks a MuxTLS given to NewMux.
func (t *MuxTLS) validate() error {
	if t.Server == nil || t.Client == nil {
		return errors.New("raftgroup: MuxTLS needs both Server and Client")
	}
	return nil
}

// rawConn is the TCP connection under c: closing it breaks a TLS connection at once,
// without the close_notify alert tls.Conn.Close would first try to send (for up to 5
// s to a peer that stopped reading).
func rawConn(c net.Conn) net.Conn {
	if t, ok := c.(interface{ NetConn() net.Conn }); ok {
		return t.NetConn()
	}
	return c
}
