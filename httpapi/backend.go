package httpapi

import (
	"context"
	"time"
)

// Route says where a key's group is served, as this node knows it.
type Route struct {
	Group      uint32
	Partition  uint32
	Local      bool   // this node runs a replica of the group
	Leader     bool   // that replica believes it leads
	LeaderID   string // the leader's node id, when known
	LeaderHTTP string // the leader's HTTP address, when known
}

// Condition of a write (If-Match / If-None-Match).
type Condition struct {
	Absent bool   // If-None-Match: *
	Exists bool   // If-Match: *
	ETag   string // If-Match: "<etag>"
}

// Value is a stored value with its metadata.
type Value struct {
	Value       []byte
	Version     uint64
	CreateIndex uint64
	ModIndex    uint64
	ETag        string
}

// PutInput is one write.
type PutInput struct {
	Route    Route
	Key      []byte
	Value    []byte
	Cond     Condition
	WantPrev bool
}

// WriteOutput answers a put or a delete.
type WriteOutput struct {
	Created  bool
	Version  uint64
	ModIndex uint64 // the Raft index of the entry that applied the write
	ETag     string
	Prev     *Value
}

// DeleteInput is one delete.
type DeleteInput struct {
	Route    Route
	Key      []byte
	Cond     Condition
	WantPrev bool
}

// GetOutput is a read and the index it is valid at.
type GetOutput struct {
	Value
	Index uint64
	// Staleness bounds how old a stale read may be (time since the replica last heard
	// from its leader); zero for linearizable reads.
	Staleness time.Duration
}

// ListInput asks for one group's share of a listing.
type ListInput struct {
	Group      uint32
	Prefix     []byte
	StartAfter []byte
	Limit      int
	KeysOnly   bool
	Stale      bool
	// MaxBytes bounds the keys and values one share holds (0: no bound); a share cut
	// by it says so (ListPage.Truncated).
	MaxBytes int
	// MaxValueBytes > 0 leaves out each value longer than it (ListItem.OmittedBytes).
	MaxValueBytes int
}

// ListPage is one group's share of a listing.
type ListPage struct {
	Items []ListItem
	Index uint64 // the Raft index the share is valid at
	// Truncated: the share stopped at MaxBytes, and keys after its last item may
	// follow; a listing's page then ends at that item.
	Truncated bool
}

// ListItem is one listed key.
type ListItem struct {
	Key   []byte
	Group uint32
	Value
	// OmittedBytes > 0: the value, of this many bytes, was left out (MaxValueBytes).
	OmittedBytes int
}

// KV is the key-value side of a node, as the handlers need it.
type KV interface {
	NodeID() string
	Route(key []byte) (Route, error)
	Routes() ([]Route, error) // one per data group
	GroupRoute(group uint32) (Route, error)
	// ForgetLeader drops leader from this node's view of group's leader when that view
	// came from a cache (not from a local replica): a connection to it was refused.
	ForgetLeader(group uint32, leader string)
	// LeaderHint tells this node that another node named leader as group's leader:
	// a not-leader refusal's hint, or the node that served a forwarded request. Like
	// ForgetLeader it changes only a cached view, so the next request goes straight
	// to the leader instead of waiting for the next probe.
	LeaderHint(group uint32, leader string)
	Put(ctx context.Context, in PutInput) (WriteOutput, error)
	Delete(ctx context.Context, in DeleteInput) (WriteOutput, error)
	Get(ctx context.Context, r Route, key []byte, stale bool) (GetOutput, error)
	List(ctx context.Context, in ListInput) (ListPage, error)
}

// Node is a cluster member as the admin API shows it.
type Node struct {
	ID       string    `json:"id"`
	HTTPAddr string    `json:"http_addr"`
	RaftAddr string    `json:"raft_addr"`
	State    string    `json:"state"`
	LastSeen time.Time `json:"last_seen"`
	Replicas int       `json:"replicas"`
	Leaders  int       `json:"leaders"`
	Disk     *NodeDisk `json:"disk,omitempty"` // as the node last reported it
	// Identity is the fingerprint of the identity the id is bound to ("" until the
	// node has shown one); the identity itself is a secret (placement.Fingerprint).
	Identity string `json:"identity,omitempty"`
	// Detail says why a node is in its state, when that needs saying (a joined node
	// that never answered).
	Detail string `json:"detail,omitempty"`
}

