package raftgroup

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// heldTimeoutNow is an in-memory transport whose outgoing TimeoutNow, once armed, is
// delivered and then does not return until released: a peer that took the request
// and whose answer is late, for as long as the test wants.
type heldTimeoutNow struct {
	*raft.InmemTransport
	mu   sync.Mutex
	hold chan struct{} // nil: not armed
}

func (t *heldTimeoutNow) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	err := t.InmemTransport.TimeoutNow(id, target, args, resp)
	t.mu.Lock()
	hold := t.hold
	t.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return err
}

func (t *heldTimeoutNow) arm() chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hold = make(chan struct{})
	return t.hold
}

// TestUpstreamTransferFlagOutlivesLeadership is a canary for hashicorp/raft#696 in the
// hashicorp/raft this module builds with, on hashicorp/raft alone (in-memory
// transport, no ringkv code): a leader that steps down while its leadership
// transfer's goroutine is still blocked keeps the "transfer in progress" flag, and when
// it is elected again it refuses every Apply with ErrLeadershipTransferInProgress
// until that goroutine returns. setupLeaderState (raft.go) does not clear the flag; only
// the transfer goroutine's deferred setLeadershipTransferInProgress(false) does.
//
// If this test fails after a hashicorp/raft upgrade, upstream fixed it: say so in
// docs/RAFT-HAZARDS.md; ringkv's guards (transport.go, transferwatch.go) stay harmless.
func TestUpstreamTransferFlagOutlivesLeadership(t *testing.T) {
	const n = 3
	trans := make([]*heldTimeoutNow, n)
	rafts := make([]*raft.Raft, n)
	var servers []raft.Server
	for i := range trans {
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
		trans[i] = &heldTimeoutNow{InmemTransport: tr}
		servers = append(servers, raft.Server{ID: raft.ServerID(addr), Address: addr})
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j].InmemTransport)
			}
		}
	}
	for i := range rafts {
		c := raft.DefaultConfig()
		c.LocalID = servers[i].ID
		c.HeartbeatTimeout = 50 * time.Millisecond
		c.ElectionTimeout = 50 * time.Millisecond
		c.LeaderLeaseTimeout = 50 * time.Millisecond
		c.CommitTimeout = 5 * time.Millisecond
		c.Logger = NewHCLogger(quiet, hclog.Warn)
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(c, &raft.MockFSM{}, store, store, raft.NewInmemSnapshotStore(), trans[i])
		if err != nil {
			t.Fatal(err)
		}
		rafts[i] = r
	}
	var release []chan struct{}
	t.Cleanup(func() {
		for _, h := range release {
			close(h)
		}
		for _, r := range rafts {
			r.Shutdown()
		}
	})
	if err := rafts[0].BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	leaderOf := func() int {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for i, r := range rafts {
				if r.State() == raft.Leader {
					return i
				}
			}
		}
		t.Fatal("no leader within 5 s")
		return -1
	}
	// transfer's future may answer "timeout" when the target's election outlasts an
	// election timeout (a loaded machine); the target wins all the same.
	transfer := func(from, to int) {
		t.Helper()
		err := rafts[from].LeadershipTransferToServer(servers[to].ID, servers[to].Address).Error()
		for deadline := time.Now().Add(5 * time.Second); rafts[to].State() != raft.Leader; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("node%d does not lead 5 s after node%d's transfer to it (%v)", to, from, err)
			}
		}
	}
	a := leaderOf()
	if err := rafts[a].Apply([]byte("first"), time.Second).Error(); err != nil {
		t.Fatal(err)
	}

	// a hands its leadership to b; the TimeoutNow reaches b, b wins, and a's transfer
	// goroutine is left waiting for the TimeoutNow's answer.
	release = append(release, trans[a].arm())
	b := (a + 1) % n
	transfer(a, b)
	// b hands it back: a is leader again, in a later term.
	transfer(b, a)

	// The flag of the earlier term is still set: every write is refused, longer than
	// any transfer can last (two election timeouts).
	refusedUntil := time.Now().Add(4 * 50 * time.Millisecond)
	for refused := 0; refused == 0 || time.Now().Before(refusedUntil); refused++ {
		err := rafts[a].Apply([]byte("refused"), time.Second).Error()
		if !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			t.Fatalf("re-elected leader's Apply #%d: %v, want ErrLeadershipTransferInProgress (hashicorp/raft#696 fixed?)", refused, err)
		}
		if rafts[a].State() != raft.Leader {
			t.Fatal("node lost leadership while the test held its transfer")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Once the old transfer goroutine returns, the same leader takes writes.
	close(release[0])
	release = nil
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := rafts[a].Apply([]byte("after"), time.Second).Error()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Apply after the transfer returned: %v", err)
		}
	}
}
