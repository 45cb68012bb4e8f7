package app

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestKVContract walks the /kv contract of DESIGN.md on a real single-node cluster.
func TestKVContract(t *testing.T) {
	c := startCluster(t, 1)
	type check struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		contains                 []string
	}
	problem := "application/problem+json"
	steps := []check{
		{name: "create", method: "PUT", path: "/kv/a/b/c", body: "hello", status: 201, contains: []string{`"created":true`, `"version":1`}},
		{name: "replace", method: "PUT", path: "/kv/a/b/c?prev=true", body: "world", status: 200,
			contains: []string{`"created":false`, `"version":2`, `"prev":{"value":"hello","version":1`}},
		{name: "get", method: "GET", path: "/kv/a/b/c", status: 200, contains: []string{`"key":"a/b/c"`, `"value":"world"`, `"group":`}},
		{name: "get raw", method: "GET", path: "/kv/a/b/c?raw=true", status: 200, contains: []string{"world"}},
		{name: "escaped slash is one key", method: "PUT", path: "/kv/x%2Fy", body: "1", status: 201, contains: []string{`"key":"x/y"`}},
		{name: "create-only fails on existing", method: "PUT", path: "/kv/a/b/c", body: "z", hdr: []string{"If-None-Match", "*"}, status: 412, contains: []string{problem}},
		{name: "create-only succeeds", method: "PUT", path: "/kv/fresh", body: "z", hdr: []string{"If-None-Match", "*"}, status: 201},
		{name: "if-match unknown etag", method: "PUT", path: "/kv/fresh", body: "z", hdr: []string{"If-Match", `"999.0"`}, status: 412},
		{name: "if-match garbage", method: "PUT", path: "/kv/fresh", body: "z", hdr: []string{"If-Match", `nonsense`}, status: 412},
		{name: "if-match star on missing", method: "PUT", path: "/kv/nope", body: "z", hdr: []string{"If-Match", `*`}, status: 412},
		{name: "if-none-match etag unsupported", method: "PUT", path: "/kv/fresh", body: "z", hdr: []string{"If-None-Match", `"1.0"`}, status: 400},
		{name: "missing key", method: "GET", path: "/kv/nope", status: 404, contains: []string{problem, `"status":404`}},
		{name: "empty key", method: "PUT", path: "/kv/", body: "x", status: 400, contains: []string{problem}},
		{name: "key too long", method: "PUT", path: "/kv/" + strings.Repeat("k", 4097), body: "x", status: 400, contains: []string{"4096"}},
		{name: "key at the limit", method: "PUT", path: "/kv/" + strings.Repeat("k", 4096), body: "x", status: 201},
		{name: "value too large", method: "PUT", path: "/kv/big", body: strings.Repeat("v", 1<<20+1), status: 413, contains: []string{problem}},
		{name: "value at the limit", method: "PUT", path: "/kv/big", body: strings.Repeat("v", 1<<20), status: 201},
		{name: "bad consistency", method: "GET", path: "/kv/a/b/c?consistency=sometimes", status: 400},
		{name: "bad bool", method: "GET", path: "/kv/a/b/c?raw=maybe", status: 400},
		{name: "stale read", method: "GET", path: "/kv/a/b/c?consistency=stale", status: 200, contains: []string{`"value":"world"`}},
		{name: "bad limit", method: "GET", path: "/kv?limit=0", status: 400},
		{name: "delete with prev", method: "DELETE", path: "/kv/fresh?prev=true", status: 200, contains: []string{`"deleted":true`, `"prev":{"value":"z"`}},
		{name: "delete missing", method: "DELETE", path: "/kv/fresh", status: 404},
		{name: "unknown endpoint", method: "GET", path: "/nope", status: 404, contains: []string{problem}},
		{name: "wrong method", method: "PATCH", path: "/kv/a", status: 405, contains: []string{problem}},
		{name: "healthz", method: "GET", path: "/healthz", status: 200},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "partitions", method: "GET", path: "/admin/partitions", status: 200, contains: []string{`"hash_start":"0000000000000000"`, `"hash_end":"ffffffffffffffff"`}},
		{name: "join with bad body", method: "POST", path: "/admin/nodes", body: "{", status: 400, contains: []string{problem}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			status, hdr, body := c.do(0, s.method, s.path, s.body, s.hdr...)
			if status != s.status {
				t.Fatalf("%s %s: %d %s, want %d", s.method, s.path, status, body, s.status)
			}
			all := hdr.Get("Content-Type") + " " + string(body)
			for _, want := range s.contains {
				if !strings.Contains(all, want) {
					t.Fatalf("%s %s: %q lacks %q", s.method, s.path, all, want)
				}
			}
			if strings.HasPrefix(s.path, "/kv/") && status < 300 {
				if hdr.Get("X-Ringkv-Group") == "" || hdr.Get("X-Ringkv-Index") == "" {
					t.Fatalf("missing X-Ringkv headers: %v", hdr)
				}
			}
		})
	}
}

func TestCompareAndSwapWithETag(t *testing.T) {
	c := startCluster(t, 1)
	c.mustPut(0, "cas", "v1")
	_, hdr, _ := c.do(0, "GET", "/kv/cas", "")
	etag := hdr.Get("ETag")
	if s, h, b := c.do(0, "PUT", "/kv/cas", "v2", "If-Match", etag); s != 200 || h.Get("ETag") == etag {
		t.Fatalf("CAS with current ETag: %d %s (etag %s -> %s)", s, b, etag, h.Get("ETag"))
	}
	if s, _, _ := c.do(0, "PUT", "/kv/cas", "v3", "If-Match", etag); s != 412 {
		t.Fatalf("CAS with old ETag: %d, want 412", s)
	}
	if s, _, _ := c.do(0, "DELETE", "/kv/cas", "", "If-Match", etag); s != 412 {
		t.Fatalf("DELETE with old ETag: %d, want 412", s)
	}
	if _, kv := c.get(0, "cas", ""); kv.Value != "v2" {
		t.Fatalf("after failed conditions value is %q, want v2", kv.Value)
	}
}

