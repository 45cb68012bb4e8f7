package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// The key browser's handlers. Reads are GETs; writes are form posts answered with a
// redirect (post/redirect/get), so reloading a result page never repeats a write.

// pageSize is how many keys one page of the browser lists.
const pageSize = 50

// maxFormBytes bounds a put form: the API's own limit on values (1 MiB by default,
// 4 MiB at most) plus room for form encoding of the key.
const maxFormBytes = 3*(4<<20) + 64<<10

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.cfg.Timeout)
}

func (h *handler) keys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := KeysView{Prefix: q.Get("prefix"), After: q.Get("after")}
	if q.Get("deleted") != "" {
		v.Flash = "Deleted key " + printable(q.Get("deleted")) + "."
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	v.Page, v.Err = h.cfg.KV.List(ctx, v.Prefix, v.After, pageSize)
	h.render(w, r, http.StatusOK, KeysPage(h.page("Keys", "keys", false), v))
}

func (h *handler) viewKey(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("key")
	if key == "" {
		http.Redirect(w, r, Prefix+"/keys", http.StatusSeeOther)
		return
	}
	v := KeyView{Key: key}
	switch q.Get("saved") {
	case "created":
		v.Flash = "Created the key."
	case "updated":
		v.Flash = "Saved the new value."
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	v.Entry, v.Err = h.cfg.KV.Get(ctx, key)
	h.render(w, r, errStatus(v.Err), KeyValuePage(h.page("Key "+printable(key), "keys", false), v))
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.putFailed(w, r, PutForm{Err: &APIError{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "the form could not be read: " + err.Error()}})
		return
	}
	// Browsers send a textarea's line breaks as CRLF; store what the user typed.
	f := PutForm{Key: formKey(r.PostForm), Value: strings.ReplaceAll(r.PostForm.Get("value"), "\r\n", "\n"),
		FixedKey: r.PostForm.Has("key_esc")}
	if f.Key == "" {
		f.Err = &APIError{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "the key is empty"}
		h.putFailed(w, r, f)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.cfg.KV.Put(ctx, f.Key, []byte(f.Value))
	if err != nil {
		f.Err = err
		h.putFailed(w, r, f)
		return
	}
	saved := "updated"
	if res.Created {
		saved = "created"
	}
	http.Redirect(w, r, keyURL(f.Key)+"&saved="+saved, http.StatusSeeOther)
}

func (h *handler) putFailed(w http.ResponseWriter, r *http.Request, f PutForm) {
	h.render(w, r, errStatus(f.Err), PutPage(h.page("Put a key", "keys", false), f))
}

// formKey reads the key of the delete form and of the key page's put form: it travels
// query-escaped in key_esc, so a key that is not valid UTF-8 survives the form's text
// encoding.
func formKey(form url.Values) string {
	if esc := form.Get("key_esc"); esc != "" {
		if k, err := url.QueryUnescape(esc); err == nil {
			return k
		}
	}
	return form.Get("key")
}

func (h *handler) confirmDelete(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if key == "" {
		http.Redirect(w, r, Prefix+"/keys", http.StatusSeeOther)
		return
	}
	h.deletePage(w, r, DeleteView{Key: key})
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read: "+err.Error(), http.StatusBadRequest)
		return
	}
	v := DeleteView{Key: formKey(r.PostForm)}
	if v.Key == "" {
		http.Redirect(w, r, Prefix+"/keys", http.StatusSeeOther)
		return
	}
	// The checkbox is required in the page too; a post without it (no browser
	// validation, a hand-made request) is asked again rather than obeyed.
	if r.PostForm.Get("confirm") != "yes" {
		v.Err = &APIError{Status: http.StatusBadRequest, Title: "Not confirmed", Detail: "tick the box to confirm the delete"}
		h.deletePage(w, r, v)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.cfg.KV.Delete(ctx, v.Key); err != nil {
		v.Err = err
		h.deletePage(w, r, v)
		return
	}
	http.Redirect(w, r, Prefix+"/keys?deleted="+url.QueryEscape(v.Key), http.StatusSeeOther)
}

// deletePage is the delete confirmation, with v.Err's status when it failed.
func (h *handler) deletePage(w http.ResponseWriter, r *http.Request, v DeleteView) {
	h.render(w, r, errStatus(v.Err), DeletePage(h.page("Delete "+printable(v.Key), "keys", false), v))
}

// errStatus is the status of a page that shows err: the API's own when it gave one.
func errStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if ae, ok := asAPIError(err); ok && ae.Status >= 400 {
		return ae.Status
	}
	return http.StatusBadGateway
}
