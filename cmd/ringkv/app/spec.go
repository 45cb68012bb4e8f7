package app

import (
	"net/http"

	"github.com/ringkv/ringkv/openapi"
)

// specHandler serves openapi/openapi.yaml, compiled into the binary.
func specHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openapi.Spec)
	})
}
