package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// The token API (admin role; auth.go): tokens are kept by the meta group, so every
// call is served on the meta leader (metaLed), which sees every token it has made.

// Tokens is the token side of a node.
type Tokens interface {
	// CreateToken makes a token; errors wrap ErrBadRequest (role, prefixes, name).
	CreateToken(ctx context.Context, req TokenRequest) (CreatedToken, error)
	// ListTokens lists every token, without secrets.
	ListTokens(ctx context.Context) ([]TokenInfo, error)
	// RevokeToken removes token id; ErrNotFound when there is none.
	RevokeToken(ctx context.Context, id string) error
}

// TokenRequest is POST /admin/tokens' body.
type TokenRequest struct {
	Role     Role     `json:"role"`
	Prefixes []string `json:"prefixes,omitempty"` // read and readwrite only; none: every key
	Name     string   `json:"name,omitempty"`
}

// TokenInfo is a token as listed: never its secret.
type TokenInfo struct {
	ID       string    `json:"id"`
	Role     Role      `json:"role"`
	Prefixes []string  `json:"prefixes,omitempty"`
	Name     string    `json:"name,omitempty"`
	Created  time.Time `json:"created"`
}

// CreatedToken answers POST /admin/tokens: the token, shown this once.
type CreatedToken struct {
	TokenInfo
	Token string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 512<<10))
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	var req TokenRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: the body must be a JSON object with role (read, readwrite or admin) and optionally prefixes and name: %v", ErrBadRequest, err))
		return
	}
	if req.Role.rank() == 0 {
		writeError(w, r, s.log, fmt.Errorf("%w: role must be read, readwrite or admin, not %q", ErrBadRequest, req.Role))
		return
	}
	if !s.metaLed(w, r, body) {
		return
	}
	tok, err := s.tokens.CreateToken(r.Context(), req)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // the token: shown once, kept nowhere
	writeJSON(w, http.StatusCreated, tok)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if !s.metaLed(w, r, nil) {
		return
	}
	list, err := s.tokens.ListTokens(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if !s.metaLed(w, r, nil) {
		return
	}
	id := chi.URLParam(r, "id")
	if rest, ok := strings.CutPrefix(id, "rkv_"); ok {
		// A whole token given where its id belongs (`ringkv token revoke $TOKEN`): revoke
		// it by its id, and never echo the secret in an answer.
		id, _, _ = strings.Cut(rest, "_")
		r = r.Clone(r.Context())
		r.URL.Path = "/admin/tokens/" + id
	}
	if err := s.tokens.RevokeToken(r.Context(), id); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
