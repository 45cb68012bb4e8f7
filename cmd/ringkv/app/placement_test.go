package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ringkv/ringkv/placement"
)

// The placement issue's scenarios on the in-process harness: the cluster manages
// itself (grow, replace, repair, survive the meta leader's death, plan a decommission)
// while a client writes and reads, and no acknowledged write is lost.

func TestGrowOneToFiveNodesBalancesReplicasAndLeaders(t *testing.T) {
	c := startCluster(t, 1)
	l := c.startLoad(40)
	for n := 2; n <= 5; n++ {
		c.addNode()
	}
	eventually(t, 90*time.Second, "5 nodes settled and balanced", func() error {
		if err := c.settled(); err != nil {
			return err
		}
		return c.balanced()
	})
	for _, g := range c.table().Groups {
		if len(g.Replicas) != 3 {
			t.Fatalf("group %d has %d replicas, want 3", g.ID, len(g.Replicas))
		}
	}
	// The meta group has 5 voters once there are 5 nodes.
	var meta struct {
		Replicas []struct {
			Voter bool `json:"voter"`
		} `json:"replicas"`
	}
	eventually(t, 30*time.Second, "5 meta voters", func() error {
		c.getJSON(0, "/admin/groups/0", &meta)
		voters := 0
		for _, r := range meta.Replicas {
			if r.Voter {
				voters++
			}
		}
		if voters != 5 {
			return fmt.Errorf("%d meta voters", voters)
		}
		return nil
	})
	l.finish()
}

func TestReplaceEveryNodeOneAtATime(t *testing.T) {
	c := startCluster(t, 3)
	l := c.startLoad(40)
	for old := 0; old < 3; old++ {
		c.addNode()
		id := c.nodes[old].cfg.ID
		if status, _, body := c.do(old+1, http.MethodDelete, "/admin/nodes/"+id, ""); status != http.StatusAccepted {
			t.Fatalf("DELETE /admin/nodes/%s: %d %s", id, status, body)
		}
		c.waitState(id, "removed", 90*time.Second)
		eventually(t, 30*time.Second, "settled after "+id+" left", c.settled)
		c.stop(old)
	}
	eventually(t, 60*time.Second, "the new nodes settled", c.settled)
	for _, g := range c.table().Groups {
		if !sameNodes(g.Replicas, []string{"n4", "n5", "n6"}) {
			t.Fatalf("group %d on %v, want n4 n5 n6", g.ID, g.Replicas)
		}
	}
	l.finish()
}

func TestDeadNodeIsReplacedAndItsStaleReplicasDiscarded(t *testing.T) {
	grace := func(cfg *Config) { cfg.DownAfter, cfg.DeadAfter = time.Second, 3*time.Second }
	c := startCluster(t, 3, grace)
	c.addNode(grace)
	eventually(t, 60*time.Second, "4 nodes settled", c.settled)
	l := c.startLoad(20)
	victim := c.indexOf("n2")
	if len(c.table().GroupsOf("n2")) == 0 {
		t.Fatal("n2 holds no replica: nothing to repair")
	}
	c.stop(victim)
	eventually(t, 60*time.Second, "n2's replicas re-created on live nodes", func() error {
		t := c.table()
		if t == nil {
			return fmt.Errorf("no meta leader")
		}
		if gs := t.GroupsOf("n2"); len(gs) > 0 {
			return fmt.Errorf("n2 still holds groups %v", gs)
		}
		for _, g := range t.Groups {
			if len(g.Replicas) != 3 {
				return fmt.Errorf("group %d has %v", g.ID, g.Replicas)
			}
		}
		return c.settled()
	})
	c.start(victim)
	c.waitReady(victim)
	// It comes back holding replicas nobody counts any more: they are discarded (or,
	// if the balancer hands it the same groups again, replaced by fresh copies).
	eventually(t, 60*time.Second, "settled with n2 back", c.settled)
	l.finish()
}

