package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestIdleConnectionsAreShedBeforeTheyKeepRequestsOut: with the connection limit
// nearly reached by idle keep-alive connections, the server closes them, and a new
// client is served at once instead of waiting behind them.
func TestIdleConnectionsAreShedBeforeTheyKeepRequestsOut(t *testing.T) {
	const maxConns = 16
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }), quiet)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(LimitConnections(srv, ln, maxConns, quiet))
	t.Cleanup(func() { srv.Close() })

	// maxConns clients each make one request and keep their connection idle.
	var idle []net.Conn
	for i := range maxConns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		if i < maxConns*7/8-1 { // below the watermark: a kept-alive answer
			if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// A new client is answered within a second, though maxConns connections are open.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("a new client was kept out by idle connections: %v", err)
	}
	resp.Body.Close()
	// The idle connections were closed by the server.
	closed := 0
	for _, c := range idle[:maxConns*7/8-1] {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
	}
	if closed == 0 {
		t.Fatal("no idle keep-alive connection was closed")
	}
}
