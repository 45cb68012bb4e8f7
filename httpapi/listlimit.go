package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"
)

// A listing is the heaviest request a node serves: a page reads up to a few MiB from
// every group and merges it, where a point request reads one key. Left unbounded, 32
// concurrent lists of 1,000 keys starved Raft's heartbeats of CPU on 2 cores and
// caused 34 leader elections in 7 s. So a node works on a bounded number of listings
// at once, scaled to its cores, and the others wait their turn: a list storm is served
// more slowly, and Raft and point requests go on as before.
//
// Client listings and the group shares other nodes ask for (their fan-out) wait in
// separate queues, so a node whose client listings wait for shares from other nodes
// never holds the slots those nodes' shares need.
type listLimit struct {
	clients chan struct{} // client listings being merged on this node
	shares  chan struct{} // group shares being read for another node's listing
}

func newListLimit() *listLimit {
	procs := runtime.GOMAXPROCS(0)
	return &listLimit{clients: make(chan struct{}, 2*procs), shares: make(chan struct{}, 4*procs)}
}

// listQueueWait bounds how long a client listing waits for its turn before it is
// answered 503 with Retry-After (nothing done): past it the node is overloaded.
const listQueueWait = 5 * time.Second

// acquire waits for a slot for r (a client listing, or a share when forwarded) and
// returns the function that frees it; or, when the wait ends first, an ErrOverloaded
// error to answer with.
func (l *listLimit) acquire(ctx context.Context, r *http.Request) (release func(), err error) {
	slots, wait := l.clients, listQueueWait
	if isForwarded(r) {
		slots, wait = l.shares, requestTimeout // the sender's listing waits for it anyway
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
	case <-t.C:
	}
	return nil, fmt.Errorf("%w: this node is serving %d listings already and this one waited %s; nothing was done, retry",
		ErrOverloaded, cap(slots), wait)
}

// shareLimit is how many keys a listing of limit keys asks each of groups groups for:
// keys are spread over the groups by hash, so each holds about limit/groups of any
// page's keys; twice that, and a few more, leaves a page short of limit (with a next
// cursor) only rarely, where asking every group for the whole page read and shipped
// groups times what the page shows. A share that comes back full marks the page's
// frontier (mergePage).
func shareLimit(limit, groups int) int {
	if groups <= 1 {
		return limit + 1
	}
	return min(limit+1, 2*limit/groups+16)
}
