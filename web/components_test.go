package web

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Component tests: render one templ component with fake data and read it back by
// data-testid, as a browser would see it.

func TestOverviewHealthSummary(t *testing.T) {
	d := renderDoc(t, OverviewBody(newFakeCluster().overview()))
	for id, want := range map[string]string{
		"health-leaderless":       "1", // group 2
		"health-under-replicated": "2", // group 2 (unhealthy replicas) and 3 (lagging, 2 of 3)
		"health-nodes-down":       "1", // n3
	} {
		if got := d.text(id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if got := attr(d.one("health-summary"), "data-ok"); got != "false" {
		t.Errorf("data-ok = %q with problems present", got)
	}
}

func TestOverviewNodesTable(t *testing.T) {
	d := renderDoc(t, OverviewBody(newFakeCluster().overview()))
	if rows := d.find(func(n *html.Node) bool { return strings.HasPrefix(attr(n, "data-testid"), "node-row-") }); len(rows) != 3 {
		t.Fatalf("%d node rows, want 3", len(rows))
	}
	tests := []struct{ id, want string }{
		{"node-state-n1", "up"},
		{"node-state-n3", "down"},
		{"node-last-seen-n1", "just now"},
		{"node-last-seen-n2", "5 s ago"},
		{"node-last-seen-n3", "3 min ago"},
		{"node-replicas-n2", "4"},
		{"node-leaders-n1", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := d.text(tt.id); got != tt.want {
				t.Errorf("%q, want %q", got, tt.want)
			}
		})
	}
	if got := attr(d.one("node-row-n3"), "data-state"); got != "down" {
		t.Errorf("node-row-n3 data-state = %q", got)
	}
	if got := attr(d.one("node-link-n2"), "href"); got != "/ui/nodes/n2" {
		t.Errorf("node link = %q", got)
	}
}

func TestOverviewGroupsTable(t *testing.T) {
	d := renderDoc(t, OverviewBody(newFakeCluster().overview()))
	if got := d.text("group-leader-2"); got != "no leader" {
		t.Errorf("leaderless group shows leader %q", got)
	}
	for id, want := range map[string]string{"group-leader-3": "n2", "group-term-3": "7", "group-commit-1": "41", "group-applied-1": "40"} {
		if got := d.text(id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	// Per-replica status: by data-status (the colour's class) and in words.
	for _, tt := range []struct{ id, status string }{
		{"replica-1-n1", StatusHealthy},
		{"replica-3-n1", StatusLagging},
		{"replica-2-n3", StatusDown},
		{"replica-2-n2", StatusLagging},
	} {
		n := d.one(tt.id)
		if got := attr(n, "data-status"); got != tt.status {
			t.Errorf("%s: status %q, want %q", tt.id, got, tt.status)
		}
		if !strings.Contains(attr(n, "class"), "chip-"+tt.status) || !strings.Contains(text(n), tt.status) {
			t.Errorf("%s: class %q text %q do not both say %s", tt.id, attr(n, "class"), text(n), tt.status)
		}
	}
	if got := text(d.one("replica-3-n1")); !strings.Contains(got, "2100") {
		t.Errorf("lagging replica shows %q, want its lag 2100", got)
	}
}

func TestRing(t *testing.T) {
	c := newFakeCluster()
	d := renderDoc(t, Ring(c.parts, c.groups))
	for _, p := range c.parts.Partitions {
		arc := d.one(fmt.Sprintf("arc-%d", p.ID))
		if attr(arc, "tabindex") != "0" {
			t.Errorf("arc %d is not focusable", p.ID)
		}
		if got := attr(arc, "data-group"); got != fmt.Sprint(p.Group) {
			t.Errorf("arc %d data-group %q, want %d", p.ID, got, p.Group)
		}
		if !strings.Contains(attr(arc, "class"), ColorClass(p.Group)) {
			t.Errorf("arc %d class %q lacks its group colour %s", p.ID, attr(arc, "class"), ColorClass(p.Group))
		}
		if !strings.HasPrefix(attr(arc, "d"), "M ") {
			t.Errorf("arc %d has no path: %q", p.ID, attr(arc, "d"))
		}
		leader := LeaderOf(c.groups, p.Group)
		if leader == "" {
			leader = "no leader"
		}
		title := text(arc) // the <title> child is the tooltip
		for _, want := range []string{fmt.Sprintf("Partition %d", p.ID), fmt.Sprintf("group %d", p.Group), leader} {
			if !strings.Contains(title, want) {
				t.Errorf("arc %d title %q lacks %q", p.ID, title, want)
			}
		}
	}
	if legend := text(d.one("ring-legend")); !strings.Contains(legend, "group 3") || strings.Contains(legend, "group 0") {
		t.Errorf("legend %q: want data groups only", legend)
	}
	if got := len(d.find(func(n *html.Node) bool { return strings.HasPrefix(attr(n, "data-testid"), "partition-row-") })); got != 4 {
		t.Errorf("partition table has %d rows, want 4", got)
	}
}

func TestOverviewShowsSectionErrors(t *testing.T) {
	o := newFakeCluster().overview()
	o.Nodes, o.NodesErr = nil, &APIError{Status: 503, Title: "Service Unavailable", Detail: "no meta leader"}
	d := renderDoc(t, OverviewBody(o))
	if d.has("nodes-table") {
		t.Error("nodes table rendered despite the error")
	}
	if got := d.text("error-detail"); got != "no meta leader" {
		t.Errorf("error detail %q", got)
	}
	if got := d.text("health-nodes-down"); got != "?" {
		t.Errorf("nodes down = %q while nodes are unknown", got)
	}
	if !d.has("groups-table") || !d.has("ring") {
		t.Error("one failed section blanked the others")
	}
}

func TestErrorBox(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    []string
		outcome bool
	}{
		{"problem", &APIError{Status: 404, Title: "Not Found", Detail: `key "x"`}, []string{"404 Not Found", `key "x"`}, false},
		{"unknown outcome", &APIError{Status: 503, Title: "Service Unavailable", Detail: "leader lost", OutcomeUnknown: true}, []string{"503", "leader lost"}, true},
		{"plain error", errBoom, []string{"boom"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := renderDoc(t, ErrorBox("Could not do it.", tt.err))
			got := d.text("error")
			for _, w := range append(tt.want, "Could not do it.") {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			if d.has("error-outcome") != tt.outcome {
				t.Errorf("outcome sentence shown = %v, want %v", d.has("error-outcome"), tt.outcome)
			}
			if attr(d.one("error"), "role") != "alert" {
				t.Error("error box is not role=alert")
			}
		})
	}
}

func TestKeysPage(t *testing.T) {
	v := KeysView{Prefix: "user/", After: "user/10", Page: KeyPage{
		Items: []Entry{{Key: "user/11", Value: []byte("hello"), Version: 2, Group: 3}, {Key: "user/\xff", Value: []byte{0, 1, 2}, Group: 1}},
		Next:  "user/\xff",
	}}
	d := renderDoc(t, KeysPage(Page{Title: "Keys"}, v))
	rows := d.all("key-row")
	if len(rows) != 2 || attr(rows[0], "data-key") != "user/11" {
		t.Fatalf("rows: %d", len(rows))
	}
	if got := text(rows[1]); !strings.Contains(got, `user/\xff`) || !strings.Contains(got, "(binary, 3 bytes)") {
		t.Errorf("binary row shows %q", got)
	}
	if got := attr(d.all("key-link")[0], "href"); got != "/ui/keys/view?key=user%2F11" {
		t.Errorf("key link %q", got)
	}
	if got := attr(d.one("next-page"), "href"); got != "/ui/keys?after=user%2F%FF&prefix=user%2F" {
		t.Errorf("next page %q", got)
	}
	if got := attr(d.one("first-page"), "href"); got != "/ui/keys?prefix=user%2F" {
		t.Errorf("first page %q", got)
	}
	if got := attr(d.one("prefix-input"), "value"); got != "user/" {
		t.Errorf("prefix field %q", got)
	}
	if !hasAttr(d.one("put-key"), "required") {
		t.Error("the key field is not required")
	}
	checkLabels(t, d)
}

func TestValueBlock(t *testing.T) {
	tests := []struct {
		name, testid string
		value        []byte
		want         string
	}{
		{"text", "value-text", []byte("line one\nline two"), "line one line two"},
		{"binary", "value-hex", []byte{0xde, 0xad, 0xbe, 0xef, 'h', 'i'}, "00000000 de ad be ef 68 69 |....hi|"},
		{"control bytes", "value-hex", []byte("a\x00b"), "61 00 62"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := renderDoc(t, ValueBlock(tt.value))
			if got := d.text(tt.testid); !strings.Contains(got, tt.want) {
				t.Errorf("%q lacks %q", got, tt.want)
			}
			if d.has("value-clipped") {
				t.Error("a small value was clipped")
			}
		})
	}
	d := renderDoc(t, ValueBlock([]byte(strings.Repeat("é", maxShown))))
	if !d.has("value-clipped") || !strings.HasSuffix(d.text("value-text"), "é") {
		t.Error("a large value is not clipped on a character boundary")
	}
}

func TestDeletePageAsksForConfirmation(t *testing.T) {
	d := renderDoc(t, DeletePage(Page{}, DeleteView{Key: "a b/\xff"}))
	box := d.one("delete-confirm")
	if attr(box, "type") != "checkbox" || !hasAttr(box, "required") {
		t.Error("the confirmation is not a required checkbox")
	}
	if f := d.one("delete-form"); attr(f, "method") != "post" || attr(f, "action") != "/ui/keys/delete" {
		t.Errorf("form %s %s", attr(f, "method"), attr(f, "action"))
	}
	hidden := d.find(func(n *html.Node) bool { return attr(n, "name") == "key_esc" })
	if len(hidden) != 1 || attr(hidden[0], "value") != "a+b%2F%FF" {
		t.Errorf("hidden key: %v", hidden)
	}
	if got := d.text("delete-key-name"); got != `a b/\xff` {
		t.Errorf("key shown as %q", got)
	}
	checkLabels(t, d)
}

func TestLayout(t *testing.T) {
	d := renderDoc(t, OverviewPage(Page{Title: "Overview", NodeID: "n7", Nav: "overview", Now: testNow, RefreshMs: 1500, Live: true}, newFakeCluster().overview()))
	if got := d.text("served-by"); got != "n7" {
		t.Errorf("served by %q", got)
	}
	if attr(d.one("nav-overview"), "aria-current") != "page" || hasAttr(d.one("nav-keys"), "aria-current") {
		t.Error("aria-current marks the wrong page")
	}
	live := d.one("overview-live")
	if attr(live, "data-refresh") != "/ui/fragments/overview" {
		t.Errorf("live region refreshes from %q", attr(live, "data-refresh"))
	}
	body := d.tags("body")[0]
	if attr(body, "data-refresh-ms") != "1500" {
		t.Errorf("refresh interval %q", attr(body, "data-refresh-ms"))
	}
	if !strings.Contains(d.text("live-status"), "12:00:00 UTC") {
		t.Errorf("live status %q", d.text("live-status"))
	}
	for _, s := range d.tags("script") {
		if attr(s, "src") == "" {
			t.Error("inline script: the CSP allows only scripts from /ui/static")
		}
	}
	for _, th := range d.tags("th") {
		if attr(th, "scope") == "" {
			t.Errorf("<th> %q has no scope", text(th))
		}
	}
}
