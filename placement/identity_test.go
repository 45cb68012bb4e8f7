package placement

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// joined is a table of cluster "c1" created by n1 (identity u1), with n2 (identity u2)
// joined at h2:1/r2:1.
func joined(t *testing.T) *Table {
	t.Helper()
	tab, err := Apply(&Table{}, Command{Op: "init", Partitions: 8, Groups: 2, Replication: 3, ClusterID: "c1",
		Node: &Node{ID: "n1", HTTPAddr: "h1:1", RaftAddr: "r1:1", UUID: "u1"}})
	if err != nil {
		t.Fatal(err)
	}
	if tab, err = Apply(tab, Command{Op: "add_node", ClusterID: "c1", Node: &Node{ID: "n2", HTTPAddr: "h2:1", RaftAddr: "r2:1", UUID: "u2"}}); err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestJoinIsCheckedByIdentity(t *testing.T) {
	tab := joined(t)
	if tab.ClusterID != "c1" {
		t.Fatalf("init did not record the cluster id: %q", tab.ClusterID)
	}
	if n, _ := tab.Node("n1"); n.UUID != "u1" {
		t.Fatalf("init did not record the creator's identity: %+v", n)
	}
	for _, tc := range []struct {
		name    string
		cluster string
		node    Node
		want    error
	}{
		{"another identity at another address", "", Node{ID: "n2", HTTPAddr: "h7:1", RaftAddr: "r7:1", UUID: "u7"}, ErrIdentityMismatch},
		{"no identity (a hand-written POST)", "", Node{ID: "n2", HTTPAddr: "h7:1", RaftAddr: "r7:1"}, ErrIdentityMismatch},
		{"no identity, even at the member's own addresses", "", Node{ID: "n2", HTTPAddr: "h2:1", RaftAddr: "r2:1"}, ErrIdentityMismatch},
		{"a data dir of another cluster", "c9", Node{ID: "n3", HTTPAddr: "h3:1", RaftAddr: "r3:1", UUID: "u3"}, ErrClusterMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(tab, Command{Op: "add_node", ClusterID: tc.cluster, Node: &tc.node})
			if !errors.Is(err, tc.want) {
				t.Fatalf("add_node %+v: %v, want %v", tc.node, err, tc.want)
			}
			if tc.want == ErrIdentityMismatch {
				// The problem says who holds the id (by fingerprint: the identity is a
				// secret), and where.
				for _, s := range []string{Fingerprint("u2"), "h2:1", "r2:1", "DELETE /admin/nodes/n2"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%q does not name %s", err, s)
					}
				}
				if strings.Contains(err.Error(), "u2 ") {
					t.Errorf("%q shows the holder's identity", err)
				}
			}
		})
	}
	t.Run("the same identity at a new address is re-addressed and keeps its state", func(t *testing.T) {
		up, err := Apply(tab, Command{Op: "set_node_state", NodeID: "n2", State: NodeUp})
		if err != nil {
			t.Fatal(err)
		}
		moved, err := Apply(up, Command{Op: "add_node", ClusterID: "c1", Node: &Node{ID: "n2", HTTPAddr: "h8:1", RaftAddr: "r8:1", UUID: "u2"}})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := moved.Node("n2"); n.HTTPAddr != "h8:1" || n.RaftAddr != "r8:1" || n.State != NodeUp || n.UUID != "u2" {
			t.Fatalf("re-addressed node: %+v", n)
		}
		again, _ := Apply(moved, Command{Op: "add_node", Node: &Node{ID: "n2", HTTPAddr: "h8:1", RaftAddr: "r8:1", UUID: "u2"}})
		if again != moved {
			t.Fatal("re-joining with the same identity and addresses changed the table")
		}
	})
	t.Run("a removed member's id is free for a new identity", func(t *testing.T) {
		gone := tab
		for _, st := range []NodeState{NodeDraining, NodeRemoved} {
			var err error
			if gone, err = Apply(gone, Command{Op: "set_node_state", NodeID: "n2", State: st}); err != nil {
				t.Fatal(err)
			}
		}
		back, err := Apply(gone, Command{Op: "add_node", ClusterID: "c1", Node: &Node{ID: "n2", HTTPAddr: "h9:1", RaftAddr: "r9:1", UUID: "u9"}})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := back.Node("n2"); n.UUID != "u9" || n.State != NodeJoining {
			t.Fatalf("new member under a removed id: %+v", n)
		}
	})
}

