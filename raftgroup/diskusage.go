package raftgroup

import (
	"io/fs"
	"path/filepath"
	"syscall"
)

// DiskUsage is what a node's data dir holds on disk, by kind, in bytes allocated (what
// `du` counts: Badger's sparse mmapped files count only the pages written).
type DiskUsage struct {
	State     int64 // the Badger DB: every group's data and the placement table
	RaftLog   int64 // every replica's Raft log and stable store (raft-wal or raft-boltdb)
	Snapshots int64 // every replica's snapshots, partial ones included
}

// DiskUsage walks the data dir. Files that vanish during the walk (a compaction, a
// snapshot being replaced) are skipped.
func (h *Host) DiskUsage() DiskUsage {
	var u DiskUsage
	u.State = dirBytes(filepath.Join(h.cfg.DataDir, "badger"))
	groups := filepath.Join(h.cfg.DataDir, "groups")
	dirs, _ := filepath.Glob(filepath.Join(groups, "*"))
	for _, d := range dirs {
		snaps := dirBytes(filepath.Join(d, "snapshots"))
		u.Snapshots += snaps
		u.RaftLog += dirBytes(d) - snaps
	}
	return u
}

func dirBytes(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += info.Size()
		}
		return nil
	})
	return n
}
