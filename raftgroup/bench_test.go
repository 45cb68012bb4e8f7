package raftgroup

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// Benchmarks of the write and read hot paths, so a regression shows in
// `go test -bench . ./raftgroup/` (compare runs with benchstat).

func benchDB(b *testing.B) *badger.DB {
	b.Helper()
	db, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithLogger(nil).WithSyncWrites(false))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkApplyBatch is the state machine applying one Raft entry that packs n
// writes (group commit), per write.
func BenchmarkApplyBatch(b *testing.B) {
	value := make([]byte, 100)
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writes=%d", n), func(b *testing.B) {
			db := benchDB(b)
			kv := NewKV(1, ownsEven)
			f, err := newFSM(1, db, kv, quiet)
			if err != nil {
				b.Fatal(err)
			}
			entries := make([]*raft.Log, 0, b.N/n+1)
			for i := 0; i*n < b.N; i++ {
				cmds := make([][]byte, n)
				for j := range cmds {
					c := KVCommand{Op: OpPut, Partition: 2, Key: fmt.Appendf(nil, "key-%d", (i*n+j)%100000), Value: value}
					cmds[j] = c.Encode()
				}
				entries = append(entries, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: encodeBatch(cmds)})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, e := range entries {
				f.ApplyBatch([]*raft.Log{e})
			}
		})
	}
}

// BenchmarkKVCommandCodec is the encoding a write goes through twice (proposal, apply).
func BenchmarkKVCommandCodec(b *testing.B) {
	c := KVCommand{Op: OpPut, Partition: 7, Key: []byte("user:{42}:profile"), Value: make([]byte, 100), WantPrev: true}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Encode()
		}
	})
	raw := c.Encode()
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeKVCommand(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	batch := encodeBatch([][]byte{raw, raw, raw, raw, raw, raw, raw, raw})
	b.Run("decode-batch-of-8", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeBatch(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// singleNodeGroup starts a real one-replica group (Raft, bolt log, Badger state
// machine, mux on loopback) and waits until it leads.
func singleNodeGroup(b *testing.B) *Group {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	mux, err := NewMux(ln, ln.Addr().String(), quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mux.Close() })
	g, err := StartGroup(GroupConfig{
		ID: 1, NodeID: "n1", Dir: b.TempDir(), DB: benchDB(b), Mux: mux, SM: NewKV(1, ownsEven), Log: quiet,
		Bootstrap: &raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: raft.ServerAddress(ln.Addr().String())}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Stop() })
	for deadline := time.Now().Add(10 * time.Second); !g.IsLeader(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the single-node group did not elect itself")
		}
	}
	return g
}

// BenchmarkLinearizableRead is the read-index confirmation a linearizable read waits
// for, with concurrent readers sharing rounds.
func BenchmarkLinearizableRead(b *testing.B) {
	g := singleNodeGroup(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.LinearizableRead(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPropose is a write through the group-commit batcher, Raft, the bolt log's
// fsync and the state machine, with concurrent writers sharing entries.
func BenchmarkPropose(b *testing.B) {
	g := singleNodeGroup(b)
	ctx := context.Background()
	value := make([]byte, 100)
	b.ReportAllocs()
	b.SetParallelism(16)
	var writers atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := writers.Add(1) // each writer its own keys
		for i := 0; pb.Next(); i++ {
			c := KVCommand{Op: OpPut, Partition: 2, Key: fmt.Appendf(nil, "k-%d-%d", w, i), Value: value}
			if _, err := g.Propose(ctx, c.Encode()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkProposeThreeReplicas is BenchmarkPropose on a group of three replicas on
// loopback: each entry is replicated to two followers before it commits, so the
// transport's replication mode (pipelined or not) is in the path.
func BenchmarkProposeThreeReplicas(b *testing.B) {
	rs := startReplicaSet(b, Tuning{})
	g := rs.leader(b, 10*time.Second)
	ctx := context.Background()
	value := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer() // not the cluster's start and election
	b.SetParallelism(16)
	var writers atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := writers.Add(1)
		for i := 0; pb.Next(); i++ {
			c := KVCommand{Op: OpPut, Partition: 2, Key: fmt.Appendf(nil, "k-%d-%d", w, i), Value: value}
			if _, err := g.Propose(ctx, c.Encode()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
