package app

import "net/http"

// specHandler serves openapi/openapi.yaml.
func specHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "spec not available", http.StatusNotFound)
	})
}
