package app

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawItem is a listed key as the API writes it: key when UTF-8, else key_base64.
type rawItem struct {
	Key       *string `json:"key"`
	KeyBase64 *[]byte `json:"key_base64"`
}

func (it rawItem) raw(t *testing.T) string {
	t.Helper()
	if (it.Key == nil) == (it.KeyBase64 == nil) {
		t.Fatalf("item has key %v and key_base64 %v: want exactly one", it.Key, it.KeyBase64)
	}
	if it.Key != nil {
		return *it.Key
	}
	return string(*it.KeyBase64)
}

// TestKeysThatAreNotUTF8 (issue #12, item 5) on a 3-node cluster whose groups are led
// by different nodes: a\xFE and a\xFF, beside UTF-8 keys in other groups, are listed
// exactly, once each, in raw byte order, paging with limit=1 by next until it ends;
// each listed key is read and deleted by what the listing said, through the API and
// through the dashboard.
func TestKeysThatAreNotUTF8(t *testing.T) {
	c := startCluster(t, 3)
	paths := map[string]string{ // raw key -> its path-escaped form
		"a\xfe": "a%FE", "a\xff": "a%FF", "a": "a", "b/c": "b%2Fc", "é": "%C3%A9", "zz": "zz", "k1": "k1", "k2": "k2",
	}
	groups := map[string]bool{}
	for _, p := range paths {
		c.mustPut(0, p, "v-"+p)
		_, hdr, _ := c.do(0, http.MethodGet, "/kv/"+p, "")
		groups[hdr.Get("X-Ringkv-Group")] = true
	}
	if len(groups) < 3 {
		t.Fatalf("the keys landed in %d groups; the test needs keys in several", len(groups))
	}
	want := slices.Sorted(func(yield func(string) bool) {
		for k := range paths {
			if !yield(k) {
				return
			}
		}
	})

	// list pages through node i with limit=1, returning every key it was given.
	list := func(i int) []string {
		var got []string
		q := url.Values{"limit": {"1"}, "keys_only": {"true"}}
		for pages := 0; ; pages++ {
			if pages > len(paths) {
				t.Fatalf("paging does not end after %d pages: %q", pages, got)
			}
			var page struct {
				Items []rawItem `json:"items"`
				Next  string    `json:"next"`
			}
			// Leaders are still being balanced over the nodes: a 503 (nothing done, a
			// group's leader moving) is asked again.
			eventually(t, 20*time.Second, "a page of the listing", func() error {
				if s := c.getJSON(i, "/kv?"+q.Encode(), &page); s != http.StatusOK {
					return fmt.Errorf("list: %d", s)
				}
				return nil
			})
			for _, it := range page.Items {
				got = append(got, it.raw(t))
			}
			if page.Next == "" {
				return got
			}
			q.Set("cursor", page.Next)
		}
	}
	for i := range c.nodes {
		if got := list(i); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("node %d listed %q\nwant          %q", i, got, want)
		}
	}

	// Read each key by the bytes the listing gave, through the API (a\xFE) and through
	// the dashboard (a\xFF): its page opens, and its delete form deletes it.
	for _, k := range []string{"a\xfe", "a\xff"} {
		var kv struct {
			rawItem
			Value string `json:"value"`
		}
		if s := c.getJSON(1, "/kv/"+url.PathEscape(k), &kv); s != http.StatusOK || kv.raw(t) != k || kv.Value != "v-"+paths[k] {
			t.Fatalf("GET %q: %d %+v", k, s, kv)
		}
		if kv.KeyBase64 == nil || base64.StdEncoding.EncodeToString(*kv.KeyBase64) == "" {
			t.Fatalf("GET %q did not answer key_base64", k)
		}
	}
	_, _, page := c.do(0, http.MethodGet, "/ui/keys", "")
	for _, k := range []string{"a\xfe", "a\xff"} {
		link := "/ui/keys/view?key=" + url.QueryEscape(k)
		if !strings.Contains(string(page), `href="`+link+`"`) {
			t.Fatalf("the key browser does not link %q as %s", k, link)
		}
		if s, _, body := c.do(0, http.MethodGet, link, ""); s != http.StatusOK || !strings.Contains(string(body), "v-"+paths[k]) {
			t.Fatalf("dashboard page of %q: %d", k, s)
		}
	}
	form := url.Values{"key_esc": {url.QueryEscape("a\xff")}, "confirm": {"yes"}}.Encode()
	if s, _, body := c.do(0, http.MethodPost, "/ui/keys/delete", form, "Content-Type", "application/x-www-form-urlencoded"); s != http.StatusOK {
		t.Fatalf("dashboard delete of a\\xff: %d %s", s, body) // the client follows the redirect
	}
	if s, _, body := c.do(2, http.MethodDelete, "/kv/a%FE?prev=true", ""); s != http.StatusOK || !strings.Contains(string(body), `"key_base64":"`+base64.StdEncoding.EncodeToString([]byte("a\xfe"))+`"`) {
		t.Fatalf("DELETE a\\xfe: %d %s", s, body)
	}
	for _, p := range []string{"a%FE", "a%FF"} {
		if s, _, _ := c.do(0, http.MethodGet, "/kv/"+p, ""); s != http.StatusNotFound {
			t.Fatalf("GET %s after its delete: %d, want 404", p, s)
		}
	}
	if got := list(2); len(got) != len(want)-2 {
		t.Fatalf("after the deletes node 3 lists %q", got)
	}
}
