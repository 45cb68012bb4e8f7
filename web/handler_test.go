package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// Handler tests: the dashboard mounted at /ui as the node mounts it, over fakes.

type site struct {
	t       *testing.T
	h       http.Handler
	cluster *fakeCluster
	kv      *fakeKV
}

func newSite(t *testing.T) *site {
	s := &site{t: t, cluster: newFakeCluster(), kv: newFakeKV()}
	r := chi.NewRouter()
	r.Mount(Prefix, New(Config{Cluster: s.cluster, KV: s.kv, NodeID: "n1", Replication: 3, Refresh: time.Second, Now: func() time.Time { return testNow }}))
	s.h = r
	return s
}

// do serves one request and returns the response with its body read.
func (s *site) do(method, target string, form url.Values, hdr ...string) (*http.Response, string) {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPages(t *testing.T) {
	s := newSite(t)
	tests := []struct {
		path   string
		status int
		testid string // an element the page must have
	}{
		{"/ui/", 200, "nodes-table"},
		{"/ui", 200, "nodes-table"},
		{"/ui/nodes/n2", 200, "node-replicas-table"},
		{"/ui/nodes/nope", 404, "not-found"},
		{"/ui/groups/3", 200, "group-replicas-table"},
		{"/ui/groups/99", 404, "not-found"},
		{"/ui/groups/x", 404, "not-found"},
		{"/ui/keys", 200, "put-form"},
		{"/ui/keys/view?key=missing", 404, "error"},
		{"/ui/keys/delete?key=k", 200, "delete-form"},
		{"/ui/nowhere", 404, "not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := s.do("GET", tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
			d := parseDoc(t, body)
			if !d.has(tt.testid) {
				t.Errorf("no %s in the page", tt.testid)
			}
			checkLabels(t, d)
		})
	}
}

func TestNodeAndGroupPages(t *testing.T) {
	s := newSite(t)
	_, body := s.do("GET", "/ui/nodes/n1", nil)
	d := parseDoc(t, body)
	if got := d.text("node-state"); got != "up" {
		t.Errorf("state %q", got)
	}
	// n1 holds replicas of groups 0, 1 and 3; in group 3 it lags.
	for _, g := range []string{"0", "1", "3"} {
		if !d.has("node-replica-" + g) {
			t.Errorf("no replica of group %s", g)
		}
	}
	if got := d.text("node-replica-status-3"); got != StatusLagging {
		t.Errorf("group 3 replica status %q", got)
	}
	if attr(d.one("node-live"), "data-refresh") != "/ui/fragments/nodes/n1" {
		t.Error("node page is not live")
	}

	_, body = s.do("GET", "/ui/groups/1", nil)
	d = parseDoc(t, body)
	if d.text("group-leader") != "n1" || d.text("group-term") != "2" {
		t.Errorf("group facts %q", d.text("group-facts"))
	}
	if !d.has("partition-row-0") || !d.has("partition-row-3") || d.has("partition-row-1") {
		t.Error("group 1's page lists other groups' partitions")
	}
	if attr(d.one("group-live"), "data-refresh") != "/ui/fragments/groups/1" {
		t.Error("group page is not live")
	}
}

