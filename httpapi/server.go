package httpapi

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// Config assembles a Server.
type Config struct {
	KV            KV
	Admin         Admin
	Backup        Backup // nil: /admin/backup answers 404
	Log           *slog.Logger
	MaxValueBytes int64
	// MaxInFlight bounds the client requests to /kv served at once (inFlight); 0 takes
	// DefaultMaxInFlight.
	MaxInFlight int
	// Extra handlers mounted as they are (metrics, the spec, the dashboard); nil ones
	// are left out.
	Metrics http.Handler
	Spec    http.Handler
	UI      http.Handler
	// Debug, when set, is mounted at /debug/pprof/ (profiling; off unless --pprof).
	Debug http.Handler
	// Observe, when set, wraps every request (HTTP metrics).
	Observe func(route string, next http.Handler) http.Handler
	// AllowedHosts are the names a request's Host header may carry besides IP literals
	// and localhost (guard.go): the node's own (--http-addr, --advertise-http, the
	// machine's hostname) and --allowed-hosts; "*" allows any. Ports are ignored.
	AllowedHosts []string
	// Peers reaches other nodes (forwarding, list fan-out); nil: plain HTTP with no
	// credentials (tests).
	Peers Peers
	// Auth, when set, turns authentication on (auth.go, authrules.go): requests need a
	// credential whose role allows them. nil: every request is served, as before auth.
	Auth Authenticator
	// Peer says whether a request comes from an authenticated cluster peer (a verified
	// node certificate, or the join secret): peer-only endpoints answer only those, and
	// they may do everything. nil: nothing is a peer when Auth is set, everything is
	// when it is not.
	Peer func(*http.Request) bool
	// Tokens serves /admin/tokens; nil: those paths answer 404.
	Tokens Tokens
	// Watch serves watches and long polls of /kv (watch.go); nil: they answer 404.
	Watch Watch
	// SlowConsumerAfter is how long a watch waits for a client that does not take its
	// events before ending it (0: slowConsumerAfter); tests shorten it.
	SlowConsumerAfter time.Duration
	// WatchDelay, when set, is told, for each change written to a watch (stream or long
	// poll), how long after its commit it was written: delivery delay, and lag for a
	// watch catching up from an old cursor (ringkv_watch_delivery_delay_seconds).
	WatchDelay func(time.Duration)
}

// Server is the HTTP API of one node.
type Server struct {
	kv     KV
	admin  Admin
	backup Backup
	tokens Tokens
	watch  Watch
	// slowAfter: see Config.SlowConsumerAfter.
	slowAfter time.Duration
	// watchDelay: see Config.WatchDelay.
	watchDelay func(time.Duration)
	log        *slog.Logger
	maxValue   int64
	peers      Peers
	lists      *listLimit
	streams    chan struct{} // backup streams in progress (maxBackupStreams)
	router     chi.Router
	stopping   chan struct{} // closed by EndWatches
	stopOnce   sync.Once
	// watchStats counts the watches (watchstats.go).
	watchStats watchStats
	// keepAlive and progress time a stream (0: keepAliveEvery, progressEvery); tests
	// shorten them.
	keepAlive, progress time.Duration
}

// EndWatches ends every watch stream with a last event saying the node is stopping, and
// answers every long poll with what it holds; watches that start later end at once. A
// graceful stop calls it before draining, so open streams do not hold the node's HTTP
// server open until its shutdown timeout.
func (s *Server) EndWatches() { s.stopOnce.Do(func() { close(s.stopping) }) }

// DefaultMaxValueBytes is the default value size limit (1 MiB).
const DefaultMaxValueBytes = 1 << 20

