package web

import "testing"

// A node's page shows its disk by kind, its free space against the reserve, and says
// plainly when the node is degraded because its disk is full.
func TestNodePageShowsDisk(t *testing.T) {
	const mib = 1 << 20
	v := NodeView{ID: "n1", Found: true, Node: Node{ID: "n1", State: "up", Disk: &NodeDisk{
		FreeBytes: 20 * mib, TotalBytes: 64 * mib, ReserveBytes: 24 * mib, Full: true,
		StateBytes: 30 * mib, RaftLogBytes: 8 * mib, SnapshotBytes: 3 * mib / 2,
	}}}
	d := renderDoc(t, NodeBody(v))
	for id, want := range map[string]string{
		"node-disk-status":    "degraded",
		"node-disk-free":      "20.0 MiB of 64.0 MiB",
		"node-disk-reserve":   "24.0 MiB",
		"node-disk-state":     "30.0 MiB",
		"node-disk-raft-log":  "8.0 MiB",
		"node-disk-snapshots": "1.5 MiB",
	} {
		if got := d.text(id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if !d.has("node-disk-full") {
		t.Error("a full disk is not called out")
	}

	v.Node.Disk.Full, v.Node.Disk.FreeBytes = false, 40*mib
	d = renderDoc(t, NodeBody(v))
	if d.has("node-disk-full") || d.text("node-disk-status") != "healthy" {
		t.Errorf("a disk with room: status %q, full alert %v", d.text("node-disk-status"), d.has("node-disk-full"))
	}
	v.Node.Disk = nil
	if d = renderDoc(t, NodeBody(v)); !d.has("node-disk-unknown") {
		t.Error("a node that has not reported its disk shows no placeholder")
	}
}

// The overview's node table marks a node whose disk is full.
func TestOverviewMarksAFullDisk(t *testing.T) {
	c := newFakeCluster()
	c.nodes[1].Disk = &NodeDisk{Full: true}
	d := renderDoc(t, OverviewBody(c.overview()))
	if got := d.text("node-disk-full-" + c.nodes[1].ID); got != "disk full" {
		t.Errorf("node %s: disk-full badge %q", c.nodes[1].ID, got)
	}
	if d.has("node-disk-full-" + c.nodes[0].ID) {
		t.Errorf("node %s has room but is marked full", c.nodes[0].ID)
	}
}