func TestIdentityOfMembersRecordedWithoutOne(t *testing.T) {
	// A table written before identities existed (version 1, no cluster_id, no uuid)
	// still loads.
	old := `{"version":1,"epoch":3,"replication":3,"partitions":[{"group":1,"epoch":1}],` +
		`"groups":[{"id":1,"replicas":["n1"],"epoch":1}],` +
		`"nodes":[{"id":"n1","http_addr":"h1:1","raft_addr":"r1:1","state":"up","epoch":1}]}`
	tab, err := DecodeTable([]byte(old))
	if err != nil {
		t.Fatalf("a table without identities does not decode: %v", err)
	}
	if _, err := Apply(tab, Command{Op: "add_node", Node: &Node{ID: "n1", HTTPAddr: "h5:1", RaftAddr: "r5:1", UUID: "u5"}}); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("a member without identity was taken over from another address: %v", err)
	}
	// Its own restart (same addresses) binds the identity, as does a bind_identity
	// command (proposed by earlier versions from probe answers; still applied).
	bound, err := Apply(tab, Command{Op: "add_node", Node: &Node{ID: "n1", HTTPAddr: "h1:1", RaftAddr: "r1:1", UUID: "u1"}})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := bound.Node("n1"); n.UUID != "u1" || n.State != NodeUp {
		t.Fatalf("bound: %+v", n)
	}
	byProbe, err := Apply(tab, Command{Op: "bind_identity", NodeID: "n1", UUID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(byProbe, Command{Op: "bind_identity", NodeID: "n1", UUID: "u6"}); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("rebinding a bound identity: %v", err)
	}
	withID, err := Apply(tab, Command{Op: "set_cluster_id", ClusterID: "c1"})
	if err != nil || withID.ClusterID != "c1" {
		t.Fatalf("set_cluster_id: %v %q", err, withID.ClusterID)
	}
	if _, err := Apply(withID, Command{Op: "set_cluster_id", ClusterID: "c2"}); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("changing the cluster id: %v", err)
	}
	b, _ := EncodeTable(withID)
	if again, err := DecodeTable(b); err != nil || again.ClusterID != "c1" {
		t.Fatalf("round trip: %v %+v", err, again)
	}
}

func TestNewIdentityIsARandomUUID(t *testing.T) {
	a, b := NewIdentity(), NewIdentity()
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !re.MatchString(a) || a == b {
		t.Fatalf("NewIdentity: %q, %q", a, b)
	}
}

// answers is a prober for which only the nodes it lists answer, each as the node id
// and with the identity given.
type answers map[string]struct{ node, uuid string }

func (a answers) Probe(ctx context.Context, httpAddr string) (NodeReport, error) {
	if n, ok := a[httpAddr]; ok {
		// The node proves the identity it holds over this probe's nonce.
		rep := NodeReport{Node: n.node, Nonce: NewNonce()}
		rep.IdentityProof = IdentityProof(n.uuid, n.node, rep.Nonce)
		return rep, nil
	}
	return NodeReport{}, errors.New("connection refused")
}

func (a answers) TransferLeader(context.Context, string, uint32, string) error { return nil }

func TestANodeIsLiveOnlyOnceItAnswersAsItself(t *testing.T) {
	tab := joined(t)
	tab, _ = Apply(tab, Command{Op: "add_node", Node: &Node{ID: "n3", HTTPAddr: "h3:1", RaftAddr: "r3:1", UUID: "u3"}})
	prober := answers{
		"h1:1": {"n1", "u1"},
		"h2:1": {"n2", "u-impostor"}, // something else answers at n2's address
		// n3: nothing listens at h3:1
	}
	s := NewService(ServiceConfig{DownAfter: 5 * time.Second, DeadAfter: time.Hour, JoinTimeout: 200 * time.Millisecond}, nil, nil, prober, slog.Default())
	s.probeAll(context.Background(), tab)
	c := s.cluster(tab)
	if !c.Live["n1"] || c.Live["n2"] || c.Live["n3"] {
		t.Fatalf("live after one pass: %v; want only n1 (n2 answered with another identity, n3 never answered)", c.Live)
	}
	if s.isUp("n3") || s.isUp("n2") {
		t.Fatal("a node that never answered as itself would be marked up")
	}
	for _, id := range []string{"n2", "n3"} {
		if c.eligible(mustNode(t, tab, id)) {
			t.Fatalf("%s may receive replicas before it answered", id)
		}
	}
	// After JoinTimeout without an answer the service gives up on n3 and says so.
	deadline := time.Now().Add(5 * time.Second)
	for !s.Health()["n3"].GaveUp {
		if time.Now().After(deadline) {
			t.Fatalf("not given up on n3 after JoinTimeout: %+v", s.Health()["n3"])
		}
		s.probeAll(context.Background(), tab)
	}
	if h := s.Health()["n1"]; h.GaveUp || h.Down {
		t.Fatalf("n1 answers: %+v", h)
	}
}

