package tlsconfig

import (
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// expiryWarning: a certificate expiring sooner than this is logged at WARN when it is
// loaded, so an operator sees it before connections start failing.
const expiryWarning = 30 * 24 * time.Hour

// Material is TLS material loaded from files and reloadable while in use. The configs
// it makes (configs.go) read the current version at every handshake. Safe for
// concurrent use.
type Material struct {
	files Files
	node  bool
	log   *slog.Logger
	cur   atomic.Pointer[snapshot]
	mu    sync.Mutex // one Reload at a time
}

// Load reads f and checks it at once: the CA file holds at least one CA certificate,
// the certificate matches the key, is valid now and chains to the CA. Errors name
// the file at fault and wrap ErrExpired or ErrUntrusted where they apply. log gets
// one INFO line per load and reload (the certificate's serial and expiry).
func Load(f Files, log *slog.Logger) (*Material, error) { return load(f, false, log) }

// LoadNode is Load that also requires a node certificate (CN=node, usable as TLS
// server and TLS client; ErrNotNode otherwise), now and at every reload: the material
// the cluster port and the peer-dialling side need. With `--certs-dir DIR` one
// LoadNode(CertsDir(DIR), log) serves both ports.
func LoadNode(f Files, log *slog.Logger) (*Material, error) { return load(f, true, log) }

func load(f Files, node bool, log *slog.Logger) (*Material, error) {
	s, err := readSnapshot(f, node, time.Now())
	if err != nil {
		return nil, err
	}
	m := &Material{files: f, node: node, log: log}
	m.cur.Store(s)
	m.logLoaded("TLS certificate loaded", s)
	return m, nil
}

// Files is the paths m reads.
func (m *Material) Files() Files { return m.files }

// Leaf is the current certificate, parsed (for reporting its expiry, say).
func (m *Material) Leaf() *x509.Certificate { return m.cur.Load().cert.Leaf }

// Reload reads the files again. When they do not load and validate (a half-copied
// file, a key that does not match, an expired certificate), the current material is
// kept, the error is logged at WARN and returned; otherwise the new material is used
// for every handshake from now on and an INFO line gives its serial and expiry.
func (m *Material) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := readSnapshot(m.files, m.node, time.Now())
	if err != nil {
		old := m.cur.Load().cert.Leaf
		m.log.Warn("TLS certificate reload failed, keeping the current one", "err", err,
			"current_serial", old.SerialNumber.Text(16), "current_not_after", old.NotAfter.UTC())
		return err
	}
	m.cur.Store(s)
	m.logLoaded("TLS certificate reloaded", s)
	return nil
}

func (m *Material) logLoaded(msg string, s *snapshot) {
	leaf := s.cert.Leaf
	m.log.Info(msg, "cert", m.files.Cert, "ca", m.files.CA, "subject", leaf.Subject.CommonName,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC())
	if left := time.Until(leaf.NotAfter); left < expiryWarning {
		m.log.Warn("TLS certificate expires soon", "cert", m.files.Cert, "not_after", leaf.NotAfter.UTC(),
			"in", left.Round(time.Minute).String())
	}
}

// WatchFiles starts a goroutine that looks at the files every `every` (a second is a
// fine choice) and calls Reload when any of them changed (replaced, resized or
// touched), until ctx is done. A change that fails to load is tried once; the next
// change tries again, so a file copied in two steps loads when the second lands.
func (m *Material) WatchFiles(ctx context.Context, every time.Duration) {
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		var tried []os.FileInfo
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := statFiles(m.files)
			if sameFiles(now, m.cur.Load().stamps) || (tried != nil && sameFiles(now, tried)) {
				continue
			}
			tried = nil
			if m.Reload() != nil {
				tried = now
			}
		}
	}()
}

// ReloadOnSIGHUP makes a SIGHUP reload every material in ms until ctx is done. The
// signal is caught from when it returns (SIGHUP's default action ends the process).
func ReloadOnSIGHUP(ctx context.Context, ms ...*Material) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				for _, m := range ms {
					_ = m.Reload() // logged by Reload
				}
			}
		}
	}()
}
