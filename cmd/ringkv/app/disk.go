package app

import (
	"fmt"

	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
)

// degraded lists what this node cannot do now although it is ready: with its disk at
// the reserve it refuses writes to the groups it leads (and deletes below half of it).
func (n *Node) degraded() []string {
	st := n.host.Disk().State()
	var out []string
	if st.Full {
		out = append(out, fmt.Sprintf("disk full: %s free on the data dir's filesystem, below the %s reserve; writes are refused with 507 until space is freed",
			raftgroup.FormatBytes(st.FreeBytes), raftgroup.FormatBytes(st.ReserveBytes)))
	}
	if st.Err != nil {
		out = append(out, "disk: cannot measure free space: "+st.Err.Error())
	}
	return out
}

// diskReport is this node's disk as it reports it to the placement service (and so to
// GET /admin/nodes and the dashboard).
func (n *Node) diskReport() *placement.DiskReport {
	st := n.host.Disk().State()
	u := n.host.DiskUsage()
	return &placement.DiskReport{
		FreeBytes: st.FreeBytes, TotalBytes: st.TotalBytes, ReserveBytes: st.ReserveBytes, Full: st.Full,
		StateBytes: u.State, RaftLogBytes: u.RaftLog, SnapshotBytes: u.Snapshots,
	}
}
