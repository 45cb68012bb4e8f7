package placement

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"github.com/ringkv/ringkv/raftgroup"
)

// replicaSet is three real replicas of one group, each with its own mux, Badger DB and
// directory, that a test can stop and start again.
type replicaSet struct {
	t      *testing.T
	ids    []string
	dirs   []string
	dbs    []*badger.DB
	muxes  []*raftgroup.Mux
	groups []*raftgroup.Group
	boot   raft.Configuration
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newReplicaSet(t *testing.T) *replicaSet {
	s := &replicaSet{t: t}
	for i := range 3 {
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
		id := fmt.Sprintf("r%d", i+1)
		s.ids, s.dirs, s.dbs, s.muxes = append(s.ids, id), append(s.dirs, dir), append(s.dbs, db), append(s.muxes, mux)
		s.boot.Servers = append(s.boot.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(ln.Addr().String())})
	}
	s.groups = make([]*raftgroup.Group, 3)
	t.Cleanup(func() {
		for i := range 3 {
			s.stop(i)
			s.muxes[i].Close()
			s.dbs[i].Close()
		}
	})
	for i := range 3 {
		s.start(i)
	}
	return s
}

func (s *replicaSet) start(i int) {
	g, err := raftgroup.StartGroup(raftgroup.GroupConfig{
		ID: 1, NodeID: s.ids[i], Dir: filepath.Join(s.dirs[i], "group"), DB: s.dbs[i], Mux: s.muxes[i],
		SM: raftgroup.NewKV(1, func() []uint32 { return []uint32{0} }), Log: quietLog, Bootstrap: &s.boot,
		// A long lease keeps a leader cut off from its followers leading for a while,
		// long enough to look at the configuration change it could not commit.
		Tuning: raftgroup.Tuning{HeartbeatTimeout: 2 * time.Second, ElectionTimeout: 2 * time.Second},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.groups[i] = g
}

func (s *replicaSet) stop(i int) {
	if s.groups[i] != nil {
		s.groups[i].Stop()
		s.groups[i] = nil
	}
}

// leader waits until one running replica leads and returns its index.
func (s *replicaSet) leader() int {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, g := range s.groups {
			if g != nil && g.IsLeader() {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond) // polling Raft state; no event to wait on
	}
	s.t.Fatal("no replica became leader")
	return -1
}

// TestRemovalAppendedButNotCommittedIsNotCommitted: a leader that appends a removal it
// cannot commit (its followers are down) must say the configuration has not committed,
// so the removed replica keeps its data; when a new leader overwrites that entry, the
// configuration seen is the older one again (the tracker follows the truncation).
// hashicorp/raft v1.7.3 reports every configuration's index as 0, which made every
// configuration look committed.
func TestRemovalAppendedButNotCommittedIsNotCommitted(t *testing.T) {
	s := newReplicaSet(t)
	l := s.leader()
	lg := s.groups[l]
	if _, err := lg.Propose(t.Context(), encodePut("k", "v1")); err != nil {
		t.Fatal(err)
	}
	f1, f2 := (l+1)%3, (l+2)%3
	removed := s.ids[f2]
	s.stop(f1)
	s.stop(f2)
	go lg.Raft().RemoveServer(raft.ServerID(removed), 0, 0) // cannot commit: no follower answers

	var rep ReplicaReport
	deadline := time.Now().Add(5 * time.Second)
	for {
		rep = ReportFor(lg)
		if len(rep.Voters) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader never appended the removal: %+v", rep)
		}
		time.Sleep(5 * time.Millisecond) // polling Raft state; no event to wait on
	}
	if rep.State != raft.Leader.String() {
		t.Fatalf("the leader stepped down before its report was read: %+v", rep)
	}
	if rep.ConfigCommitted() {
		t.Fatalf("the removal looks committed though no follower received it: config index %d, commit index %d",
			rep.ConfigIndex, rep.CommitIndex)
	}
	r := &Reconciler{Self: removed}
	g := Group{ID: 1, Replicas: s.ids}
	if r.removedFromGroup(g, map[string]NodeReport{s.ids[l]: {Node: s.ids[l], Replicas: []ReplicaReport{rep}}}) {
		t.Fatal("the reconciler would delete the removed replica's data before its removal committed")
	}
	st := lg.Status()
	if st.ConfigIndex <= st.CommitIndex {
		t.Fatalf("status: config index %d should be above commit index %d", st.ConfigIndex, st.CommitIndex)
	}
	uncommitted := st.ConfigIndex

	// The two others elect a leader without the old one, and overwrite its entry.
	s.stop(l)
	s.start(f1)
	s.start(f2)
	nl := s.leader()
	if _, err := s.groups[nl].Propose(t.Context(), encodePut("k", "v2")); err != nil {
		t.Fatal(err)
	}
	s.start(l)
	deadline = time.Now().Add(20 * time.Second)
	for {
		st = s.groups[l].Status()
		if len(st.Servers) == 3 && st.CommitIndex >= st.ConfigIndex && st.ConfigIndex < uncommitted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old leader kept the overwritten configuration: %d servers, config index %d (uncommitted one %d), commit %d",
				len(st.Servers), st.ConfigIndex, uncommitted, st.CommitIndex)
		}
		time.Sleep(10 * time.Millisecond) // polling Raft state; no event to wait on
	}
}

func encodePut(key, value string) []byte {
	c := raftgroup.KVCommand{Op: raftgroup.OpPut, Partition: 0, Key: []byte(key), Value: []byte(value)}
	return c.Encode()
}
