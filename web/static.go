package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"sync"
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
	w.Header().Set("Content-Disposition", `attachment; filename="ringkv-dashboard.json"`)
	http.ServeContent(w, r, "ringkv-dashboard.json", time.Time{}, bytes.NewReader(GrafanaDashboard))
}

// staticFile is one embedded asset with its ETag.
type staticFile struct {
	body []byte
	etag string
}

// staticFiles are the assets and their ETags, read and hashed once: every page load
// revalidates them.
var staticFiles = sync.OnceValue(func() map[string]staticFile {
	files := map[string]staticFile{}
	_ = fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[name] = staticFile{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return files
})

// serveStatic serves static/<name>. The ETag is the content's hash, so a browser
// revalidates cheaply and never keeps an old stylesheet after an upgrade.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := path.Clean("static/" + chi.URLParam(r, "*"))
	f, ok := staticFiles()[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", f.etag)
	w.Header().Set("Cache-Control", "no-cache")
	// ServeContent sets the Content-Type from the name's extension.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}