// New builds the router.
func New(cfg Config) *Server {
	s := &Server{kv: cfg.KV, admin: cfg.Admin, backup: cfg.Backup, tokens: cfg.Tokens, watch: cfg.Watch, slowAfter: cfg.SlowConsumerAfter, watchDelay: cfg.WatchDelay, log: cfg.Log, maxValue: cfg.MaxValueBytes, peers: cfg.Peers, lists: newListLimit(), streams: make(chan struct{}, maxBackupStreams), stopping: make(chan struct{})}
	if s.peers == nil {
		s.peers = newPlainPeers()
	}
	if s.maxValue <= 0 {
		s.maxValue = DefaultMaxValueBytes
	}
	r := chi.NewRouter()
	r.Use(s.recoverer)
	r.Use(newGuard(cfg.AllowedHosts, cfg.Log).wrap) // Host, cross-origin writes, nosniff (guard.go)
	r.Use(newAuthn(cfg).wrap)                       // credentials, roles, peers (auth.go)
	r.Use(middleware.GetHead)                       // HEAD wherever GET (methods.go)
	obs := func(route string, h http.HandlerFunc) http.Handler {
		if cfg.Observe == nil {
			return h
		}
		return cfg.Observe(route, h)
	}
	limit := newInFlight(cfg.MaxInFlight)
	r.Method(http.MethodPut, "/kv/*", obs("/kv/{key}", limit.wrap(s, s.putKey)))
	// Watches and long polls last: they are not counted with the requests in flight
	// (watchOr), and are observed under a route of their own.
	r.Method(http.MethodGet, "/kv/*", s.watchOr(obs("/kv/{key}?watch", http.HandlerFunc(s.watchKey)), obs("/kv/{key}", limit.wrap(s, s.getKey))))
	r.Method(http.MethodDelete, "/kv/*", obs("/kv/{key}", limit.wrap(s, s.deleteKey)))
	list := s.watchOr(obs("/kv?watch", http.HandlerFunc(s.watchPrefix)), obs("/kv", limit.wrap(s, s.listKeys)))
	r.Method(http.MethodGet, "/kv", list)
	r.Method(http.MethodGet, "/kv/", list)
	r.Method(http.MethodGet, "/admin/nodes", obs("/admin/nodes", s.listNodes))
	r.Method(http.MethodPost, "/admin/nodes", obs("/admin/nodes", requireJSON(s.joinNode)))
	r.Method(http.MethodDelete, "/admin/nodes/{id}", obs("/admin/nodes/{id}", s.decommissionNode))
	r.Method(http.MethodGet, "/admin/groups", obs("/admin/groups", s.listGroups))
	r.Method(http.MethodGet, "/admin/groups/{id}", obs("/admin/groups/{id}", s.getGroup))
	r.Method(http.MethodPost, "/admin/groups/{id}/leader", obs("/admin/groups/{id}/leader", requireJSON(s.transferLeader)))
	r.Method(http.MethodGet, "/admin/groups/{id}/digest", obs("/admin/groups/{id}/digest", s.groupDigest))
	r.Method(http.MethodGet, "/admin/partitions", obs("/admin/partitions", s.listPartitions))
	r.Method(http.MethodGet, "/admin/backup", obs("/admin/backup", s.getBackup))
	if s.tokens != nil {
		r.Method(http.MethodPost, "/admin/tokens", obs("/admin/tokens", requireJSON(s.createToken)))
		r.Method(http.MethodGet, "/admin/tokens", obs("/admin/tokens", s.listTokens))
		r.Method(http.MethodDelete, "/admin/tokens/{id}", obs("/admin/tokens/{id}", s.revokeToken))
	}
	r.Method(http.MethodGet, "/internal/status", obs("/internal/status", s.internalStatus))
	r.Method(http.MethodGet, "/internal/watch/groups/{id}", obs("/internal/watch/groups/{id}", s.internalWatch))
	r.Method(http.MethodGet, "/internal/backup/groups/{id}", obs("/internal/backup/groups/{id}", s.getGroupSection))
	if s.backup != nil {
		r.Method(http.MethodPost, "/internal/backup/cuts/{cut}/hold", obs("/internal/backup/cuts/{cut}/hold", requireJSON(s.holdCut)))
		r.Method(http.MethodPost, "/internal/backup/cuts/{cut}/open", obs("/internal/backup/cuts/{cut}/open", s.openCut))
		r.Method(http.MethodDelete, "/internal/backup/cuts/{cut}", obs("/internal/backup/cuts/{cut}", s.dropCut))
	}
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	for path, h := range map[string]http.Handler{"/metrics": cfg.Metrics, "/openapi.yaml": cfg.Spec} {
		if h != nil {
			r.Method(http.MethodGet, path, h)
		}
	}
	if cfg.UI != nil {
		r.Mount("/ui", cfg.UI)
	}
	if cfg.Debug != nil {
		r.Mount("/debug/pprof", cfg.Debug)
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, Problem{Title: "Not Found", Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path, Instance: r.URL.Path})
	})
	s.router = r
	r.MethodNotAllowed(s.methodNotAllowed) // set last: mounted sub-routers inherit it
	return s
}

// Routes is the router, for enumerating the API's routes (chi.Walk).
func (s *Server) Routes() chi.Routes { return s.router }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// recoverer turns a panic in a handler into a 500 problem and a log line, so no panic
// reaches a client as a dropped connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeProblem(w, Problem{Title: "Internal Server Error", Status: http.StatusInternalServerError,
					Detail: "internal error; see the node's log", Instance: r.URL.Path})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// NewHTTPServer wraps h with the timeouts and header limits every listener uses, so a
// slow or stalled client cannot hold a connection or a goroutine for long.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          serverErrorLog(log),
	}
}
