package placement

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// barrierProber answers a probe only once every node it expects has been asked, so
// probes made one after another (each waiting for the last) all time out and the
// pass learns nothing; it also counts how often each node is asked.
type barrierProber struct {
	mu      sync.Mutex
	asked   map[string]int
	waiting int
	all     chan struct{}
}

func (p *barrierProber) Probe(ctx context.Context, httpAddr string) (NodeReport, error) {
	p.mu.Lock()
	p.asked[httpAddr]++
	if p.waiting--; p.waiting == 0 {
		close(p.all)
	}
	p.mu.Unlock()
	select {
	case <-p.all:
		return NodeReport{Node: httpAddr}, nil
	case <-ctx.Done():
		return NodeReport{}, ctx.Err()
	}
}

func (p *barrierProber) TransferLeader(context.Context, string, uint32, string) error {
	return errors.New("not used")
}

// A node back from the dead with many stale replicas asks each other node once per
// pass, all at once, not once per group and replica in turn.
func TestStaleReplicaCheckProbesEachNodeOnceAndAtOnce(t *testing.T) {
	tbl := &Table{}
	for i := 1; i <= 4; i++ {
		tbl.Nodes = append(tbl.Nodes, Node{ID: fmt.Sprintf("n%d", i), HTTPAddr: fmt.Sprintf("n%d:80", i), State: NodeUp})
	}
	var stale []Group
	for g := uint32(1); g <= 8; g++ { // every group on n1 (this node) and two of the others
		stale = append(stale, Group{ID: g, Replicas: []string{"n1", fmt.Sprintf("n%d", 2+g%3), fmt.Sprintf("n%d", 2+(g+1)%3)}})
	}
	p := &barrierProber{asked: map[string]int{}, waiting: 3, all: make(chan struct{})}
	r := &Reconciler{Self: "n1", Prober: p}
	reports := r.probeReplicaNodes(context.Background(), tbl, stale)
	if len(reports) != 3 {
		t.Fatalf("%d reports, want one from each of n2..n4 (probes not made at once?): %v", len(reports), reports)
	}
	for _, id := range []string{"n2", "n3", "n4"} {
		if n := p.asked[id+":80"]; n != 1 {
			t.Errorf("%s asked %d times, want once", id, n)
		}
	}
	if p.asked["n1:80"] != 0 {
		t.Error("the node asked itself")
	}
}
