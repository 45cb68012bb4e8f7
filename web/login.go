package web

import (
	"net/http"
)

// The login page, when the node checks credentials (Config.Login set): the token typed
// is handed to Login, which sets the session cookie the node's auth accepts; Logout
// clears it. Both are form posts, behind the cross-origin check like every other.

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, LoginPage(h.loginFrame(), LoginView{}))
}

// loginFrame is the login page's frame: no logout button (nobody is logged in).
func (h *handler) loginFrame() Page {
	p := h.page("Log in", "", false)
	p.Auth = false
	return p
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	if err := h.cfg.Login(w, r, r.PostForm.Get("token")); err != nil {
		h.render(w, r, http.StatusUnauthorized, LoginPage(h.loginFrame(), LoginView{Failed: true}))
		return
	}
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	h.cfg.Logout(w, r)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}
