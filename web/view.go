package web

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file turns the cluster's data into what the components show: health counts,
// replica statuses, ring geometry, formatted values. Keeping it out of the templates
// keeps them declarative and lets it be tested on its own.

// Overview is everything the overview page shows. A section whose data could not be
// loaded carries its error instead, so one failing call never blanks the page.
type Overview struct {
	Nodes         []Node
	NodesErr      error
	Groups        []Group
	GroupsErr     error
	Partitions    Partitions
	PartitionsErr error
	Replication   int // desired replicas per group; 0 when unknown
	Now           time.Time
	Backup        *BackupStatus // nil: no scheduled backups
}

// BackupStatus is the last scheduled backup as the serving node knows it: its own
// last attempt, or the newest file in its --backup-dir.
type BackupStatus struct {
	Started time.Time // zero: none yet
	Took    time.Duration
	Bytes   int64
	Err     string // "" when it succeeded
}

// Health is the at-a-glance summary.
type Health struct {
	Leaderless      int
	UnderReplicated int
	NodesDown       int
}

// OK is true when nothing needs an operator.
func (h Health) OK() bool { return h.Leaderless == 0 && h.UnderReplicated == 0 && h.NodesDown == 0 }

// Health counts the groups without a leader, the under-replicated groups and the
// nodes down.
func (o Overview) Health() Health {
	var h Health
	live := 0
	for _, n := range o.Nodes {
		if n.State == "down" {
			h.NodesDown++
		}
		if n.State != "removed" {
			live++
		}
	}
	want := o.Replication
	if want > 0 && live > 0 {
		want = min(want, live) // a 2-node cluster cannot hold 3 replicas
	}
	for _, g := range o.Groups {
		if g.Leader == "" {
			h.Leaderless++
		}
		if underReplicated(g, want) {
			h.UnderReplicated++
		}
	}
	return h
}

// underReplicated: fewer healthy replicas than the group has (or should have).
func underReplicated(g Group, want int) bool {
	healthy := 0
	for _, r := range g.Replicas {
		if r.Healthy {
			healthy++
		}
	}
	return healthy < len(g.Replicas) || healthy < want
}

// Replica statuses, each shown by colour and by word (colour alone says nothing to
// some readers).
const (
	StatusHealthy = "healthy"
	StatusLagging = "lagging"
	StatusDown    = "down"
)

// ReplicaStatus says whether a replica is healthy, reachable but behind, or gone.
func ReplicaStatus(r Replica) string {
	switch {
	case r.Healthy:
		return StatusHealthy
	case r.State == "unreachable" || r.State == "Shutdown" || r.State == "":
		return StatusDown
	default:
		return StatusLagging
	}
}

// dataGroups counts the groups that serve partitions (the meta group serves none).
func dataGroups(gs []Group) int {
	n := 0
	for _, g := range gs {
		if len(g.Partitions) > 0 {
			n++
		}
	}
	return n
}

// byNode sorts replicas by node id, so each node keeps its column from row to row.
func byNode(rs []Replica) []Replica {
	return slices.SortedFunc(slices.Values(rs), func(a, b Replica) int { return strings.Compare(a.Node, b.Node) })
}

// LeaderOf returns the leader of group id, "" when it has none or is unknown.
func LeaderOf(groups []Group, id uint32) string {
	for _, g := range groups {
		if g.ID == id {
			return g.Leader
		}
	}
	return ""
}

// Arc is one partition on the ring.
type Arc struct {
	Partition Partition
	Leader    string
	Path      string // SVG path data of the annular sector
}

// Ring geometry, in SVG user units (the SVG scales to its box).
const (
	ringSize  = 320.0
	ringOuter = 150.0
	ringInner = 96.0
)

// RingArcs lays the partitions out as equal arcs, clockwise from 12 o'clock, as
// partition p covers the p-th equal slice of the hash space.
func RingArcs(ps []Partition, groups []Group) []Arc {
	n := len(ps)
	out := make([]Arc, 0, n)
	gap := 0.0
	if n > 1 {
		gap = math.Min(0.004, 0.15/float64(n)) // a hairline between neighbours
	}
	for i, p := range ps {
		a0 := 2*math.Pi*float64(i)/float64(n) + gap
		a1 := 2*math.Pi*float64(i+1)/float64(n) - gap
		if n == 1 {
			a1 -= 1e-4 // an arc whose ends meet draws nothing
		}
		out = append(out, Arc{Partition: p, Leader: LeaderOf(groups, p.Group), Path: sector(a0, a1)})
	}
	return out
}

// sector is the path of the ring slice between angles a0 and a1 (radians from 12
// o'clock, clockwise).
func sector(a0, a1 float64) string {
	c := ringSize / 2
	pt := func(r, a float64) string {
		return fmt.Sprintf("%.2f %.2f", c+r*math.Sin(a), c-r*math.Cos(a))
	}
	large := 0
	if a1-a0 > math.Pi {
		large = 1
	}
	return fmt.Sprintf("M %s A %.0f %.0f 0 %d 1 %s L %s A %.0f %.0f 0 %d 0 %s Z",
		pt(ringOuter, a0), ringOuter, ringOuter, large, pt(ringOuter, a1),
		pt(ringInner, a1), ringInner, ringInner, large, pt(ringInner, a0))
}

// paletteSize is how many group colours style.css defines (.c0 ... .c11).
const paletteSize = 12

// ColorClass is the CSS class carrying group g's colour.
func ColorClass(g uint32) string { return "c" + strconv.Itoa(int(g%paletteSize)) }

// Ago says how long before now t was, for people ("3 s ago"); "never" for zero.
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ContactText renders a replica's last contact with its leader.
func ContactText(r Replica) string {
	switch {
	case r.State == "Leader":
		return "leader"
	case r.LastContactMs < 0 || r.State == "unreachable":
		return "—"
	case r.LastContactMs < 1000:
		return fmt.Sprintf("%d ms", r.LastContactMs)
	}
	return fmt.Sprintf("%.1f s", float64(r.LastContactMs)/1000)
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// Links. Node ids and keys are escaped: a key may hold any byte.
func nodeURL(id string) string    { return Prefix + "/nodes/" + url.PathEscape(id) }
func groupURL(id uint32) string   { return Prefix + "/groups/" + u32(id) }
func keyURL(key string) string    { return Prefix + "/keys/view?key=" + url.QueryEscape(key) }
func deleteURL(key string) string { return Prefix + "/keys/delete?key=" + url.QueryEscape(key) }

// listURL is a key-browser page; after is the cursor ("" for the first page).
func listURL(prefix, after string) string {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	if len(q) == 0 {
		return Prefix + "/keys"
	}
	return Prefix + "/keys?" + q.Encode()
}
