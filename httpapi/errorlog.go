package httpapi

import (
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// handshakeLogEvery is how often net/http's "TLS handshake error from HOST:PORT" line
// is logged per remote host: a scanner, a plain-HTTP client or a load balancer's TCP
// check would otherwise write one WARN line per connection (the cluster port limits
// its refusals the same way, raftgroup/muxtls.go).
const handshakeLogEvery = 10 * time.Second

// serverErrorLog is http.Server's ErrorLog: its lines at WARN, handshake errors at
// most once per remote host per handshakeLogEvery, with how many were skipped.
func serverErrorLog(l *slog.Logger) *log.Logger {
	return log.New(&limitedErrorWriter{out: slog.NewLogLogger(l.Handler(), slog.LevelWarn), last: map[string]limitedLine{}}, "", 0)
}

type limitedLine struct {
	at      time.Time
	skipped int
}

type limitedErrorWriter struct {
	out  *log.Logger
	mu   sync.Mutex
	last map[string]limitedLine
}

func (w *limitedErrorWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	rest, ok := strings.CutPrefix(line, "http: TLS handshake error from ")
	if !ok {
		w.out.Print(line)
		return len(p), nil
	}
	addr, _, _ := strings.Cut(rest, ": ")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	now := time.Now()
	w.mu.Lock()
	prev, seen := w.last[host]
	if seen && now.Sub(prev.at) < handshakeLogEvery {
		prev.skipped++
		w.last[host] = prev
		w.mu.Unlock()
		return len(p), nil
	}
	w.last[host] = limitedLine{at: now}
	if len(w.last) > 4096 { // many hosts: forget those not heard from lately
		for h, l := range w.last {
			if now.Sub(l.at) >= handshakeLogEvery {
				delete(w.last, h)
			}
		}
	}
	w.mu.Unlock()
	if prev.skipped > 0 {
		line += " (" + strconv.Itoa(prev.skipped) + " more from this host not logged in the last interval)"
	}
	w.out.Print(line)
	return len(p), nil
}
