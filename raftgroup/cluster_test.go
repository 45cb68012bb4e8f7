package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// replicaSet is one group replicated on three in-process nodes, each with its own mux
// on loopback, Badger DB and stores: the real transport, log and state machine.
type replicaSet struct {
	groups []*Group
	dbs    []*badger.DB
}

// startReplicaSet starts group 1 on nodes n1, n2, n3 (n1 bootstraps it) and waits
// until one of them leads. configure, when given, adjusts node i's replica first.
func startReplicaSet(tb testing.TB, tuning Tuning, configure ...func(i int, cfg *GroupConfig)) *replicaSet {
	tb.Helper()
	return startReplicaSetOn(tb, newMuxes(tb, 3, nil), tuning, configure...)
}

// newMuxes makes n muxes on loopback, closed by the test's cleanup; opts, when not
// nil, gives mux i's options (TLS, say).
func newMuxes(tb testing.TB, n int, opts func(i int) []MuxOption) []*Mux {
	tb.Helper()
	muxes := make([]*Mux, n)
	for i := range muxes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		var o []MuxOption
		if opts != nil {
			o = opts(i)
		}
		m, err := NewMux(ln, ln.Addr().String(), quiet, o...)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { m.Close() })
		muxes[i] = m
	}
	return muxes
}

// startReplicaSetOn is startReplicaSet on the given muxes, one replica per mux.
func startReplicaSetOn(tb testing.TB, muxes []*Mux, tuning Tuning, configure ...func(i int, cfg *GroupConfig)) *replicaSet {
	tb.Helper()
	servers := make([]raft.Server, len(muxes))
	for i, m := range muxes {
		servers[i] = raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Address: raft.ServerAddress(m.Addr().String())}
	}
	rs := &replicaSet{}
	for i, m := range muxes {
		db, err := badger.Open(badger.DefaultOptions(tb.TempDir()).WithLogger(nil).WithSyncWrites(false))
		if err != nil {
			tb.Fatal(err)
		}
		cfg := GroupConfig{
			ID: 1, NodeID: string(servers[i].ID), Dir: tb.TempDir(), DB: db, Mux: m, SM: NewKV(1, ownsEven),
			Log: quiet, Tuning: tuning,
		}
		if i == 0 {
			cfg.Bootstrap = &raft.Configuration{Servers: servers}
		}
		for _, c := range configure {
			c(i, &cfg)
		}
		g, err := StartGroup(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		// Cleanups run last-in first-out: the group stops before its DB closes.
		tb.Cleanup(func() { db.Close() })
		tb.Cleanup(func() { g.Stop() })
		rs.groups = append(rs.groups, g)
		rs.dbs = append(rs.dbs, db)
	}
	rs.leader(tb, 10*time.Second)
	return rs
}

// leader waits until exactly one replica leads and returns it.
func (rs *replicaSet) leader(tb testing.TB, within time.Duration) *Group {
	tb.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		var leaders []*Group
		for _, g := range rs.groups {
			if g.IsLeader() {
				leaders = append(leaders, g)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d leaders after %v", len(leaders), within)
		}
	}
}

// byID returns the replica on node id.
func (rs *replicaSet) byID(id string) *Group {
	for _, g := range rs.groups {
		if g.nodeID == id {
			return g
		}
	}
	return nil
}

// value is key's value in the state machine of replica i ("" when absent).
func (rs *replicaSet) value(tb testing.TB, i int, key string) string {
	tb.Helper()
	rec, ok, err := rs.groups[i].SM().(*KV).Get(rs.dbs[i], 2, []byte(key))
	if err != nil {
		tb.Fatal(err)
	}
	if !ok {
		return ""
	}
	return string(rec.Value)
}

// put writes key=value through whichever replica leads, trying again while the
// answer is "not the leader, nothing done", for at most within.
func (rs *replicaSet) put(tb testing.TB, key, value string, within time.Duration) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	c := KVCommand{Op: OpPut, Partition: 2, Key: []byte(key), Value: []byte(value)}
	for {
		var last error = errors.New("no replica leads")
		for _, g := range rs.groups {
			if !g.IsLeader() {
				continue
			}
			_, err := g.Propose(ctx, c.Encode())
			if err == nil {
				return g.Applied()
			}
			last = err
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("put %s: no replica took it within %v: %v", key, within, last)
			return 0
		case <-time.After(10 * time.Millisecond):
		}
	}
}
