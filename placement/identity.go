package placement

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Node and cluster identity. A node makes a random identity (a UUID) at its first
// start and keeps it in its data dir; a cluster gets an id when it is created, kept in
// the table. A node id (its --id) is bound to one identity from the node's join until
// the node is removed: a join naming a known id with another identity is refused, so a
// copy-pasted command line, a wiped disk or a hand-written POST cannot take over a
// member's replicas. The same identity on new addresses is the same node moved, and is
// re-addressed. A data dir of another cluster never joins.

// An identity is a secret: it is what lets a node re-address itself, so it is never
// shown or logged. What is shown is its Fingerprint; a probe proves the node holds its
// identity with IdentityProof over the prober's fresh nonce (an HMAC), without
// revealing it. The only time a node sends its identity is when it joins, and in a
// probe answer while the table does not bind its id to one yet.

// Fingerprint is what is shown of an identity (in GET /admin/nodes, problems and
// logs): 16 hex digits of its SHA-256, "" for none.
func Fingerprint(uuid string) string {
	if uuid == "" {
		return ""
	}
	h := sha256.Sum256([]byte("ringkv node identity\x00" + uuid))
	return hex.EncodeToString(h[:8])
}

// IdentityProof is the HMAC-SHA256, keyed by the identity, of the node id and the
// prober's nonce, in hex: what a probe answer carries to prove the node holds it.
func IdentityProof(uuid, node, nonce string) string {
	mac := hmac.New(sha256.New, []byte(uuid))
	mac.Write([]byte(node + "\x00" + nonce))
	return hex.EncodeToString(mac.Sum(nil))
}

// Proves says whether the report, answered to a probe with a fresh nonce, proves the
// node holds identity uuid.
func (r NodeReport) Proves(uuid string) bool {
	return uuid != "" && r.Nonce != "" && hmac.Equal([]byte(r.IdentityProof), []byte(IdentityProof(uuid, r.Node, r.Nonce)))
}

// NewNonce is a fresh random probe nonce (hex).
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Errors of the identity checks; both mean the join must not be retried as it is.
var (
	ErrIdentityMismatch = errors.New("placement: node id held by another node")
	ErrClusterMismatch  = errors.New("placement: data dir belongs to another cluster")
)

// CheckNodeID says whether id may name a node: 1 to 128 bytes of UTF-8, without
// spaces, control characters or slashes (an id is a path segment of the admin API and
// of the dashboard, and appears in logs). ErrBadCommand when not.
func CheckNodeID(id string) error {
	ok := id != "" && len(id) <= 128 && utf8.ValidString(id)
	for _, r := range id {
		ok = ok && r != '/' && !unicode.IsSpace(r) && !unicode.IsControl(r)
	}
	if !ok {
		return fmt.Errorf("%w: node id %q: want 1 to 128 bytes of UTF-8 without spaces, control characters or slashes", ErrBadCommand, id)
	}
	return nil
}

// CheckJoinAddr says whether addr (a node's http_addr or raft_addr) is host:port with a
// port number. ErrBadCommand when not.
func CheckJoinAddr(name, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if p, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || p == 0 || host == "" || len(addr) > 256 {
		return fmt.Errorf("%w: %s %q: want host:port", ErrBadCommand, name, addr)
	}
	return nil
}

