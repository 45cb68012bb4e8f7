package app

import (
	"net/http"

	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/web"
)

// dashboard is the /ui/ handler. It reads and writes through the node's own API
// handler, in process, so it takes the path a client takes (forwarding to leaders, the
// meta leader's node list, the API's errors). The API is built after the dashboard,
// since it mounts it, so it is looked up through the server when a page is served.
func (n *Node) dashboard() http.Handler {
	api := web.NewLocalAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.server.Handler.ServeHTTP(w, r)
	}))
	cfg := web.Config{Cluster: api, KV: api, NodeID: n.cfg.ID, Replication: n.cfg.Replicas, Log: n.log}
	if n.cfg.Auth {
		sess := httpapi.Session{Auth: tokenBackend{n}}
		cfg.Login, cfg.Logout = sess.Login, sess.Logout
	}
	if n.backups != nil {
		cfg.Backup = func() web.BackupStatus {
			b := n.backups.Status()
			return web.BackupStatus{Started: b.Started, Took: b.Took, Bytes: b.Bytes, Err: b.Err}
		}
	}
	return web.New(cfg)
}
