package raftgroup

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// removePartialSnapshots deletes the in-progress snapshot directories a crash left in
// a replica's snapshot store and returns how many it removed. hashicorp/raft's
// FileSnapshotStore writes a snapshot into "<dir>/snapshots/<name>.tmp" and renames it
// when complete; a process killed in between leaves the .tmp directory, which the store
// skips when listing but never deletes, so each kill -9 during a snapshot leaked a copy
// of the group's data. Nothing reads a .tmp directory, so removing them at start, before
// the store is opened, is safe.
func removePartialSnapshots(dir string, log *slog.Logger) (int, error) {
	snaps := filepath.Join(dir, "snapshots")
	entries, err := os.ReadDir(snaps)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(snaps, e.Name())); err != nil {
			return removed, err
		}
		log.Info("removed a partial snapshot left by a crash", "dir", filepath.Join(snaps, e.Name()))
		removed++
	}
	return removed, nil
}
