package raftgroup

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func newTestMux(t *testing.T) *Mux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMux(ln, "", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// accept returns the next connection of layer l, or fails after a deadline.
func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			ch <- c
		}
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the layer")
		return nil
	}
}

func TestMuxRoutesByGroupHeader(t *testing.T) {
	server, client := newTestMux(t), newTestMux(t)
	l1, l2 := server.Layer(1), server.Layer(2)
	for _, tc := range []struct {
		group uint32
		layer net.Listener
		msg   string
	}{{1, l1, "to group one"}, {2, l2, "to group two"}} {
		conn, err := client.Layer(tc.group).Dial(raft.ServerAddress(server.Addr().String()), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		got := accept(t, tc.layer)
		buf := make([]byte, len(tc.msg))
		if _, err := io.ReadFull(got, buf); err != nil || string(buf) != tc.msg {
			t.Fatalf("group %d received %q, %v", tc.group, buf, err)
		}
		conn.Close()
		got.Close()
	}
}

func TestMuxDropsBadConnectionsAndKeepsServing(t *testing.T) {
	server, client := newTestMux(t), newTestMux(t)
	l1 := server.Layer(1)
	for _, payload := range [][]byte{
		[]byte("garbage!"),
		encodeMuxHeader(99),       // no such group
		{'R', 'K', 7, 0, 0, 0, 1}, // unknown version
		{'R', 'K'},                // short, then EOF
	} {
		conn, err := net.Dial("tcp", server.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(payload)
		if cw, ok := conn.(*net.TCPConn); ok {
			_ = cw.CloseWrite()
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("payload %q: the server kept the connection", payload)
			}
		}
		conn.Close()
	}
	conn, err := client.Layer(1).Dial(raft.ServerAddress(server.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := accept(t, l1)
	got.Close()
}

func TestClosedLayerStopsAccepting(t *testing.T) {
	m := newTestMux(t)
	l := m.Layer(3)
	l.Close()
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept on a closed layer succeeded")
	}
}

func TestMuxHeaderRoundTrip(t *testing.T) {
	for _, g := range []uint32{0, 1, 255, 1 << 31} {
		got, err := decodeMuxHeader(encodeMuxHeader(g))
		if err != nil || got != g {
			t.Fatalf("group %d: %d %v", g, got, err)
		}
	}
}
