package httpapi

import (
	"fmt"
	"net/http"
	"strings"
)

// Session logs a browser in to the dashboard: the token typed into the login page is
// kept in the session cookie, which auth.go accepts as the token (HttpOnly: no script
// reads it; SameSite=Strict: no other site's page makes the browser send it; Secure
// over TLS). The cookie holds the token itself, so revoking the token ends every
// session made with it, on every node at once.
type Session struct {
	Auth Authenticator
}

// Login checks token and, when it is valid, sets the session cookie on w; otherwise it
// sets nothing and returns an error wrapping ErrUnauthorized (never naming the token).
func (s Session) Login(w http.ResponseWriter, r *http.Request, token string) error {
	token = strings.TrimSpace(token)
	if s.Auth == nil {
		return fmt.Errorf("%w: this node does not check credentials (auth is off)", ErrBadRequest)
	}
	if _, ok := s.Auth.Authenticate(token); !ok {
		return errBadToken
	}
	http.SetCookie(w, sessionCookie(r, token, 0))
	return nil
}

// Logout clears the session cookie.
func (Session) Logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, sessionCookie(r, "", -1))
}

// sessionCookie is the session cookie holding token; maxAge < 0 deletes it, 0 keeps
// it for the browser's session.
func sessionCookie(r *http.Request, token string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}