// The fragments are the live regions' content alone: no document around them.
func TestFragments(t *testing.T) {
	s := newSite(t)
	for path, testid := range map[string]string{
		"/ui/fragments/overview":   "health-summary",
		"/ui/fragments/nodes/n3":   "node-facts",
		"/ui/fragments/groups/2":   "group-facts",
		"/ui/fragments/groups/abc": "",
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := s.do("GET", path, nil)
			if testid == "" {
				if resp.StatusCode != 404 {
					t.Errorf("status %d", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			if strings.Contains(body, "<html") || strings.Contains(body, "<header") {
				t.Error("a fragment carries the page frame")
			}
			if !parseDoc(t, body).has(testid) {
				t.Errorf("no %s", testid)
			}
		})
	}
}

func TestPagesRenderWhenTheClusterFails(t *testing.T) {
	s := newSite(t)
	s.cluster.err = &APIError{Status: 503, Title: "Service Unavailable", Detail: "the cluster is not created yet"}
	for _, path := range []string{"/ui/", "/ui/nodes/n1", "/ui/groups/1", "/ui/fragments/overview"} {
		resp, body := s.do("GET", path, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
		if !strings.Contains(body, "the cluster is not created yet") {
			t.Errorf("%s does not show the error", path)
		}
	}
}

func TestStatic(t *testing.T) {
	s := newSite(t)
	for path, ct := range map[string]string{"/ui/static/style.css": "text/css", "/ui/static/live.js": "javascript", "/ui/static/favicon.svg": "image/svg+xml"} {
		resp, _ := s.do("GET", path, nil)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		etag := resp.Header.Get("ETag")
		if resp, _ := s.do("GET", path, nil, "If-None-Match", etag); etag == "" || resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s: revalidation with ETag %q gave %d", path, etag, resp.StatusCode)
		}
	}
	if resp, body := s.do("GET", "/ui/grafana.json", nil); resp.StatusCode != 200 || !json.Valid([]byte(body)) {
		t.Errorf("grafana.json: %d", resp.StatusCode)
	}
	for _, path := range []string{"/ui/static/nope.css", "/ui/static/../web.go"} {
		if resp, _ := s.do("GET", path, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}

func TestKeyBrowserLists(t *testing.T) {
	s := newSite(t)
	for i := range 60 {
		s.kv.data[keyN(i)] = []byte("v")
	}
	_, body := s.do("GET", "/ui/keys?prefix=k&after=k005", nil)
	if got := s.kv.listArgs; got[0] != "k" || got[1] != "k005" || got[2] != pageSize {
		t.Errorf("listed with %v", got)
	}
	d := parseDoc(t, body)
	if n := len(d.all("key-row")); n != pageSize {
		t.Errorf("%d rows", n)
	}
	if got := attr(d.one("next-page"), "href"); got != "/ui/keys?after=k055&prefix=k" {
		t.Errorf("next %q", got)
	}
}

func keyN(i int) string { return fmt.Sprintf("k%03d", i) }

func TestPutThenView(t *testing.T) {
	s := newSite(t)
	resp, _ := s.do("POST", "/ui/keys/put", url.Values{"key": {"a/b c"}, "value": {"one\r\ntwo"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if loc != "/ui/keys/view?key=a%2Fb+c&saved=created" {
		t.Errorf("redirect to %q", loc)
	}
	if got := string(s.kv.data["a/b c"]); got != "one\ntwo" {
		t.Errorf("stored %q: line breaks should be stored as typed", got)
	}
	_, body := s.do("GET", loc, nil)
	d := parseDoc(t, body)
	if d.text("flash") != "Created the key." || d.text("value-text") != "one two" || d.text("key-version") != "3" {
		t.Errorf("view: flash %q value %q", d.text("flash"), d.text("value-text"))
	}
	if got := attr(d.one("delete-link"), "href"); got != "/ui/keys/delete?key=a%2Fb+c" {
		t.Errorf("delete link %q", got)
	}
}

func TestPutErrorsAreShown(t *testing.T) {
	s := newSite(t)
	resp, body := s.do("POST", "/ui/keys/put", url.Values{"key": {""}, "value": {"x"}})
	if resp.StatusCode != 400 || !strings.Contains(body, "the key is empty") {
		t.Errorf("empty key: %d", resp.StatusCode)
	}
	s.kv.err = &APIError{Status: 503, Title: "Service Unavailable", Detail: "group 4 lost its leader", OutcomeUnknown: true}
	resp, body = s.do("POST", "/ui/keys/put", url.Values{"key": {"k"}, "value": {"typed text"}})
	if resp.StatusCode != 503 {
		t.Errorf("status %d", resp.StatusCode)
	}
	d := parseDoc(t, body)
	if d.text("error-detail") != "group 4 lost its leader" || !d.has("error-outcome") {
		t.Errorf("error %q", d.text("error"))
	}
	if d.text("put-value") != "typed text" || attr(d.one("put-key"), "value") != "k" {
		t.Error("the form lost what was typed")
	}
}

func TestDeleteNeedsConfirmation(t *testing.T) {
	s := newSite(t)
	key := "bin\xff/x"
	s.kv.data[key] = []byte("v")
	resp, body := s.do("POST", "/ui/keys/delete", url.Values{"key_esc": {url.QueryEscape(key)}})
	if resp.StatusCode != 400 || len(s.kv.deleted) != 0 {
		t.Fatalf("unconfirmed delete: status %d, deleted %v", resp.StatusCode, s.kv.deleted)
	}
	if !parseDoc(t, body).has("delete-confirm") {
		t.Error("the confirmation is not asked again")
	}
	resp, _ = s.do("POST", "/ui/keys/delete", url.Values{"key_esc": {url.QueryEscape(key)}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther || len(s.kv.deleted) != 1 || s.kv.deleted[0] != key {
		t.Fatalf("confirmed delete: status %d, deleted %q", resp.StatusCode, s.kv.deleted)
	}
	_, body = s.do("GET", resp.Header.Get("Location"), nil)
	if got := parseDoc(t, body).text("flash"); got != `Deleted key bin\xff/x.` {
		t.Errorf("flash %q", got)
	}
	// Deleting it again: the API's 404, shown on the confirmation page.
	resp, body = s.do("POST", "/ui/keys/delete", url.Values{"key": {key}, "confirm": {"yes"}})
	if resp.StatusCode != 404 || !parseDoc(t, body).has("error") {
		t.Errorf("second delete: %d", resp.StatusCode)
	}
}

// A form post from another site is refused before it reaches the store.
func TestCrossSitePostsAreRefused(t *testing.T) {
	s := newSite(t)
	for _, path := range []string{"/ui/keys/put", "/ui/keys/delete"} {
		resp, _ := s.do("POST", path, url.Values{"key": {"k"}, "value": {"v"}, "confirm": {"yes"}}, "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
	}
	if len(s.kv.data) != 0 {
		t.Error("a cross-site post wrote")
	}
	if resp, _ := s.do("POST", "/ui/keys/put", url.Values{"key": {"k"}, "value": {"v"}}, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin post: %d", resp.StatusCode)
	}
}

// The key page's form saves back to that key and that value, as a browser sends it:
// the text field turns a key's invalid UTF-8 into U+FFFD, and the HTML parser drops a
// newline right after <textarea>.
func TestKeyPageFormSavesTheSameKey(t *testing.T) {
	s := newSite(t)
	key := "bin\xff/x"
	s.kv.data[key] = []byte("\nfirst line empty")
	_, body := s.do("GET", keyURL(key), nil)
	d := parseDoc(t, body)
	form := url.Values{"key": {strings.ToValidUTF8(attr(d.one("put-key"), "value"), "\uFFFD")}}
	for _, in := range d.tags("input") {
		if attr(in, "type") == "hidden" && attr(in, "name") == "key_esc" {
			form.Set("key_esc", attr(in, "value"))
		}
	}
	textarea := d.one("put-value")
	if textarea.FirstChild == nil {
		t.Fatal("the form shows no value")
	}
	form.Set("value", textarea.FirstChild.Data+" edited")
	if resp, _ := s.do("POST", "/ui/keys/put", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("put: status %d", resp.StatusCode)
	}
	if len(s.kv.data) != 1 || string(s.kv.data[key]) != "\nfirst line empty edited" {
		t.Errorf("store after the save: %q", s.kv.data)
	}
}
