package placement

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/raftgroup"
)

// memTokenStore is an AdminTokenStore in memory.
type memTokenStore struct {
	mu        sync.Mutex
	token     string
	discarded bool
}

func (s *memTokenStore) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" {
		plain, _, err := NewToken(RoleAdmin, nil, "", time.Now())
		if err != nil {
			return "", err
		}
		s.token = plain
	}
	return s.token, nil
}

func (s *memTokenStore) Discard() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.discarded = "", true
	return nil
}

// startMeta runs a one-replica meta group and waits until it leads.
func startMeta(t *testing.T) (*Meta, *raftgroup.Group) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := raftgroup.NewMux(ln, ln.Addr().String(), quietLog)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := NewMeta(db)
	if err != nil {
		t.Fatal(err)
	}
	boot := raft.Configuration{Servers: []raft.Server{{ID: "m1", Address: raft.ServerAddress(ln.Addr().String())}}}
	g, err := raftgroup.StartGroup(raftgroup.GroupConfig{ID: MetaGroup, NodeID: "m1", Dir: filepath.Join(dir, "group"), DB: db, Mux: mux,
		SM: meta, Log: quietLog, Bootstrap: &boot,
		Tuning: raftgroup.Tuning{HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop()
		mux.Close()
		db.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !g.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the meta replica did not become leader")
		}
		time.Sleep(10 * time.Millisecond) // polling Raft state; no event to wait on
	}
	return meta, g
}

// TestBootstrapTokenOfAnOlderCluster: a cluster created before tokens (its init
// carried none) is given the meta leader's kept token, once; a leader whose view was
// behind and lost the race discards the token it kept, which was never valid.
func TestBootstrapTokenOfAnOlderCluster(t *testing.T) {
	meta, g := startMeta(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := &memTokenStore{}
	s := NewService(ServiceConfig{AdminToken: store}, meta, g, nil, quietLog)
	if err := s.Propose(ctx, Command{Op: "init", Partitions: 4, Groups: 1, Replication: 1, Node: &Node{ID: "m1", HTTPAddr: "h:1", RaftAddr: "r:1"}}); err != nil {
		t.Fatal(err)
	}
	if meta.Tokens().Bootstrapped {
		t.Fatal("an init without a token bootstrapped the token set")
	}
	s.bootstrapTokens(ctx)
	plain, _ := store.Token()
	if rec, ok := meta.Tokens().Authenticate(plain); !ok || rec.Role != RoleAdmin || !meta.Tokens().Bootstrapped {
		t.Fatalf("after bootstrapTokens: %+v %v, set %+v", rec, ok, meta.Tokens())
	}
	// Once made, never again, even when revoked.
	id, _ := TokenID(plain)
	if err := s.RevokeToken(ctx, id); err != nil {
		t.Fatal(err)
	}
	other := &memTokenStore{}
	NewService(ServiceConfig{AdminToken: other}, meta, g, nil, quietLog).bootstrapTokens(ctx)
	if other.token != "" || len(meta.Tokens().Tokens) != 0 {
		t.Fatalf("a revoked bootstrap token was made again: %+v", meta.Tokens())
	}
	// A leader whose view of the set is behind proposes its own and is refused.
	_, stale := openMeta(t)
	late := &memTokenStore{}
	NewService(ServiceConfig{AdminToken: late}, stale, g, nil, quietLog).bootstrapTokens(ctx)
	if !late.discarded {
		t.Fatal("a bootstrap token refused by the cluster was kept")
	}
}