func TestBinaryValuesAndKeys(t *testing.T) {
	c := startCluster(t, 1)
	val := string([]byte{0, 1, 2, 0xff, 0xfe})
	if s, _, b := c.do(0, "PUT", "/kv/bin%00key", val); s != 201 {
		t.Fatalf("PUT binary: %d %s", s, b)
	}
	_, _, body := c.do(0, "GET", "/kv/bin%00key", "")
	var kv struct {
		Key         string  `json:"key"`
		Value       *string `json:"value"`
		ValueBase64 string  `json:"value_base64"`
	}
	if err := json.Unmarshal(body, &kv); err != nil {
		t.Fatal(err)
	}
	if kv.Value != nil || kv.ValueBase64 != base64.StdEncoding.EncodeToString([]byte(val)) || kv.Key != "bin\x00key" {
		t.Fatalf("binary GET = %s", body)
	}
	if _, _, raw := c.do(0, "GET", "/kv/bin%00key?raw=true", ""); string(raw) != val {
		t.Fatalf("raw GET = %q", raw)
	}
}

func TestListPaginatesAcrossGroupsInByteOrder(t *testing.T) {
	c := startCluster(t, 1)
	for i := 0; i < 25; i++ {
		c.mustPut(0, fmt.Sprintf("list/%02d", i), "v")
	}
	c.mustPut(0, "other", "v")
	var got []string
	after := ""
	for page := 0; ; page++ {
		q := "/kv?prefix=list/&limit=7&keys_only=true"
		if after != "" {
			q += "&cursor=" + after
		}
		var l struct {
			Items []struct {
				Key   string  `json:"key"`
				Value *string `json:"value"`
			} `json:"items"`
			Next string `json:"next"`
		}
		if s := c.getJSON(0, q, &l); s != 200 {
			t.Fatalf("list: %d", s)
		}
		for _, it := range l.Items {
			if it.Value != nil {
				t.Fatalf("keys_only returned a value for %s", it.Key)
			}
			got = append(got, it.Key)
		}
		if l.Next == "" {
			break
		}
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		after = l.Next
	}
	if len(got) != 25 {
		t.Fatalf("listed %d keys, want 25: %v", len(got), got)
	}
	for i, k := range got {
		if k != fmt.Sprintf("list/%02d", i) {
			t.Fatalf("key %d is %s: not in byte order", i, k)
		}
	}
}

// TestValueLimitIsConfigurable: --max-value-bytes moves the 413 boundary, and a
// refused write leaves the stored value as it was.
func TestValueLimitIsConfigurable(t *testing.T) {
	c := startCluster(t, 1, func(cfg *Config) { cfg.MaxValueBytes = 100 })
	if status, _, body := c.do(0, "PUT", "/kv/v", strings.Repeat("a", 100)); status != 201 {
		t.Fatalf("PUT of exactly the limit: %d %s", status, body)
	}
	status, hdr, body := c.do(0, "PUT", "/kv/v", strings.Repeat("b", 101))
	if status != 413 || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("PUT one byte over the limit: %d %s %s, want a 413 problem", status, hdr.Get("Content-Type"), body)
	}
	if status, kv := c.get(0, "v", ""); status != 200 || kv.Value != strings.Repeat("a", 100) {
		t.Fatalf("after the refused write: %d %q", status, kv.Value)
	}
}

// TestListLeavesOutValuesOverMaxValueBytes: with max_value_bytes a listing leaves out
// each value longer than it, giving its size, and keeps the others, through every node
// (so shares read here and shares asked of other nodes' leaders alike).
func TestListLeavesOutValuesOverMaxValueBytes(t *testing.T) {
	c := startCluster(t, 3)
	big := strings.Repeat("b", 2000)
	for i := range 24 {
		value := "small"
		if i%2 == 1 {
			value = big
		}
		c.mustPut(0, fmt.Sprintf("mv-%02d", i), value)
	}
	for node := range c.nodes {
		var page struct {
			Items []struct {
				Key          string  `json:"key"`
				Value        *string `json:"value"`
				ValueOmitted bool    `json:"value_omitted"`
				ValueSize    *int    `json:"value_size"`
				Version      uint64  `json:"version"`
			} `json:"items"`
		}
		if status := c.getJSON(node, "/kv?prefix=mv-&limit=100&max_value_bytes=100", &page); status != http.StatusOK || len(page.Items) != 24 {
			t.Fatalf("node %d: %d, %d items", node, status, len(page.Items))
		}
		for i, it := range page.Items {
			if i%2 == 1 {
				if !it.ValueOmitted || it.ValueSize == nil || *it.ValueSize != 2000 || it.Value != nil || it.Version == 0 {
					t.Fatalf("node %d: %s: omitted %v size %v value %v version %d; want the value left out, size 2000",
						node, it.Key, it.ValueOmitted, it.ValueSize, it.Value != nil, it.Version)
				}
			} else if it.ValueOmitted || it.Value == nil || *it.Value != "small" {
				t.Fatalf("node %d: %s: a small value was left out or changed", node, it.Key)
			}
		}
	}
	if status, _, _ := c.do(0, http.MethodGet, "/kv?max_value_bytes=0", ""); status != http.StatusBadRequest {
		t.Fatalf("max_value_bytes=0: %d, want 400", status)
	}
}