func mustNode(t *testing.T, tab *Table, id string) Node {
	t.Helper()
	n, ok := tab.Node(id)
	if !ok {
		t.Fatalf("no node %s", id)
	}
	return n
}

func TestRemovedOnlyOnceOutOfTheCommittedMetaConfiguration(t *testing.T) {
	tab := joined(t)
	tab, _ = Apply(tab, Command{Op: "set_node_state", NodeID: "n2", State: NodeDraining})
	n2 := mustNode(t, tab, "n2")
	// Every data group's committed configuration is without n2.
	views := map[uint32]groupView{}
	for _, g := range tab.Groups {
		views[g.ID] = groupView{leader: "n1", members: []string{"n1"}, voters: []string{"n1"}, committed: true}
	}
	leader := "Leader"
	for _, tc := range []struct {
		name string
		meta ReplicaReport
		want bool
	}{
		{"still a meta non-voter", ReplicaReport{State: leader, Voters: []string{"n1"}, NonVoters: []string{"n2"}, CommitIndex: 9, ConfigIndex: 5}, false},
		{"still a meta voter", ReplicaReport{State: leader, Voters: []string{"n1", "n2"}, CommitIndex: 9, ConfigIndex: 5}, false},
		{"left meta, not committed", ReplicaReport{State: leader, Voters: []string{"n1"}, CommitIndex: 9, ConfigIndex: 10}, false},
		{"not the meta leader's report", ReplicaReport{State: "Follower", CommitIndex: 9}, false},
		{"left meta, committed", ReplicaReport{State: leader, Voters: []string{"n1"}, CommitIndex: 10, ConfigIndex: 10}, true},
	} {
		if got := removable(tab, n2, views, tc.meta); got != tc.want {
			t.Errorf("%s: removable = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A data group still listing n2 keeps it.
	views[1] = groupView{leader: "n1", members: []string{"n1", "n2"}, voters: []string{"n1"}, committed: true}
	if removable(tab, n2, views, ReplicaReport{State: leader, Voters: []string{"n1"}, CommitIndex: 10, ConfigIndex: 10}) {
		t.Error("removable while a data group's configuration lists it")
	}
}

// TestIdentityIsProvenWithoutBeingShown: a probe answer proves the identity over the
// prober's nonce; a proof over another nonce, for another node id or from another
// identity proves nothing, and the fingerprint shown does not give the identity away.
func TestIdentityIsProvenWithoutBeingShown(t *testing.T) {
	id := NewIdentity()
	nonce := NewNonce()
	rep := NodeReport{Node: "n1", Nonce: nonce, IdentityProof: IdentityProof(id, "n1", nonce)}
	if !rep.Proves(id) {
		t.Fatal("a proof over the probe's own nonce does not prove the identity")
	}
	for name, bad := range map[string]NodeReport{
		"replayed over another nonce": {Node: "n1", Nonce: NewNonce(), IdentityProof: rep.IdentityProof},
		"for another node id":         {Node: "n2", Nonce: nonce, IdentityProof: rep.IdentityProof},
		"from another identity":       {Node: "n1", Nonce: nonce, IdentityProof: IdentityProof(NewIdentity(), "n1", nonce)},
		"no nonce":                    {Node: "n1", IdentityProof: IdentityProof(id, "n1", "")},
	} {
		if bad.Proves(id) {
			t.Errorf("%s: proves the identity", name)
		}
	}
	if f := Fingerprint(id); len(f) != 16 || strings.Contains(id, f) || Fingerprint(id) != f || Fingerprint(NewIdentity()) == f {
		t.Fatalf("fingerprint %q of %q", f, id)
	}
}
