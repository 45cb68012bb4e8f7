package app

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestStalledClientDoesNotHoldTheServer: a client that sends half a request and then
// nothing neither blocks other clients nor keeps its connection past the header
// timeout.
func TestStalledClientDoesNotHoldTheServer(t *testing.T) {
	c := startCluster(t, 1)
	conn, err := net.Dial("tcp", c.nodes[0].cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Len")); err != nil {
		t.Fatal(err)
	}
	// Others are served meanwhile.
	c.mustPut(0, "fast", "1")
	if s, kv := c.get(0, "fast", ""); s != http.StatusOK || kv.Value != "1" {
		t.Fatalf("GET while a client stalls: %d %+v", s, kv)
	}
	// The server gives up on the stalled connection: the read ends (EOF or a 408).
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held the stalled connection after %v", time.Since(start))
	}
	t.Logf("stalled connection closed by the server after %v", time.Since(start))
}

// TestGarbageOnTheClusterPortIsDropped: connections with a malformed or unknown-group
// header on the Raft port are closed and the node carries on.
func TestGarbageOnTheClusterPortIsDropped(t *testing.T) {
	c := startCluster(t, 1)
	for _, payload := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{'R', 'K', 9, 0, 0, 0, 1},          // unknown header version
		{'R', 'K', 1, 0xff, 0xff, 0xff, 0}, // unknown group
		make([]byte, 4096),
	} {
		conn, err := net.Dial("tcp", c.nodes[0].cfg.RaftAddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(payload)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("payload %q: connection not dropped", payload[:min(8, len(payload))])
			}
		}
		conn.Close()
	}
	c.mustPut(0, "still", "works")
	if s, kv := c.get(0, "still", ""); s != http.StatusOK || kv.Value != "works" {
		t.Fatalf("after garbage on the cluster port: %d %+v", s, kv)
	}
}
