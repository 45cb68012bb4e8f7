package app

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestFollowerBehindCompactedLogCatchesUpBySnapshot stops a follower while its group
// writes far past the snapshot threshold and the kept log tail, so that on restart the
// leader can only bring it back with InstallSnapshot; the follower must then hold
// exactly the leader's data.
func TestFollowerBehindCompactedLogCatchesUpBySnapshot(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs = 40, 10
		cfg.Tuning.SnapshotInterval = 100 * time.Millisecond
	})
	// Every key shares the tag {snap}, so all of them land in one group.
	c.mustPut(0, "{snap}/0", "first")
	status, hdr, _ := c.do(0, "GET", "/kv/{snap}/0", "")
	if status != 200 {
		t.Fatalf("GET: %d", status)
	}
	group := hdr.Get("X-Ringkv-Group")
	follower := (c.leaderOf("{snap}/0") + 1) % 3
	c.stop(follower)
	for i := 0; i < 150; i++ { // 3x (threshold + tail), one entry each
		c.mustPut((follower+1)%3, fmt.Sprintf("{snap}/%d", i%60), fmt.Sprintf("v%d", i))
	}
	c.mustPut((follower+1)%3, "{snap}/0", "last")
	var id uint32
	fmt.Sscan(group, &id)
	// The follower must come back only once the others compacted past where it stopped:
	// a snapshot is taken at most every SnapshotInterval, and with a fast log the writes
	// can outrun it.
	eventually(t, 10*time.Second, "the running replicas compacted their logs", func() error {
		for i, n := range c.nodes {
			if i == follower {
				continue
			}
			if got := n.node.host.Group(id).LogEntries(); got > 100 {
				return fmt.Errorf("node %d keeps %d entries", i, got)
			}
		}
		return nil
	})
	c.start(follower)
	c.waitReady(follower)

	type digest struct {
		Applied uint64 `json:"applied_index"`
		Keys    int    `json:"keys"`
		SHA256  string `json:"sha256"`
	}
	read := func(i int) (digest, error) {
		var d digest
		status, _, body := c.do(i, "GET", "/admin/groups/"+group+"/digest", "")
		if status != 200 {
			return d, fmt.Errorf("digest from node %d: %d %s", i, status, body)
		}
		return d, json.Unmarshal(body, &d)
	}
	eventually(t, 30*time.Second, "follower's replica equals the others", func() error {
		var ds []digest
		for i := range c.nodes {
			d, err := read(i)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		for _, d := range ds[1:] {
			if d != ds[0] {
				return fmt.Errorf("replicas differ: %+v", ds)
			}
		}
		if ds[0].Keys != 60 {
			return fmt.Errorf("%d keys, want 60", ds[0].Keys)
		}
		return nil
	})
	// Its snapshot store could also hold a snapshot it took itself once caught up; the
	// restore count is what says the leader's snapshot was installed.
	if c.nodes[follower].node.host.Group(id).SnapshotRestores() == 0 {
		t.Fatal("the follower caught up without installing a snapshot: the test did not exercise what it claims")
	}
	if status, kv := c.get(follower, "{snap}/0", "?consistency=stale"); status != 200 || kv.Value != "last" {
		t.Fatalf("follower serves %d %+v", status, kv)
	}
}