func TestMetaLeaderDiesInTheMiddleOfAMove(t *testing.T) {
	c := startCluster(t, 3)
	l := c.startLoad(20)
	c.addNode() // n4: balancing moves replicas onto it, one pass at a time
	var metaLeader int
	eventually(t, 60*time.Second, "a replica move in progress", func() error {
		if err := c.settled(); err == nil {
			return fmt.Errorf("nothing is moving")
		}
		for i, tn := range c.nodes {
			if tn.node != nil && tn.node.metaGroup.IsLeader() {
				if tn.node.service.Moves() == 0 {
					return fmt.Errorf("the meta leader has proposed no move yet")
				}
				metaLeader = i
				return nil
			}
		}
		return fmt.Errorf("no meta leader")
	})
	t.Logf("stopping the meta leader %s mid-move", c.nodes[metaLeader].cfg.ID)
	c.stop(metaLeader)
	eventually(t, 60*time.Second, "a new meta leader", func() error {
		if c.table() == nil {
			return fmt.Errorf("no meta leader yet")
		}
		return nil
	})
	c.start(metaLeader)
	c.waitReady(metaLeader)
	eventually(t, 90*time.Second, "table and Raft configurations agree", func() error {
		if err := c.settled(); err != nil {
			return err
		}
		return c.balanced()
	})
	l.finish()
}

type decommissionPlan struct {
	Node   string           `json:"node"`
	DryRun bool             `json:"dry_run"`
	Moves  []placement.Move `json:"moves"`
	After  map[string]int   `json:"replicas_after"`
}

func TestDecommissionDryRunMatchesTheRealDecommission(t *testing.T) {
	c := startCluster(t, 4)
	eventually(t, 60*time.Second, "4 nodes settled and balanced", func() error {
		if err := c.settled(); err != nil {
			return err
		}
		return c.balanced()
	})
	before := c.table()
	status, _, body := c.do(0, http.MethodDelete, "/admin/nodes/n2?dry_run=true", "")
	var plan decommissionPlan
	if status != http.StatusOK || json.Unmarshal(body, &plan) != nil || !plan.DryRun {
		t.Fatalf("dry run: %d %s", status, body)
	}
	if n2, ok := plan.After["n2"]; len(plan.Moves) == 0 || len(plan.After) != 4 || !ok || n2 != 0 {
		t.Fatalf("dry run plans %v, leaving n2 %d replicas", plan.Moves, plan.After["n2"])
	}
	if after := c.table(); after.Epoch != before.Epoch {
		t.Fatalf("the dry run changed the table: epoch %d -> %d", before.Epoch, after.Epoch)
	}
	want := map[uint32][]string{}
	for _, g := range before.Groups {
		want[g.ID] = slices.Clone(g.Replicas)
	}
	for _, m := range plan.Moves {
		want[m.Group] = placement.ApplyMove(want[m.Group], m)
	}

	if status, _, body := c.do(0, http.MethodDelete, "/admin/nodes/n2", ""); status != http.StatusAccepted {
		t.Fatalf("decommission: %d %s", status, body)
	}
	c.waitState("n2", "removed", 90*time.Second)
	eventually(t, 30*time.Second, "settled", c.settled)
	got := c.table()
	for _, g := range got.Groups {
		if !sameNodes(g.Replicas, want[g.ID]) {
			t.Errorf("group %d ended on %v; the dry run planned %v", g.ID, g.Replicas, want[g.ID])
		}
	}
	for id, n := range plan.After {
		if len(got.GroupsOf(id)) != n {
			t.Errorf("%s holds %d replicas; the dry run said %d", id, len(got.GroupsOf(id)), n)
		}
	}
	// n2 is out of every group: stopping it loses nothing.
	c.stop(c.indexOf("n2"))
	c.mustPut(0, "after-decommission", "ok")
}

func TestDecommissionRefusals(t *testing.T) {
	c := startCluster(t, 1)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/admin/nodes/nope", http.StatusNotFound},
		{"/admin/nodes/n1", http.StatusConflict}, // the last node
		{"/admin/nodes/n1?dry_run=perhaps", http.StatusBadRequest},
	} {
		status, hdr, body := c.do(0, http.MethodDelete, tc.path, "")
		if status != tc.status || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("DELETE %s: %d %s %s, want a %d problem", tc.path, status, hdr.Get("Content-Type"), body, tc.status)
		}
	}
}
