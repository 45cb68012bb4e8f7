package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// replicaBackend is a node's WatchBackend over a fakeWatch: its own replica holds
// changes after floor only, and the group's other replicas are at replicas.
type replicaBackend struct {
	*fakeWatch
	floor    Pos
	replicas []string
}

func (b replicaBackend) Changes(ctx context.Context, group uint32, after Pos, wait bool) (ChangePage, error) {
	if after.Less(b.floor) {
		return ChangePage{}, &CompactedError{Group: group, Floor: b.floor}
	}
	return b.fakeWatch.Changes(ctx, group, after, wait)
}

func (b replicaBackend) Position(ctx context.Context, group uint32) (Pos, Pos, error) {
	now, _, err := b.fakeWatch.Position(ctx, group)
	return now, b.floor, err
}

func (b replicaBackend) Replicas(uint32) []string { return b.replicas }

// peerNode serves a replica's history on /internal/watch/groups/{id}, as another node.
func peerNode(t *testing.T, b replicaBackend) string {
	s := New(Config{AllowedHosts: testHosts, KV: &memKV{data: map[string]Value{}}, Watch: NewWatch(b, nil, "n2"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAWatchReadsPastAReplicaThatJustMovedHere: a replica that just moved onto the
// serving node holds history only from its snapshot; a cursor below that is served
// from a replica that holds it, and answered gone only when no replica does.
func TestAWatchReadsPastAReplicaThatJustMovedHere(t *testing.T) {
	history := newFakeWatch()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		history.add(k, []byte("v"))
	}
	old := peerNode(t, replicaBackend{fakeWatch: history})
	trimmed := peerNode(t, replicaBackend{fakeWatch: history, floor: Pos{Index: 4}})
	ctx := context.Background()

	moved := NewWatch(replicaBackend{fakeWatch: history, floor: Pos{Index: 5}, replicas: []string{old}}, nil, "n1")
	page, err := moved.Changes(ctx, 1, Pos{Index: 2}, false)
	if err != nil || len(page.Changes) != 4 || string(page.Changes[0].Key) != "c" || page.Through != AtIndex(6) {
		t.Fatalf("after 2 with the local floor at 5: %+v through %v (%v), want c..f from the old replica", page.Changes, page.Through, err)
	}
	// At or above the local floor the local replica serves it (no peer needed).
	local := NewWatch(replicaBackend{fakeWatch: history, floor: Pos{Index: 5}}, nil, "n1")
	if page, err = local.Changes(ctx, 1, Pos{Index: 5}, false); err != nil || len(page.Changes) != 1 {
		t.Fatalf("after 5: %+v (%v)", page.Changes, err)
	}
	// Every replica trimmed past the cursor: gone, naming a floor to resume from.
	gone := NewWatch(replicaBackend{fakeWatch: history, floor: Pos{Index: 5}, replicas: []string{trimmed}}, nil, "n1")
	_, err = gone.Changes(ctx, 1, Pos{Index: 2}, false)
	var ce *CompactedError
	if !errors.As(err, &ce) || ce.Floor != (Pos{Index: 4}) {
		t.Fatalf("after 2 with every floor above it: %v, want gone with the other replica's floor 4", err)
	}
	// No other replica answers: the local answer stands.
	if _, err = local.Changes(ctx, 1, Pos{Index: 2}, false); !errors.As(err, &ce) || ce.Floor != (Pos{Index: 5}) {
		t.Fatalf("after 2 alone: %v, want gone with floor 5", err)
	}
}
