package placement

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// "init", "add_node", "set_replicas", "set_node_state", "bind_identity",
	// "set_cluster_id" change the table (Apply); "create_token", "revoke_token" the
	// token set (ApplyTokens).
	Op string `json:"op"`

	// init: the new cluster's id; add_node: the cluster the joining node's data dir
	// belongs to ("" when it never joined one); set_cluster_id: the id to record.
	ClusterID string `json:"cluster_id,omitempty"`

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

	// set_node_state, bind_identity
	NodeID string    `json:"node_id,omitempty"`
	State  NodeState `json:"state,omitempty"`
	// bind_identity: the identity the node answered a probe with
	UUID string `json:"uuid,omitempty"`

	// create_token: the record to add; init: the bootstrap admin token's (optional:
	// commands proposed before tokens existed have none).
	Token *Token `json:"token,omitempty"`
	// create_token: this is the cluster's bootstrap admin token, made once
	// (ErrBootstrapped after).
	Bootstrap bool `json:"bootstrap,omitempty"`
	// revoke_token
	TokenID string `json:"token_id,omitempty"`
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
		n.Replication, n.ClusterID = c.Replication, c.ClusterID
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
		changed, err := addNode(t, n, c)
		if err != nil {
			return nil, err
		}
		if !changed {
			return t, nil
		}
	case "bind_identity", "set_cluster_id":
		changed, err := applyIdentity(n, c)
		if err != nil {
			return nil, err
		}
		if !changed {
			return t, nil
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
