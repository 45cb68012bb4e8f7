package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// groupsKV is a node of a cluster of fake groups: it leads the groups in lead and
// knows the others' leader at peer's address. Every node of a test shares data, the
// groups' contents (group id -> key -> value).
type groupsKV struct {
	memKV
	lead map[uint32]bool
	data map[uint32]map[string]Value
	peer *string // the other node's base URL, set once it listens
	mu   *sync.Mutex
}

// groupOf places a key: its first byte picks the group, so a test chooses placement.
func groupOf(key []byte, groups int) uint32 { return uint32(key[0]) % uint32(groups) }

func (g *groupsKV) route(group uint32) Route {
	if g.lead[group] {
		return Route{Group: group, Local: true, Leader: true, LeaderID: "here"}
	}
	return Route{Group: group, LeaderID: "peer", LeaderHTTP: *g.peer}
}
func (g *groupsKV) Route(key []byte) (Route, error) {
	return g.route(groupOf(key, len(g.data))), nil
}
func (g *groupsKV) Routes() ([]Route, error) {
	var out []Route
	for id := range g.data {
		out = append(out, g.route(id))
	}
	return out, nil
}
func (g *groupsKV) GroupRoute(id uint32) (Route, error) { return g.route(id), nil }
func (g *groupsKV) List(ctx context.Context, in ListInput) (ListPage, error) {
	if !g.lead[in.Group] {
		return ListPage{}, ErrNotLeader
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	page, err := (&memKV{data: g.data[in.Group]}).List(ctx, in)
	for i := range page.Items {
		page.Items[i].Group = in.Group
	}
	return page, err
}

// twoNodes starts two API nodes over groups 0..2: the first leads groups 0 and 1, the
// second group 2, so a listing through the first merges a share that crossed HTTP.
func twoNodes(t *testing.T, keys ...string) (first *httptest.Server) {
	t.Helper()
	data := map[uint32]map[string]Value{0: {}, 1: {}, 2: {}}
	for i, k := range keys {
		data[groupOf([]byte(k), 3)][k] = Value{Value: []byte("v" + k), Version: 1, ModIndex: uint64(i + 1)}
	}
	return twoNodesOver(t, data)
}

// twoNodesOver is twoNodes over the groups' contents given.
func twoNodesOver(t *testing.T, data map[uint32]map[string]Value) (first *httptest.Server) {
	t.Helper()
	var mu sync.Mutex
	var urlA, urlB string
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := New(Config{AllowedHosts: testHosts, Log: quiet, KV: &groupsKV{lead: map[uint32]bool{0: true, 1: true}, data: data, peer: &urlB, mu: &mu}})
	b := New(Config{AllowedHosts: testHosts, Log: quiet, KV: &groupsKV{lead: map[uint32]bool{2: true}, data: data, peer: &urlA, mu: &mu}})
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	t.Cleanup(sa.Close)
	t.Cleanup(sb.Close)
	urlA, urlB = strings.TrimPrefix(sa.URL, "http://"), strings.TrimPrefix(sb.URL, "http://")
	return sa
}

type listedKey struct {
	Key       *string `json:"key"`
	KeyBase64 *string `json:"key_base64"`
	Group     uint32  `json:"group"`
}

// raw is the key an item names, checking that exactly one of key and key_base64 is
// there, and key_base64 only for a key that is not UTF-8.
func (it listedKey) raw(t *testing.T) string {
	t.Helper()
	switch {
	case it.Key != nil && it.KeyBase64 == nil:
		return *it.Key
	case it.Key == nil && it.KeyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*it.KeyBase64)
		if err != nil || strings.ToValidUTF8(string(b), "") == string(b) {
			t.Fatalf("key_base64 %q: %v, or a UTF-8 key sent as base64", *it.KeyBase64, err)
		}
		return string(b)
	}
	t.Fatalf("item has key %v and key_base64 %v: want exactly one", it.Key, it.KeyBase64)
	return ""
}

func getJSON(t *testing.T, target string, v any) int {
	t.Helper()
	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", target, err, body)
		}
	}
	return resp.StatusCode
}

// TestListPagesRawKeysInByteOrder: keys that are not valid UTF-8 (issue #12: a\xFE,
// a\xFF) come back exactly, as key_base64, in the byte order of the raw keys across
// groups, local and remote; paging with limit=1 by the opaque next ends and lists
// every key once.
func TestListPagesRawKeysInByteOrder(t *testing.T) {
	// a\xFE and a\xFF sort after every "a..." UTF-8 key and before "b"; \xFE and \xFF
	// as first bytes sort after every UTF-8 key. Groups: by first byte mod 3.
	keys := []string{"b", "a\xff", "a", "\xfe", "a\xfe", "é", "a\xfe\x00", "c/d", "\xff\xff"}
	want := []string{"a", "a\xfe", "a\xfe\x00", "a\xff", "b", "c/d", "é", "\xfe", "\xff\xff"}
	srv := twoNodes(t, keys...)
	for _, tc := range []struct {
		name  string
		limit int
	}{{"limit 1", 1}, {"limit 2", 2}, {"limit 4", 4}, {"one page", 100}} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := listAllPages(t, srv.URL, url.Values{"limit": {fmt.Sprint(tc.limit)}, "keys_only": {"true"}}, len(keys)+1)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Fatalf("listed %q\nwant   %q", got, want)
			}
		})
	}
}

