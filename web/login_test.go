package web

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// TestLoginPage: with Login set the dashboard has a login page whose form hands the
// token to Login (a good one: to the overview; a bad one: 401 and the page again), a
// logout button on every page, and logout; without it there is no login page.
func TestLoginPage(t *testing.T) {
	s := newSite(t)
	var got []string
	loggedOut := false
	r := chi.NewRouter()
	r.Mount(Prefix, New(Config{Cluster: s.cluster, KV: s.kv, NodeID: "n1", Replication: 3, Refresh: time.Second, Now: func() time.Time { return testNow },
		Login: func(w http.ResponseWriter, r *http.Request, token string) error {
			got = append(got, token)
			if token != "good" {
				return errors.New("refused")
			}
			http.SetCookie(w, &http.Cookie{Name: "session", Value: token})
			return nil
		},
		Logout: func(w http.ResponseWriter, r *http.Request) { loggedOut = true },
	}))
	withoutLogin := s.h
	s.h = r

	resp, body := s.do("GET", "/ui/login", nil)
	d := parseDoc(t, body)
	if resp.StatusCode != 200 || !d.has("login-form") || attr(d.one("login-token"), "type") != "password" || d.has("login-error") || d.has("logout-form") {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, body)
	}
	checkLabels(t, d)
	resp, body = s.do("POST", "/ui/login", url.Values{"token": {"bad"}})
	if resp.StatusCode != http.StatusUnauthorized || !parseDoc(t, body).has("login-error") || len(resp.Cookies()) != 0 {
		t.Fatalf("bad token: %d %v\n%s", resp.StatusCode, resp.Cookies(), body)
	}
	resp, _ = s.do("POST", "/ui/login", url.Values{"token": {"good"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" || len(resp.Cookies()) != 1 {
		t.Fatalf("good token: %d %v", resp.StatusCode, resp.Header)
	}
	if len(got) != 2 || got[0] != "bad" || got[1] != "good" {
		t.Fatalf("Login was handed %q", got)
	}
	if resp, _ := s.do("POST", "/ui/login", url.Values{"token": {"good"}}, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login form: %d", resp.StatusCode)
	}
	_, body = s.do("GET", "/ui/", nil)
	if !parseDoc(t, body).has("logout-form") {
		t.Fatal("no logout button on the overview")
	}
	resp, _ = s.do("POST", "/ui/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" || !loggedOut {
		t.Fatalf("logout: %d %v (logged out: %v)", resp.StatusCode, resp.Header, loggedOut)
	}

	s.h = withoutLogin
	if resp, _ := s.do("GET", "/ui/login", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("login page without Login: %d", resp.StatusCode)
	}
	if _, body := s.do("GET", "/ui/", nil); parseDoc(t, body).has("logout-form") {
		t.Fatal("logout button without Login")
	}
}
