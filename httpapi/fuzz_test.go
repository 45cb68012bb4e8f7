package httpapi

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzKeyFromPath: any request path under /kv/ yields either a valid key (1..4096
// bytes, which path-escapes back to a path naming the same key) or a 400, never a
// panic or another error.
func FuzzKeyFromPath(f *testing.F) {
	for _, s := range []string{"/kv/a", "/kv/a/b/c", "/kv/a%2Fb", "/kv/%00%ff", "/kv/%zz", "/kv/", "/kv/%E2%82%AC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		u, err := url.Parse(path)
		if err != nil || len(path) == 0 || path[0] != '/' {
			return
		}
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.URL = u
		key, err := keyFromPath(r)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("%q: error %v is not a bad request", path, err)
			}
			return
		}
		if len(key) == 0 || len(key) > MaxKeyBytes {
			t.Fatalf("%q: accepted a key of %d bytes", path, len(key))
		}
		r2 := httptest.NewRequest("GET", "http://x/", nil)
		r2.URL = &url.URL{Path: "/kv/" + string(key), RawPath: "/kv/" + url.PathEscape(string(key))}
		again, err := keyFromPath(r2)
		if err != nil || string(again) != string(key) {
			t.Fatalf("%q: key %q does not survive escaping: %q %v", path, key, again, err)
		}
	})
}
