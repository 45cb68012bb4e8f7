package placement

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Errors a meta command can answer with; they are returned to the proposer, the table
// is unchanged.
var (
	ErrInitialized   = errors.New("placement: cluster already created")
	ErrNotCreated    = errors.New("placement: cluster not created yet")
	ErrStaleEpoch    = errors.New("placement: table changed since the plan was made")
	ErrUnknownGroup  = errors.New("placement: unknown group")
	ErrUnknownNode   = errors.New("placement: unknown node")
	ErrBadCommand    = errors.New("placement: malformed command")
	ErrAddressInUse  = errors.New("placement: address already used by another node")
	ErrInvalidLayout = errors.New("placement: invalid layout")
)

// Command is one change to the placement table, replicated through the meta group.
type Command struct {
	Op string `json:"op"` // "init", "add_node", "set_replicas", "set_node_state"

	// init
	Partitions  int `json:"partitions,omitempty"`
	Groups      int `json:"groups,omitempty"`
	Replication int `json:"replication,omitempty"`

	// init, add_node
	Node *Node `json:"node,omitempty"`

	// set_replicas
	Group      uint32   `json:"group,omitempty"`
	Replicas   []string `json:"replicas,omitempty"`
	GroupEpoch uint64   `json:"group_epoch,omitempty"` // must equal the group's epoch

	// set_node_state
	NodeID string    `json:"node_id,omitempty"`
	State  NodeState `json:"state,omitempty"`
}

// stateChanges are the node life-cycle steps set_node_state allows: a joined node is
// up once it answers; a decommissioned node drains, then is removed for good.
var stateChanges = map[NodeState][]NodeState{
	NodeJoining:  {NodeUp, NodeDraining},
	NodeUp:       {NodeDraining},
	NodeDraining: {NodeRemoved},
}

// ErrBadTransition: a node cannot go from its state to the one asked.
var ErrBadTransition = errors.New("placement: node state change not allowed")

// Encode serialises c.
func (c Command) Encode() []byte {
	b, _ := json.Marshal(c) // a Command always marshals
	return b
}

// DecodeCommand parses what Encode wrote.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	return c, nil
}

// Apply returns the table that results from applying c to t (t itself is unchanged).
func Apply(t *Table, c Command) (*Table, error) {
	n := t.Clone()
	n.Epoch++
	switch c.Op {
	case "init":
		if t.Initialized() {
			return nil, ErrInitialized
		}
		if c.Partitions < 1 || c.Groups < 1 || c.Groups > c.Partitions || c.Replication < 1 || c.Node == nil {
			return nil, ErrInvalidLayout
		}
		n.Replication = c.Replication
		node := *c.Node
		node.State, node.Epoch = NodeUp, n.Epoch
		n.Nodes = []Node{node}
		for g := 1; g <= c.Groups; g++ {
			n.Groups = append(n.Groups, Group{ID: uint32(g), Replicas: []string{node.ID}, Bootstrap: node.ID, Epoch: n.Epoch})
		}
		for p := 0; p < c.Partitions; p++ {
			n.Partitions = append(n.Partitions, Partition{Group: uint32(p%c.Groups) + 1, Epoch: n.Epoch})
		}
	case "add_node":
		if !t.Initialized() {
			return nil, ErrNotCreated
		}
		if c.Node == nil || c.Node.ID == "" || c.Node.HTTPAddr == "" || c.Node.RaftAddr == "" {
			return nil, fmt.Errorf("%w: node needs id, http_addr and raft_addr", ErrBadCommand)
		}
		for _, other := range n.Nodes {
			if other.ID != c.Node.ID && (other.RaftAddr == c.Node.RaftAddr || other.HTTPAddr == c.Node.HTTPAddr) &&
				other.State != NodeRemoved {
				return nil, fmt.Errorf("%w: %s", ErrAddressInUse, other.ID)
			}
		}
		i := slices.IndexFunc(n.Nodes, func(x Node) bool { return x.ID == c.Node.ID })
		if i >= 0 && n.Nodes[i].HTTPAddr == c.Node.HTTPAddr && n.Nodes[i].RaftAddr == c.Node.RaftAddr {
			return t, nil // already a member with these addresses: nothing changes
		}
		if i >= 0 && n.Nodes[i].State == NodeRemoved {
			return nil, fmt.Errorf("%w: node %s was removed; join it under a new id", ErrBadTransition, c.Node.ID)
		}
		node := *c.Node
		node.State, node.Epoch = NodeJoining, n.Epoch
		if i >= 0 {
			node.State = n.Nodes[i].State // a known node on new addresses keeps its state
			n.Nodes[i] = node
		} else {
			n.Nodes = append(n.Nodes, node)
			sort.Slice(n.Nodes, func(a, b int) bool { return n.Nodes[a].ID < n.Nodes[b].ID })
		}
	case "set_replicas":
		gi := slices.IndexFunc(n.Groups, func(g Group) bool { return g.ID == c.Group })
		if gi < 0 {
			return nil, ErrUnknownGroup
		}
		if n.Groups[gi].Epoch != c.GroupEpoch {
			return nil, ErrStaleEpoch
		}
		for _, id := range c.Replicas {
			if _, ok := n.Node(id); !ok {
				return nil, fmt.Errorf("%w: %s", ErrUnknownNode, id)
			}
		}
		if len(c.Replicas) == 0 || len(slices.Compact(slices.Sorted(slices.Values(c.Replicas)))) != len(c.Replicas) {
			return nil, fmt.Errorf("%w: replicas must be distinct and not empty", ErrBadCommand)
		}
		n.Groups[gi].Replicas = slices.Clone(c.Replicas)
		n.Groups[gi].Epoch = n.Epoch
	case "set_node_state":
		i := slices.IndexFunc(n.Nodes, func(x Node) bool { return x.ID == c.NodeID })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrUnknownNode, c.NodeID)
		}
		from := n.Nodes[i].State
		if from == c.State {
			return t, nil
		}
		if !slices.Contains(stateChanges[from], c.State) {
			return nil, fmt.Errorf("%w: %s from %s to %s", ErrBadTransition, c.NodeID, from, c.State)
		}
		if c.State == NodeRemoved && len(n.GroupsOf(c.NodeID)) > 0 {
			return nil, fmt.Errorf("%w: %s still holds replicas", ErrBadTransition, c.NodeID)
		}
		n.Nodes[i].State, n.Nodes[i].Epoch = c.State, n.Epoch
	default:
		return nil, fmt.Errorf("%w: unknown op %q", ErrBadCommand, c.Op)
	}
	n.index()
	return n, nil
}