// NewIdentity returns a random (version 4) UUID, as "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
func NewIdentity() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// addNode applies an add_node command to n (a clone of t with its epoch bumped) and
// says whether anything changed.
func addNode(t, n *Table, c Command) (bool, error) {
	if !t.Initialized() {
		return false, ErrNotCreated
	}
	if c.Node == nil || c.Node.ID == "" || c.Node.HTTPAddr == "" || c.Node.RaftAddr == "" {
		return false, fmt.Errorf("%w: node needs id, http_addr and raft_addr", ErrBadCommand)
	}
	if c.ClusterID != "" && t.ClusterID != "" && c.ClusterID != t.ClusterID {
		return false, fmt.Errorf("%w: node %s's data dir belongs to cluster %s, this is cluster %s; start it with an empty data dir to join this one",
			ErrClusterMismatch, c.Node.ID, c.ClusterID, t.ClusterID)
	}
	i := slices.IndexFunc(n.Nodes, func(x Node) bool { return x.ID == c.Node.ID })
	if i >= 0 && n.Nodes[i].State != NodeRemoved {
		if err := sameNode(n.Nodes[i], *c.Node); err != nil {
			return false, err
		}
	}
	for _, other := range n.Nodes {
		if other.ID != c.Node.ID && (other.RaftAddr == c.Node.RaftAddr || other.HTTPAddr == c.Node.HTTPAddr) &&
			other.State != NodeRemoved {
			return false, fmt.Errorf("%w: %s", ErrAddressInUse, other.ID)
		}
	}
	node := *c.Node
	node.State, node.Epoch = NodeJoining, n.Epoch
	switch {
	case i < 0:
		n.Nodes = append(n.Nodes, node)
		sort.Slice(n.Nodes, func(a, b int) bool { return n.Nodes[a].ID < n.Nodes[b].ID })
	case n.Nodes[i].State == NodeRemoved:
		n.Nodes[i] = node // the old member is gone for good: the id is free again
	default:
		held := n.Nodes[i]
		if held.HTTPAddr == node.HTTPAddr && held.RaftAddr == node.RaftAddr && held.UUID == node.UUID {
			return false, nil // already a member with these addresses: nothing changes
		}
		node.State = held.State // the same node on new addresses keeps its state
		n.Nodes[i] = node
	}
	return true, nil
}

// sameNode checks that join names the member held, by identity. A member recorded
// without one (a table from before identities, or a node added by hand that has not
// answered a probe yet) is matched by its addresses until its identity is bound.
func sameNode(held, join Node) error {
	switch {
	case held.UUID == "" && held.HTTPAddr == join.HTTPAddr && held.RaftAddr == join.RaftAddr:
		return nil
	case held.UUID != "" && held.UUID == join.UUID:
		return nil
	}
	theirs := "no identity"
	if join.UUID != "" {
		theirs = "identity " + Fingerprint(join.UUID)
	}
	holder := "an unverified node (no identity recorded yet)"
	if held.UUID != "" {
		holder = "node identity " + Fingerprint(held.UUID)
	}
	return fmt.Errorf("%w: id %s is held by %s at http %s, raft %s (state %s); the join came with %s. "+
		"Decommission the old member first (DELETE /admin/nodes/%s) or join under a new id",
		ErrIdentityMismatch, held.ID, holder, held.HTTPAddr, held.RaftAddr, held.State, theirs, held.ID)
}

// applyIdentity applies bind_identity (record the identity a node answered probes
// with, for a member recorded without one) and set_cluster_id (give a table written
// before cluster ids one) to n, and says whether anything changed.
func applyIdentity(n *Table, c Command) (bool, error) {
	if c.Op == "set_cluster_id" {
		switch {
		case c.ClusterID == "":
			return false, fmt.Errorf("%w: set_cluster_id needs cluster_id", ErrBadCommand)
		case n.ClusterID == c.ClusterID:
			return false, nil
		case n.ClusterID != "":
			return false, fmt.Errorf("%w: the cluster id is %s already", ErrClusterMismatch, n.ClusterID)
		}
		n.ClusterID = c.ClusterID
		return true, nil
	}
	i := slices.IndexFunc(n.Nodes, func(x Node) bool { return x.ID == c.NodeID })
	switch {
	case i < 0:
		return false, fmt.Errorf("%w: %s", ErrUnknownNode, c.NodeID)
	case c.UUID == "":
		return false, fmt.Errorf("%w: bind_identity needs uuid", ErrBadCommand)
	case n.Nodes[i].UUID == c.UUID:
		return false, nil
	case n.Nodes[i].UUID != "":
		return false, fmt.Errorf("%w: %s is bound to identity %s", ErrIdentityMismatch, c.NodeID, Fingerprint(n.Nodes[i].UUID))
	}
	n.Nodes[i].UUID, n.Nodes[i].Epoch = c.UUID, n.Epoch
	return true, nil
}
