package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/go-chi/chi/v5"
)

// static holds the stylesheet, the live-refresh script and the icon: everything the
// pages load, compiled into the binary.
//
//go:embed static
var static embed.FS

// GrafanaDashboard is grafana/ringkv-dashboard.json: a Grafana dashboard over the
// metrics a node exports, served at /ui/grafana.json for import.
//
//go:embed grafana/ringkv-dashboard.json
var GrafanaDashboard []byte

func serveGrafana(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="ringkv-dashboard.json"`)
	http.ServeContent(w, r, "ringkv-dashboard.json", time.Time{}, bytes.NewReader(GrafanaDashboard))
}

// serveStatic serves static/<name>. The ETag is the content's hash, so a browser
// revalidates cheaply and never keeps an old stylesheet after an upgrade.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := path.Clean("static/" + chi.URLParam(r, "*"))
	b, err := fs.ReadFile(static, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	w.Header().Set("Cache-Control", "no-cache")
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}
