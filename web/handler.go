package web

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// Config assembles the dashboard.
type Config struct {
	Cluster ClusterView
	KV      KV
	NodeID  string // the node serving the dashboard, shown in the header
	// Replication is the desired number of replicas per group (under-replication is
	// measured against it); 0 counts only unhealthy replicas.
	Replication int
	// Refresh is how often live regions refetch (default 2s).
	Refresh time.Duration
	// Timeout bounds the calls one page makes (default 5s).
	Timeout time.Duration
	Now     func() time.Time // default time.Now; tests fix it
	Log     *slog.Logger
	// Backup, when set, reports the scheduled backups (--backup-dir); the overview
	// shows the last one's time, size and status.
	Backup func() BackupStatus
	// Login and Logout, set when the node checks credentials, serve the login page
	// (login.go): Login checks a token and sets the session cookie on w (an error: the
	// token is not valid, nothing set); Logout clears it. nil: no login page.
	Login  func(w http.ResponseWriter, r *http.Request, token string) error
	Logout func(w http.ResponseWriter, r *http.Request)
}

type handler struct {
	cfg Config
}

// New returns the dashboard's handler. Mount it at Prefix (chi's Mount strips the
// prefix from the routing path; the links it renders carry Prefix).
func New(cfg Config) http.Handler {
	if cfg.Refresh <= 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &handler{cfg: cfg}
	r := chi.NewRouter()
	r.Use(securityHeaders)
	r.Use(middleware.GetHead) // every page answers HEAD as GET, without the body (RFC 9110)
	r.Get("/", h.overview)
	r.Get("/fragments/overview", h.overviewFragment)
	r.Get("/nodes/{id}", h.node)
	r.Get("/fragments/nodes/{id}", h.nodeFragment)
	r.Get("/groups/{id}", h.group)
	r.Get("/fragments/groups/{id}", h.groupFragment)
	r.Get("/keys", h.keys)
	r.Get("/keys/view", h.viewKey)
	r.Get("/keys/delete", h.confirmDelete)
	// Form posts are the one thing a page on another site could make a browser send
	// here; CrossOriginProtection refuses them (Sec-Fetch-Site / Origin checks).
	r.Group(func(r chi.Router) {
		r.Use(http.NewCrossOriginProtection().Handler)
		r.Post("/keys/put", h.put)
		r.Post("/keys/delete", h.delete)
		if cfg.Login != nil && cfg.Logout != nil {
			r.Post("/login", h.login)
			r.Post("/logout", h.logout)
		}
	})
	if cfg.Login != nil && cfg.Logout != nil {
		r.Get("/login", h.loginPage)
	}
	r.Get("/static/*", serveStatic)
	r.Get("/grafana.json", serveGrafana)
	r.NotFound(h.notFound)
	return r
}

// securityHeaders: every script and style is served from here, so the policy can be
// strict (no inline script, no inline style).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) page(title, nav string, live bool) Page {
	return Page{Title: title, NodeID: h.cfg.NodeID, Nav: nav, Now: h.cfg.Now(), Live: live, RefreshMs: int(h.cfg.Refresh / time.Millisecond),
		Auth: h.cfg.Login != nil}
}

// render writes c in full or not at all: it is rendered into a buffer first, so a
// failure is a clean 500 rather than half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		h.cfg.Log.Error("dashboard render failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error rendering the page; see the node's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// load fetches the overview's three sections at once; each keeps its own error.
func (h *handler) load(ctx context.Context, nodes, groups, parts bool) Overview {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	o := Overview{Replication: h.cfg.Replication, Now: h.cfg.Now()}
	if h.cfg.Backup != nil {
		b := h.cfg.Backup()
		o.Backup = &b
	}
	var wg sync.WaitGroup
	if nodes {
		wg.Go(func() { o.Nodes, o.NodesErr = h.cfg.Cluster.Nodes(ctx) })
	}
	if groups {
		wg.Go(func() { o.Groups, o.GroupsErr = h.cfg.Cluster.Groups(ctx) })
	}
	if parts {
		wg.Go(func() { o.Partitions, o.PartitionsErr = h.cfg.Cluster.Partitions(ctx) })
	}
	wg.Wait()
	return o
}

func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	o := h.load(r.Context(), true, true, true)
	h.render(w, r, http.StatusOK, OverviewPage(h.page("Overview", "overview", true), o))
}

func (h *handler) overviewFragment(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, OverviewBody(h.load(r.Context(), true, true, true)))
}

func (h *handler) nodeView(r *http.Request) NodeView {
	id := chi.URLParam(r, "id")
	if raw, err := url.PathUnescape(id); err == nil { // chi matches the escaped path
		id = raw
	}
	o := h.load(r.Context(), true, true, false)
	v := NodeView{ID: id, NodesErr: o.NodesErr, GroupsErr: o.GroupsErr, Now: o.Now}
	for _, n := range o.Nodes {
		if n.ID == id {
			v.Node, v.Found = n, true
		}
	}
	for _, g := range o.Groups {
		for _, rep := range g.Replicas {
			if rep.Node == id {
				v.Replicas = append(v.Replicas, NodeReplica{Group: g, Replica: rep})
			}
		}
	}
	return v
}

func (h *handler) node(w http.ResponseWriter, r *http.Request) {
	v := h.nodeView(r)
	status := http.StatusOK
	if v.NodesErr == nil && !v.Found {
		status = http.StatusNotFound
	}
	h.render(w, r, status, NodePage(h.page("Node "+v.ID, "", true), v))
}

func (h *handler) nodeFragment(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, NodeBody(h.nodeView(r)))
}

func (h *handler) groupView(r *http.Request) (GroupView, bool) {
	id, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 32)
	if err != nil {
		return GroupView{}, false
	}
	o := h.load(r.Context(), false, true, true)
	v := GroupView{ID: uint32(id), GroupsErr: o.GroupsErr, PartitionsErr: o.PartitionsErr, Groups: o.Groups}
	for _, g := range o.Groups {
		if g.ID == v.ID {
			v.Group, v.Found = g, true
		}
	}
	for _, p := range o.Partitions.Partitions {
		if p.Group == v.ID {
			v.Partitions = append(v.Partitions, p)
		}
	}
	return v, true
}

func (h *handler) group(w http.ResponseWriter, r *http.Request) {
	v, ok := h.groupView(r)
	if !ok {
		h.notFound(w, r)
		return
	}
	status := http.StatusOK
	if v.GroupsErr == nil && !v.Found {
		status = http.StatusNotFound
	}
	h.render(w, r, status, GroupPage(h.page("Group "+u32(v.ID), "", true), v))
}

func (h *handler) groupFragment(w http.ResponseWriter, r *http.Request) {
	v, ok := h.groupView(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.render(w, r, http.StatusOK, GroupBody(v))
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusNotFound, NotFoundPage(h.page("Not found", "", false), r.URL.Path))
}
