package app

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler is net/http/pprof's handlers under /debug/pprof/, or nil when off. They
// are registered here rather than through the package's init on the default mux, which
// the node never serves.
func pprofHandler(on bool) http.Handler {
	if !on {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
