// Package web is the admin dashboard: templ components rendered on the server, the
// handlers that serve them under /ui/, and their embedded static assets (no CDN, no
// build step beyond `templ generate`).
//
// It knows nothing of the rest of the project: it reads the cluster through the small
// interfaces declared here, which cmd/ringkv/app fills (see LocalAPI for the adapter
// that serves them from a node's own HTTP API).
package web

//go:generate go tool templ generate -log-level warn

import (
	"context"
	"fmt"
	"time"
)

// Prefix is where the dashboard is mounted; every link it renders starts with it.
const Prefix = "/ui"

// ClusterView is the read-only picture of the cluster the dashboard draws.
type ClusterView interface {
	Nodes(ctx context.Context) ([]Node, error)
	Groups(ctx context.Context) ([]Group, error)
	Partitions(ctx context.Context) (Partitions, error)
}

// KV is what the key browser needs. Writes must take the same path as the HTTP API
// (forwarded to the group's leader), so an implementation should not go around it.
type KV interface {
	// List answers the page after cursor (the Next of the page before, opaque; "" for
	// the first page). Entry.Key holds a key's exact bytes, UTF-8 or not.
	List(ctx context.Context, prefix, cursor string, limit int) (KeyPage, error)
	Get(ctx context.Context, key string) (Entry, error)
	Put(ctx context.Context, key string, value []byte) (PutResult, error)
	Delete(ctx context.Context, key string) error
}

// Node is a cluster member (the admin API's node object).
type Node struct {
	ID       string    `json:"id"`
	HTTPAddr string    `json:"http_addr"`
	RaftAddr string    `json:"raft_addr"`
	State    string    `json:"state"` // joining, up, draining, down, removed
	LastSeen time.Time `json:"last_seen"`
	Replicas int       `json:"replicas"`
	Leaders  int       `json:"leaders"`
	Disk     *NodeDisk `json:"disk,omitempty"` // nil until the node has been probed
}

// NodeDisk is a node's disk as it last reported it (the admin API's NodeDisk), in bytes.
type NodeDisk struct {
	FreeBytes     uint64 `json:"free_bytes"`
	TotalBytes    uint64 `json:"total_bytes"`
	ReserveBytes  uint64 `json:"reserve_bytes"`
	Full          bool   `json:"full"` // below the reserve: the node refuses writes
	StateBytes    int64  `json:"state_bytes"`
	RaftLogBytes  int64  `json:"raft_log_bytes"`
	SnapshotBytes int64  `json:"snapshot_bytes"`
}

// Replica is one replica of a group, as its leader sees it.
type Replica struct {
	Node          string `json:"node"`
	Voter         bool   `json:"voter"`
	State         string `json:"state"` // Leader, Follower, Candidate, Shutdown, unreachable
	MatchIndex    uint64 `json:"match_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	Lag           uint64 `json:"lag"`
	LastContactMs int64  `json:"last_contact_ms"`
	Healthy       bool   `json:"healthy"`
}

// Group is one Raft group.
type Group struct {
	ID           uint32    `json:"id"`
	Leader       string    `json:"leader"`
	Term         uint64    `json:"term"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"`
	Replicas     []Replica `json:"replicas"`
	Partitions   []uint32  `json:"partitions"`
}

// Partition is one arc of the hash ring.
type Partition struct {
	ID        uint32 `json:"id"`
	Group     uint32 `json:"group"`
	Epoch     uint64 `json:"epoch"`
	HashStart string `json:"hash_start"`
	HashEnd   string `json:"hash_end"`
}

// Partitions is the partition map at one epoch.
type Partitions struct {
	Epoch      uint64      `json:"epoch"`
	Partitions []Partition `json:"partitions"`
}

// Entry is a stored key with its value.
type Entry struct {
	Key         string
	Value       []byte
	Version     uint64
	CreateIndex uint64
	ModIndex    uint64
	Group       uint32
}

// KeyPage is one page of a listing; Next is the cursor of the following page, empty
// at the end.
type KeyPage struct {
	Items []Entry
	Next  string
}

// PutResult answers a put.
type PutResult struct {
	Created bool
	Version uint64
}

// APIError is a failed call, as an RFC 9457 problem. The dashboard shows it as it is,
// so an operator reads the same words curl would print.
type APIError struct {
	Status int
	Title  string
	Detail string
	// OutcomeUnknown: a write may or may not have been applied.
	OutcomeUnknown bool
}

func (e *APIError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%d %s", e.Status, e.Title)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Detail)
}