// NodeDisk is a node's disk (openapi's NodeDisk): its data dir's filesystem, in bytes,
// and what the data dir holds by kind (bytes allocated).
type NodeDisk struct {
	FreeBytes     uint64 `json:"free_bytes"`
	TotalBytes    uint64 `json:"total_bytes"`
	ReserveBytes  uint64 `json:"reserve_bytes"`
	Full          bool   `json:"full"` // free below the reserve: writes refused
	StateBytes    int64  `json:"state_bytes"`
	RaftLogBytes  int64  `json:"raft_log_bytes"`
	SnapshotBytes int64  `json:"snapshot_bytes"`
}

// JoinRequest asks the cluster to admit a node.
type JoinRequest struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	// NodeUUID is the identity kept in the node's data dir; a join naming a known id
	// with another identity (or none) is refused with 409.
	NodeUUID string `json:"node_uuid,omitempty"`
	// ClusterID is the cluster the node's data dir belongs to, if any; another
	// cluster's id is refused with 409.
	ClusterID string `json:"cluster_id,omitempty"`
}

// Replica is one replica of a group as the admin API shows it.
type Replica struct {
	Node          string `json:"node"`
	Voter         bool   `json:"voter"`
	State         string `json:"state"`
	MatchIndex    uint64 `json:"match_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	Lag           uint64 `json:"lag"`
	LastContactMs int64  `json:"last_contact_ms"`
	Healthy       bool   `json:"healthy"`
}

// Group is a Raft group as the admin API shows it.
type Group struct {
	ID           uint32    `json:"id"`
	Leader       string    `json:"leader"`
	Term         uint64    `json:"term"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"`
	Replicas     []Replica `json:"replicas"`
	Partitions   []uint32  `json:"partitions"`
}

// PartitionInfo is one partition as the admin API shows it.
type PartitionInfo struct {
	ID        uint32 `json:"id"`
	Group     uint32 `json:"group"`
	Epoch     uint64 `json:"epoch"`
	HashStart string `json:"hash_start"`
	HashEnd   string `json:"hash_end"`
}

// Partitions is the partition map at one epoch.
type Partitions struct {
	Epoch      uint64          `json:"epoch"`
	Partitions []PartitionInfo `json:"partitions"`
}

// Admin is the cluster-management side of a node.
type Admin interface {
	// MetaLeader reports whether this node leads the meta group, and else where the
	// meta leader is (for forwarding).
	MetaLeader() (bool, Route)
	Nodes(ctx context.Context) ([]Node, error) // meta leader only
	Join(ctx context.Context, req JoinRequest) (Node, error)
	Groups(ctx context.Context) ([]Group, error)
	Partitions() (Partitions, error)
	TransferLeader(ctx context.Context, group uint32, node string) (string, error)
	// Ready is nil when the node has joined and every local replica is caught up;
	// degraded lists what a ready node cannot do now (its disk is full: writes refused).
	Ready() (degraded []string, err error)
	// Internal is this node's report of its replicas (for probes between nodes).
	// Internal is the node's report to a probe; nonce is the prober's, which the
	// report proves the node's identity over.
	Internal(ctx context.Context, nonce string) (any, error)
	// Digest is the applied index and data hash of this node's replica of group.
	Digest(group uint32) (any, error)
	// Decommission drains node id (meta leader only); with dryRun it changes nothing
	// and answers the plan.
	Decommission(ctx context.Context, id string, dryRun bool) (DecommissionPlan, error)
}

// Move is one planned replica move: From "" adds a replica, To "" drops one.
type Move struct {
	Group uint32 `json:"group"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// DecommissionPlan answers DELETE /admin/nodes/{id}.
type DecommissionPlan struct {
	Node   string         `json:"node"`
	DryRun bool           `json:"dry_run"`
	Moves  []Move         `json:"moves"`
	After  map[string]int `json:"replicas_after"` // node -> replica count once drained
}
