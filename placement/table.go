package placement

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// MaxPartitions is the most partitions a cluster may have: the placement table, one
// replicated value, must stay far under Badger's 16 MiB value limit.
const MaxPartitions = 1 << 16

// MetaGroup is the group id of the meta group; data groups are numbered from 1.
const MetaGroup uint32 = 0

// NodeState is a node's place in its life cycle.
type NodeState string

const (
	NodeJoining  NodeState = "joining"
	NodeUp       NodeState = "up"
	NodeDraining NodeState = "draining"
	NodeDown     NodeState = "down"
	NodeRemoved  NodeState = "removed"
)

// Node is a cluster member as the table records it.
type Node struct {
	ID       string    `json:"id"`
	HTTPAddr string    `json:"http_addr"`
	RaftAddr string    `json:"raft_addr"`
	State    NodeState `json:"state"`
	Epoch    uint64    `json:"epoch"`
	// UUID is the identity the node made at its first start and keeps in its data
	// dir; the id is bound to it until the node is removed. Empty in tables written
	// before identities existed and for a node added by hand until it answers a probe.
	UUID string `json:"uuid,omitempty"`
}

// Group is a data group: its replicas (node ids) and, while it has never run, the
// node that creates it.
type Group struct {
	ID        uint32   `json:"id"`
	Replicas  []string `json:"replicas"`
	Bootstrap string   `json:"bootstrap,omitempty"`
	Epoch     uint64   `json:"epoch"`
}

// Partition is one arc of the ring and the group serving it.
type Partition struct {
	Group uint32 `json:"group"`
	Epoch uint64 `json:"epoch"`
}

// Table is the placement table. Every change bumps Epoch and stamps the changed
// entries with the new epoch. A Table value is never modified once published: Apply
// works on a Clone.
type Table struct {
	Version int `json:"version"` // encoding version
	// ClusterID is made when the cluster is created; empty in tables written before
	// cluster ids existed, until the meta leader sets one.
	ClusterID   string      `json:"cluster_id,omitempty"`
	Epoch       uint64      `json:"epoch"`
	Replication int         `json:"replication"`
	Partitions  []Partition `json:"partitions"`
	Groups      []Group     `json:"groups"`
	Nodes       []Node      `json:"nodes"`

	byGroup map[uint32][]uint32 // derived: a group's partitions, ascending
}

// tableVersion is the encoding version written by EncodeTable. Fields added since
// (cluster_id, a node's uuid) are optional, so tables written before them still
// decode, and a node of the previous release still reads a newer table.
const tableVersion = 1

// Initialized says whether the cluster has been created.
func (t *Table) Initialized() bool { return t != nil && len(t.Partitions) > 0 }

// NumPartitions is P.
func (t *Table) NumPartitions() int { return len(t.Partitions) }

// GroupOf returns the group serving partition p.
func (t *Table) GroupOf(p uint32) uint32 { return t.Partitions[p].Group }

// PartitionsOf returns the partitions of group g, ascending. Callers must not modify it.
func (t *Table) PartitionsOf(g uint32) []uint32 {
	if t == nil {
		return nil
	}
	return t.byGroup[g]
}

// Group returns group g.
func (t *Table) Group(g uint32) (Group, bool) {
	i := sort.Search(len(t.Groups), func(i int) bool { return t.Groups[i].ID >= g })
	if i < len(t.Groups) && t.Groups[i].ID == g {
		return t.Groups[i], true
	}
	return Group{}, false
}

// Node returns node id.
func (t *Table) Node(id string) (Node, bool) {
	if t == nil {
		return Node{}, false
	}
	for _, n := range t.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// GroupsOf returns the ids of the groups with a replica on node id.
func (t *Table) GroupsOf(id string) []uint32 {
	var out []uint32
	for _, g := range t.Groups {
		if slices.Contains(g.Replicas, id) {
			out = append(out, g.ID)
		}
	}
	return out
}

// Clone returns a deep copy.
func (t *Table) Clone() *Table {
	if t == nil {
		return &Table{Version: tableVersion}
	}
	c := *t
	c.Version = tableVersion
	c.Partitions = slices.Clone(t.Partitions)
	c.Nodes = slices.Clone(t.Nodes)
	c.Groups = make([]Group, len(t.Groups))
	for i, g := range t.Groups {
		g.Replicas = slices.Clone(g.Replicas)
		c.Groups[i] = g
	}
	c.index()
	return &c
}

func (t *Table) index() {
	t.byGroup = map[uint32][]uint32{}
	for p, part := range t.Partitions {
		t.byGroup[part.Group] = append(t.byGroup[part.Group], uint32(p))
	}
}

// EncodeTable serialises t.
func EncodeTable(t *Table) ([]byte, error) { return json.Marshal(t) }

// DecodeTable parses and checks a table written by EncodeTable.
func DecodeTable(b []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode placement table: %w", err)
	}
	if t.Version != tableVersion {
		return nil, fmt.Errorf("decode placement table: unsupported version %d", t.Version)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	t.index()
	return &t, nil
}

func (t *Table) validate() error {
	groups := map[uint32]bool{}
	for i, g := range t.Groups {
		if g.ID == MetaGroup || (i > 0 && t.Groups[i-1].ID >= g.ID) {
			return errors.New("placement table: group ids must be positive and ascending")
		}
		groups[g.ID] = true
	}
	for p, part := range t.Partitions {
		if !groups[part.Group] {
			return fmt.Errorf("placement table: partition %d names unknown group %d", p, part.Group)
		}
	}
	return nil
}
