package web

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"
)

// Helpers shared by the tests: an HTML document searched by data-testid, and fakes
// of the interfaces the dashboard reads through.

type doc struct {
	t    *testing.T
	root *html.Node
}

func parseDoc(t *testing.T, s string) *doc {
	t.Helper()
	root, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &doc{t: t, root: root}
}

func renderDoc(t *testing.T, c templ.Component) *doc {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	return parseDoc(t, buf.String())
}

// find returns every element matching pred, in document order.
func (d *doc) find(pred func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for n := range d.root.Descendants() {
		if n.Type == html.ElementNode && pred(n) {
			out = append(out, n)
		}
	}
	return out
}

func (d *doc) all(testid string) []*html.Node {
	return d.find(func(n *html.Node) bool { return attr(n, "data-testid") == testid })
}

func (d *doc) has(testid string) bool { return len(d.all(testid)) > 0 }

// one returns the single element with data-testid testid.
func (d *doc) one(testid string) *html.Node {
	d.t.Helper()
	ns := d.all(testid)
	if len(ns) != 1 {
		d.t.Fatalf("want 1 element with data-testid=%q, found %d", testid, len(ns))
	}
	return ns[0]
}

// text is the whitespace-collapsed text of the element with data-testid testid.
func (d *doc) text(testid string) string {
	d.t.Helper()
	return text(d.one(testid))
}

func (d *doc) tags(name string) []*html.Node {
	return d.find(func(n *html.Node) bool { return n.Data == name })
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, name string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == name })
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// checkLabels fails when a visible form field has no <label for> naming it: every
// field must be announced by name.
func checkLabels(t *testing.T, d *doc) {
	t.Helper()
	labels := map[string]bool{}
	for _, l := range d.tags("label") {
		labels[attr(l, "for")] = true
	}
	for _, f := range d.find(func(n *html.Node) bool { return n.Data == "input" || n.Data == "textarea" }) {
		if attr(f, "type") == "hidden" {
			continue
		}
		if id := attr(f, "id"); id == "" || !labels[id] {
			t.Errorf("form field %q (id %q) has no label", attr(f, "name"), id)
		}
	}
}

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// fakeCluster is a three-node cluster with one problem of each kind: n3 is down,
// group 2 has lost its leader, group 3 has a lagging replica.
type fakeCluster struct {
	nodes  []Node
	groups []Group
	parts  Partitions
	err    error // returned by every call when set
}

func newFakeCluster() *fakeCluster {
	healthy := func(node, state string) Replica {
		return Replica{Node: node, Voter: true, State: state, MatchIndex: 40, AppliedIndex: 40, LastContactMs: 20, Healthy: true}
	}
	c := &fakeCluster{
		nodes: []Node{
			{ID: "n1", HTTPAddr: "127.0.0.1:8080", RaftAddr: "127.0.0.1:7080", State: "up", LastSeen: testNow.Add(-300 * time.Millisecond), Replicas: 4, Leaders: 2},
			{ID: "n2", HTTPAddr: "127.0.0.1:8081", RaftAddr: "127.0.0.1:7081", State: "up", LastSeen: testNow.Add(-5 * time.Second), Replicas: 4, Leaders: 1},
			{ID: "n3", HTTPAddr: "127.0.0.1:8082", RaftAddr: "127.0.0.1:7082", State: "down", LastSeen: testNow.Add(-3 * time.Minute), Replicas: 4, Leaders: 0},
		},
		groups: []Group{
			{ID: 0, Leader: "n1", Term: 3, CommitIndex: 90, AppliedIndex: 90, Replicas: []Replica{healthy("n1", "Leader"), healthy("n2", "Follower"), healthy("n3", "Follower")}, Partitions: []uint32{}},
			{ID: 1, Leader: "n1", Term: 2, CommitIndex: 41, AppliedIndex: 40, Replicas: []Replica{healthy("n1", "Leader"), healthy("n2", "Follower"), healthy("n3", "Follower")}, Partitions: []uint32{0, 3}},
			{ID: 2, Leader: "", Term: 0, Replicas: []Replica{
				{Node: "n2", Voter: true, State: "Candidate", LastContactMs: 9000},
				{Node: "n3", Voter: true, State: "unreachable"},
			}, Partitions: []uint32{1}},
			{ID: 3, Leader: "n2", Term: 7, CommitIndex: 5000, AppliedIndex: 5000, Replicas: []Replica{
				healthy("n2", "Leader"),
				{Node: "n1", Voter: true, State: "Follower", MatchIndex: 3000, AppliedIndex: 2900, Lag: 2100, LastContactMs: 40},
			}, Partitions: []uint32{2}},
		},
		parts: Partitions{Epoch: 12, Partitions: []Partition{
			{ID: 0, Group: 1, Epoch: 1, HashStart: "0000000000000000", HashEnd: "3fffffffffffffff"},
			{ID: 1, Group: 2, Epoch: 1, HashStart: "4000000000000000", HashEnd: "7fffffffffffffff"},
			{ID: 2, Group: 3, Epoch: 5, HashStart: "8000000000000000", HashEnd: "bfffffffffffffff"},
			{ID: 3, Group: 1, Epoch: 1, HashStart: "c000000000000000", HashEnd: "ffffffffffffffff"},
		}},
	}
	return c
}

func (c *fakeCluster) Nodes(context.Context) ([]Node, error)   { return c.nodes, c.err }
func (c *fakeCluster) Groups(context.Context) ([]Group, error) { return c.groups, c.err }
func (c *fakeCluster) Partitions(context.Context) (Partitions, error) {
	return c.parts, c.err
}

func (c *fakeCluster) overview() Overview {
	return Overview{Nodes: c.nodes, Groups: c.groups, Partitions: c.parts, Replication: 3, Now: testNow}
}

// fakeKV is an in-memory KV that records what it was asked.
type fakeKV struct {
	mu       sync.Mutex
	data     map[string][]byte
	err      error // returned by writes when set
	listArgs []any
	deleted  []string
}

func newFakeKV() *fakeKV { return &fakeKV{data: map[string][]byte{}} }

func (f *fakeKV) List(_ context.Context, prefix, after string, limit int) (KeyPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listArgs = []any{prefix, after, limit}
	var keys []string
	for k := range f.data {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	page := KeyPage{}
	if len(keys) > limit {
		keys = keys[:limit]
		page.Next = keys[limit-1]
	}
	for _, k := range keys {
		page.Items = append(page.Items, Entry{Key: k, Value: f.data[k], Version: 1, Group: 1})
	}
	return page, nil
}

func (f *fakeKV) Get(_ context.Context, key string) (Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[key]
	if !ok {
		return Entry{}, &APIError{Status: 404, Title: "Not Found", Detail: "key " + key}
	}
	return Entry{Key: key, Value: v, Version: 3, CreateIndex: 10, ModIndex: 20, Group: 2}, nil
}

func (f *fakeKV) Put(_ context.Context, key string, value []byte) (PutResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return PutResult{}, f.err
	}
	_, existed := f.data[key]
	f.data[key] = value
	return PutResult{Created: !existed, Version: 1}, nil
}

func (f *fakeKV) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, ok := f.data[key]; !ok {
		return &APIError{Status: 404, Title: "Not Found", Detail: "key " + key}
	}
	delete(f.data, key)
	f.deleted = append(f.deleted, key)
	return nil
}

var errBoom = errors.New("boom")
