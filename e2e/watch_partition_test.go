package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestWatchThroughAFollowerPartition: a follower of the key's group is cut off from
// the other nodes while writes go on. A watch served by the other follower keeps
// delivering during the cut; a watch served by the cut-off follower delivers nothing
// it should not and, once the cut heals, catches up. Both see every acknowledged
// write once, in write order.
func TestWatchThroughAFollowerPartition(t *testing.T) {
	c, fw := startPartitionableCluster(t, 3)
	key := "part/k"
	leader := groupLeader(t, c, key)
	cutOff, other := (leader+1)%3, (leader+2)%3
	writer := c.procs[leader].httpURL
	onCut, stopCut := watchStream(t, c.procs[cutOff].httpURL+"/kv?prefix=part/&watch=true", "")
	defer stopCut()
	onOther, stopOther := watchStream(t, c.procs[other].httpURL+"/kv?prefix=part/&watch=true", "")
	defer stopOther()
	var acked []string
	put := func(v string) {
		watchPut(t, writer, key, v)
		acked = append(acked, v)
	}
	cut, healed := newWatchOrder(), newWatchOrder()

	for i := 0; i < 5; i++ {
		put(fmt.Sprint("before", i))
	}
	cut.readUntil(t, onCut, acked)
	healed.readUntil(t, onOther, acked)

	fw.isolate(cutOff)
	for i := 0; i < 10; i++ {
		put(fmt.Sprint("during", i))
	}
	// The other follower's stream does not wait for the cut one.
	healed.readUntil(t, onOther, acked)

	fw.heal()
	for i := 0; i < 5; i++ {
		put(fmt.Sprint("after", i))
	}
	cut.readUntil(t, onCut, acked)
	healed.readUntil(t, onOther, acked)
	t.Logf("%d acknowledged writes, each seen once in order by the cut-off follower's and the other follower's streams", len(acked))
}

// watchOrder is what one stream has delivered: each event id once, and the values in
// order of first appearance. A write retried after an unknown outcome may be applied
// twice (two changes with one value but distinct ids); the same id twice is a
// duplicate delivery.
type watchOrder struct {
	seenID, seenValue map[string]bool
	order             []string
}

func newWatchOrder() *watchOrder {
	return &watchOrder{seenID: map[string]bool{}, seenValue: map[string]bool{}}
}

// readUntil reads events until the stream has delivered every value of acked, and
// fails on a duplicate, on an order other than acked's, or after 30 s.
func (w *watchOrder) readUntil(t *testing.T, events <-chan sseEvent, acked []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(w.order) < len(acked) && time.Now().Before(deadline) {
		e := nextChange(t, events)
		if w.seenID[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		w.seenID[e.ID] = true
		if v := *e.Data.Value; !w.seenValue[v] {
			w.seenValue[v] = true
			w.order = append(w.order, v)
		}
	}
	if strings.Join(w.order, ",") != strings.Join(acked, ",") {
		t.Fatalf("the watch saw %v, want every acknowledged write in order %v", w.order, acked)
	}
}