// TestListOfLargeValuesIsBoundedAndComplete: a page of 1 MiB values holds at most
// listShareBytes of them per group (a share of 1,001 such values per group was what a
// GET /kv?limit=1000 read before), and paging by next still lists every key once, in
// order, whichever group's share was cut first.
func TestListOfLargeValuesIsBoundedAndComplete(t *testing.T) {
	const mib = 1 << 20
	data := map[uint32]map[string]Value{0: {}, 1: {}, 2: {}}
	var want []string
	for i := range 40 {
		k := fmt.Sprintf("%c%02d", 'a'+i%3, i) // a00, b01, c02, a03, ...: spread over the groups
		data[groupOf([]byte(k), 3)][k] = Value{Value: bytes.Repeat([]byte{'x'}, mib), Version: 1, ModIndex: uint64(i + 1)}
		want = append(want, k)
	}
	slices.Sort(want)
	srv := twoNodesOver(t, data)
	var got []string
	q := url.Values{"limit": {"1000"}}
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatalf("paging does not end: %d pages, got %q", pages, got)
		}
		resp, err := http.Get(srv.URL + "/kv?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", resp.StatusCode, body)
		}
		// Three shares of at most listShareBytes, as JSON: each value's bytes once.
		if len(body) > 3*listShareBytes+64<<10 {
			t.Fatalf("a page of %d bytes (%d MiB of values)", len(body), len(body)/mib)
		}
		var page struct {
			Items []listedKey `json:"items"`
			Next  string      `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			got = append(got, it.raw(t))
		}
		if page.Next == "" {
			break
		}
		q.Set("cursor", page.Next)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %q\nwant   %q", got, want)
	}
}

// TestListStartParameters: start_after still takes a plain key (the documented
// behaviour before cursors), cursor takes a next, and a bad or doubled one is a 400.
func TestListStartParameters(t *testing.T) {
	srv := twoNodes(t, "a", "a\xfe", "b", "c")
	for _, tc := range []struct {
		name, query string
		status      int
		first       string
	}{
		{"start_after plain key", "start_after=a", 200, "a\xfe"},
		{"start_after escaped raw bytes", "start_after=a%FE", 200, "b"},
		{"cursor of a\\xFE", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("a\xfe")), 200, "b"},
		{"cursor of b", "cursor=Yg", 200, "c"},
		{"empty cursor starts over", "cursor=", 200, "a"},
		{"cursor not base64url", "cursor=a%FE", 400, ""},
		{"padded cursor", "cursor=Yg%3D%3D", 400, ""},
		{"both", "cursor=Yg&start_after=a", 400, ""},
		{"cursor of a key longer than any key", "cursor=" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte("k"), MaxKeyBytes+1)), 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var page struct {
				Items []listedKey `json:"items"`
			}
			status := getJSON(t, srv.URL+"/kv?limit=1&"+tc.query, &page)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if tc.status == 200 && (len(page.Items) != 1 || page.Items[0].raw(t) != tc.first) {
				t.Fatalf("page %+v, want first key %q", page.Items, tc.first)
			}
		})
	}
}

// TestWriteAndReadAnswersCarryRawKeys: GET, PUT and DELETE answers name a key that is
// not UTF-8 in key_base64 (and leave key out), a UTF-8 key in key.
func TestWriteAndReadAnswersCarryRawKeys(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := httptest.NewServer(New(Config{AllowedHosts: testHosts, KV: &memKV{data: map[string]Value{}}, Log: quiet}))
	defer s.Close()
	for _, tc := range []struct{ path, key string }{{"a%FE", "a\xfe"}, {"x%2Fy%C3%A9", "x/yé"}} {
		for _, step := range []struct{ method, query string }{
			{"PUT", ""}, {"PUT", "?prev=true"}, {"GET", ""}, {"DELETE", "?prev=true"},
		} {
			req, _ := http.NewRequest(step.method, s.URL+"/kv/"+tc.path+step.query, bytes.NewReader([]byte("v")))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var it listedKey
			if resp.StatusCode >= 300 || json.Unmarshal(body, &it) != nil {
				t.Fatalf("%s %s: %d %s", step.method, tc.path, resp.StatusCode, body)
			}
			if got := it.raw(t); got != tc.key {
				t.Fatalf("%s %s answered key %q, want %q: %s", step.method, tc.path, got, tc.key, body)
			}
		}
	}
}

func TestMergePage(t *testing.T) {
	l := func(keys ...string) share {
		var out share
		for _, k := range keys {
			out.items = append(out.items, listed{key: []byte(k)})
		}
		return out
	}
	cut := func(keys ...string) share { // a share that stopped at its byte budget
		s := l(keys...)
		s.truncated = true
		return s
	}
	for _, tc := range []struct {
		name  string
		parts []share
		limit int
		page  string
		next  string
	}{
		{"empty", nil, 3, "[]", ""},
		{"raw byte order, not U+FFFD order", []share{l("a\xff", "b"), l("a\xfe", "\xef\xbf\xbd")}, 10, `["a\xfe" "a\xff" "b" "�"]`, ""},
		{"cut with next", []share{l("c", "d"), l("a", "b")}, 3, `["a" "b" "c"]`, "c"},
		{"exactly limit", []share{l("b"), l("a")}, 2, `["a" "b"]`, ""},
		{"a key in two shares once", []share{l("a", "b"), l("b", "c")}, 10, `["a" "b" "c"]`, ""},
		{"a share cut by bytes ends the page at its last key", []share{cut("b", "d"), l("a", "c", "e", "f")}, 10, `["a" "b" "c" "d"]`, "d"},
		{"the earliest cut wins", []share{cut("c"), cut("b"), l("a", "d")}, 10, `["a" "b"]`, "b"},
		{"limit before the cut", []share{cut("c", "d"), l("a", "b")}, 2, `["a" "b"]`, "b"},
		{"a cut share's last key is the last of the page", []share{cut("a", "b")}, 2, `["a" "b"]`, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, next := mergePage(tc.parts, tc.limit)
			keys := []string{}
			for _, it := range page {
				keys = append(keys, string(it.key))
			}
			if got := fmt.Sprintf("%q", keys); got != tc.page || string(next) != tc.next {
				t.Fatalf("page %s next %q, want %s next %q", got, next, tc.page, tc.next)
			}
		})
	}
}

// TestListPagesOverUnevenGroups: each group is asked for about twice its even share of
// a page (shareLimit), not the whole page; when one group holds most of a range its
// share fills first and ends the page there (a shorter page with a next), and paging
// still lists every key once, in order.
func TestListPagesOverUnevenGroups(t *testing.T) {
	data := map[uint32]map[string]Value{0: {}, 1: {}, 2: {}}
	var want []string
	for i := range 300 {
		k := fmt.Sprintf("k%04d", i)
		g := uint32(0) // nine keys in ten in group 0, the rest split
		if i%10 == 9 {
			g = uint32(1 + (i/10)%2)
		}
		data[g][k] = Value{Value: []byte("v"), Version: 1, ModIndex: uint64(i + 1)}
		want = append(want, k)
	}
	if got := shareLimit(100, 3); got >= 100 {
		t.Fatalf("shareLimit(100, 3) = %d: each group is asked for the whole page", got)
	}
	srv := twoNodesOver(t, data)
	got, pages := listAllPages(t, srv.URL, url.Values{"limit": {"100"}, "keys_only": {"true"}}, 10)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d keys over %d pages, want the %d in order; first %q", len(got), pages, len(want), got[:min(5, len(got))])
	}
	if pages <= 3 {
		t.Fatalf("300 keys in %d pages: group 0's share never ended a page", pages)
	}
}

// listAllPages lists through base with the query q, following next until it is
// empty, and returns every key listed and the number of pages; it fails t past
// maxPages pages, on a page past the limit, or on one that is empty but says more
// follow.
func listAllPages(t *testing.T, base string, q url.Values, maxPages int) (keys []string, pages int) {
	t.Helper()
	for {
		if pages++; pages > maxPages {
			t.Fatalf("paging does not end: %d pages, got %q", pages, keys)
		}
		var page struct {
			Items []listedKey `json:"items"`
			Next  string      `json:"next"`
		}
		if status := getJSON(t, base+"/kv?"+q.Encode(), &page); status != http.StatusOK {
			t.Fatalf("list %s: %d", q.Encode(), status)
		}
		if len(page.Items) == 0 && page.Next != "" {
			t.Fatalf("page %d: no items, next %q", pages, page.Next)
		}
		if limit, err := strconv.Atoi(q.Get("limit")); err == nil && len(page.Items) > limit {
			t.Fatalf("page %d: %d items, more than limit %d", pages, len(page.Items), limit)
		}
		for _, it := range page.Items {
			keys = append(keys, it.raw(t))
		}
		if page.Next == "" {
			return keys, pages
		}
		q.Set("cursor", page.Next)
	}
}
