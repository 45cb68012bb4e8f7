package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// sendRaw sends one hand-made request, as a browser (or a hostile page) would, and
// returns the status, the Content-Type and the body.
func sendRaw(t *testing.T, method, url, host, body string, header map[string]string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestCrossSiteWritesAndRebindingAreRefused replays issue #14's browser attacks on a
// 3-node cluster of the real binary: a cross-site text/plain POST transferring group
// 1's leadership and a POST /admin/nodes adding "evil" from an evil.example page are
// refused (403) and change nothing; requests addressed to Host: evil.example (DNS
// rebinding) are refused (421) and write nothing; a name given with --allowed-hosts
// is served. The same transfer sent by a non-browser client as JSON works, so the
// refusals are the guard's, not a request that could not have worked anyway.
func TestCrossSiteWritesAndRebindingAreRefused(t *testing.T) {
	c := startProcCluster(t, 3, "--allowed-hosts", "kv.example")
	url := c.procs[0].httpURL
	group := func() openapi.Group {
		t.Helper()
		resp, err := api(t, url).GetGroupWithResponse(context.Background(), 1)
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("GET /admin/groups/1: %v %s", err, resp.Body)
		}
		return *resp.JSON200
	}
	before := group()
	var target string
	for _, r := range before.Replicas {
		if r.Node != before.Leader {
			target = r.Node
			break
		}
	}
	if target == "" {
		t.Fatalf("group 1 has no replica besides its leader: %+v", before)
	}
	browser := func(extra map[string]string) map[string]string {
		h := map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	evilJoin := `{"id":"evil","http_addr":"203.0.113.9:8080","raft_addr":"203.0.113.9:7080"}`
	for _, a := range []struct {
		name, method, path, host, body string
		header                         map[string]string
		want                           int
	}{
		{"cross-site text/plain leader transfer", "POST", "/admin/groups/1/leader", "", `{"node":"` + target + `"}`,
			browser(map[string]string{"Content-Type": "text/plain;charset=UTF-8"}), 403},
		{"cross-site join of evil", "POST", "/admin/nodes", "", evilJoin,
			browser(map[string]string{"Content-Type": "text/plain;charset=UTF-8"}), 403},
		{"join of evil from an evil.example Origin (old browser)", "POST", "/admin/nodes", "", evilJoin,
			map[string]string{"Origin": "http://evil.example", "Content-Type": "application/json"}, 403},
		{"text/plain leader transfer without Origin", "POST", "/admin/groups/1/leader", "", `{"node":"` + target + `"}`,
			map[string]string{"Content-Type": "text/plain"}, 415},
		{"rebound join of evil", "POST", "/admin/nodes", "evil.example:" + strings.Split(url, ":")[2], evilJoin,
			map[string]string{"Content-Type": "application/json"}, 421},
		{"rebound write", "PUT", "/kv/rebound", "evil.example", "pwned", nil, 421},
		{"rebound read", "GET", "/kv/rebound", "evil.example", "", nil, 421},
		{"rebound dashboard", "GET", "/ui/", "evil.example", "", nil, 421},
	} {
		code, ct, body := sendRaw(t, a.method, url+a.path, a.host, a.body, a.header)
		if code != a.want || ct != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want a %d problem", a.name, code, ct, body, a.want)
		}
	}

	// The operator is told: both kinds of refusal are logged at WARN.
	logged, err := os.ReadFile(c.procs[0].logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"refused a cross-origin write", "refused a request for a host"} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("node1's log has no %q", want)
		}
	}

	// Nothing changed: no node called evil, group 1's leader and term as they were,
	// no key written.
	resp, err := api(t, url).ListNodesWithResponse(context.Background())
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("GET /admin/nodes: %v", err)
	}
	for _, n := range resp.JSON200.Nodes {
		if n.Id == "evil" {
			t.Errorf("node evil was added: %+v", n)
		}
	}
	if after := group(); after.Leader != before.Leader || after.Term != before.Term {
		t.Errorf("group 1 went from leader %s term %d to %s term %d", before.Leader, before.Term, after.Leader, after.Term)
	}
	if code, _, body := sendRaw(t, "GET", url+"/kv/rebound", "", "", nil); code != http.StatusNotFound {
		t.Errorf("GET /kv/rebound: %d %s, want 404", code, body)
	}

	// Allowed: a name given with --allowed-hosts, the node's own address, localhost.
	for _, host := range []string{"kv.example", "KV.example:80", strings.TrimPrefix(url, "http://"), "localhost"} {
		if code, _, body := sendRaw(t, "GET", url+"/healthz", host, "", nil); code != http.StatusOK {
			t.Errorf("Host %s: %d %s, want 200", host, code, body)
		}
	}
	// The raw answer of stored HTML is bytes the browser will not render.
	mustPut(t, url, "page", "<script>alert(1)</script>")
	req, _ := http.NewRequest("GET", url+"/kv/page?raw=true", nil)
	raw, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	if raw.Header.Get("Content-Type") != "application/octet-stream" || raw.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("?raw=true answered %q with X-Content-Type-Options %q", raw.Header.Get("Content-Type"), raw.Header.Get("X-Content-Type-Options"))
	}

	// The control: the same transfer from a non-browser client, as JSON, is served.
	code, _, body := sendRaw(t, "POST", url+"/admin/groups/1/leader", "", `{"node":"`+target+`"}`, map[string]string{"Content-Type": "application/json"})
	var out struct {
		Leader string `json:"leader"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.Leader != target {
		t.Fatalf("JSON leader transfer to %s: %d %s", target, code, body)
	}
	eventually(t, 10*time.Second, "group 1 led by "+target, func() error {
		if g := group(); g.Leader != target {
			return fmt.Errorf("leader %s", g.Leader)
		}
		return nil
	})
}
