package web

import (
	"strings"
	"testing"
	"time"
)

func TestAgo(t *testing.T) {
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{200 * time.Millisecond, "just now"},
		{42 * time.Second, "42 s ago"},
		{5 * time.Minute, "5 min ago"},
		{3 * time.Hour, "3 h ago"},
		{72 * time.Hour, "2026-04-28 12:00 UTC"},
	}
	for _, tt := range tests {
		if got := Ago(testNow, testNow.Add(-tt.ago)); got != tt.want {
			t.Errorf("Ago(%v) = %q, want %q", tt.ago, got, tt.want)
		}
	}
	if got := Ago(testNow, time.Time{}); got != "never" {
		t.Errorf("zero time: %q", got)
	}
}

func TestReplicaStatusAndContact(t *testing.T) {
	tests := []struct {
		r               Replica
		status, contact string
	}{
		{Replica{State: "Leader", Healthy: true}, StatusHealthy, "leader"},
		{Replica{State: "Follower", Healthy: true, LastContactMs: 12}, StatusHealthy, "12 ms"},
		{Replica{State: "Follower", Lag: 5000, LastContactMs: 2500}, StatusLagging, "2.5 s"},
		{Replica{State: "unreachable"}, StatusDown, "—"},
		{Replica{State: "Shutdown", LastContactMs: -1}, StatusDown, "—"},
	}
	for _, tt := range tests {
		if got := ReplicaStatus(tt.r); got != tt.status {
			t.Errorf("%+v: status %q, want %q", tt.r, got, tt.status)
		}
		if got := ContactText(tt.r); got != tt.contact {
			t.Errorf("%+v: contact %q, want %q", tt.r, got, tt.contact)
		}
	}
}

func TestHealthCountsAgainstReachableReplication(t *testing.T) {
	ok := Replica{Healthy: true}
	groups := []Group{{ID: 1, Leader: "n1", Replicas: []Replica{ok, ok}}}
	two := []Node{{ID: "n1", State: "up"}, {ID: "n2", State: "up"}}
	// Two nodes cannot hold three replicas: two healthy replicas is full replication.
	if h := (Overview{Nodes: two, Groups: groups, Replication: 3}).Health(); h.UnderReplicated != 0 || !h.OK() {
		t.Errorf("2 nodes, 2 replicas: %+v", h)
	}
	three := append(two, Node{ID: "n3", State: "joining"})
	if h := (Overview{Nodes: three, Groups: groups, Replication: 3}).Health(); h.UnderReplicated != 1 {
		t.Errorf("3 nodes, 2 replicas: %+v", h)
	}
	removed := append(two, Node{ID: "n3", State: "removed"})
	if h := (Overview{Nodes: removed, Groups: groups, Replication: 3}).Health(); h.UnderReplicated != 0 {
		t.Errorf("a removed node counted as a place for a replica: %+v", h)
	}
}

func TestRingArcs(t *testing.T) {
	ps := make([]Partition, 64)
	for i := range ps {
		ps[i] = Partition{ID: uint32(i), Group: uint32(i%8 + 1)}
	}
	arcs := RingArcs(ps, []Group{{ID: 3, Leader: "n2"}})
	if len(arcs) != 64 {
		t.Fatalf("%d arcs", len(arcs))
	}
	if arcs[2].Leader != "n2" || arcs[3].Leader != "" {
		t.Errorf("leaders %q %q", arcs[2].Leader, arcs[3].Leader)
	}
	// Partition 0 starts at 12 o'clock (x = centre, y = top) and runs clockwise.
	if !strings.HasPrefix(arcs[0].Path, "M 160.") || !strings.Contains(arcs[0].Path, " 10.") {
		t.Errorf("first arc %q does not start at the top", arcs[0].Path)
	}
	// A single partition is the whole ring: two arcs, no NaN, and (longer than half
	// the ring) the large-arc flag.
	if one := RingArcs(ps[:1], nil); strings.Count(one[0].Path, "A ") != 2 || strings.Contains(one[0].Path, "NaN") ||
		!strings.Contains(one[0].Path, " 0 1 1 ") {
		t.Errorf("single partition: %q", one[0].Path)
	}
}

func TestPrintableAndPreview(t *testing.T) {
	if got := printable("a\xffb\x00é"); got != `a\xffb\x00é` {
		t.Errorf("printable %q", got)
	}
	if got := preview([]byte(strings.Repeat("word ", 40))); len([]rune(got)) != previewRunes+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("preview %q", got)
	}
	if got := preview([]byte("a\n\n  b")); got != "a b" {
		t.Errorf("preview %q", got)
	}
}
