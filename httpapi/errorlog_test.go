package httpapi

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestHandshakeErrorsAreLoggedOncePerHostPerInterval(t *testing.T) {
	var buf bytes.Buffer
	l := serverErrorLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for i := 0; i < 5; i++ {
		l.Printf("http: TLS handshake error from 10.0.0.9:%d: EOF", 40000+i)
	}
	l.Printf("http: TLS handshake error from 10.0.0.7:5000: remote error: tls: bad certificate")
	l.Printf("http: superfluous response.WriteHeader call")
	out := buf.String()
	if n := strings.Count(out, "10.0.0.9"); n != 1 {
		t.Fatalf("%d lines for one host within the interval, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "10.0.0.7") || !strings.Contains(out, "superfluous") || !strings.Contains(out, "level=WARN") {
		t.Fatalf("other lines lost or not at WARN:\n%s", out)
	}
}
