package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
	"github.com/ringkv/ringkv/raftgroup/backup"
)

// BackupManifest is a backup's manifest (raftgroup/backup), for the command line.
type BackupManifest = backup.Manifest

// Errors of a backup file, for the command line: damaged or not a backup, cut short,
// or of a newer format than this binary reads.
var (
	ErrBackupCorrupt   = backup.ErrCorrupt
	ErrBackupTruncated = backup.ErrTruncated
	ErrBackupNewer     = backup.ErrNewerFormat
)

// VerifyBackup reads a whole backup from r and checks its every checksum, length and
// key, and returns its manifest; it restores nothing.
func VerifyBackup(r io.Reader) (BackupManifest, error) { return backup.Verify(r) }

// ErrDataDirNotEmpty: restore was asked to write into a data dir that holds something.
var ErrDataDirNotEmpty = errors.New("the data dir is not empty")

// restoreDirName is the directory of a restored data dir holding what the new
// cluster's first node starts from: restorePlanFile and one seed per group.
const (
	restoreDirName  = "restore"
	restorePlanFile = "plan.json"
)

// RestorePlan is what `ringkv restore` leaves in a data dir for `ringkv serve`: the
// layout the new cluster is created with, and the groups' seeds.
type RestorePlan struct {
	From       BackupManifest `json:"from"` // the backup's manifest
	Partitions int            `json:"partitions"`
	Groups     []RestoredSeed `json:"groups"`
}

// RestoredSeed is one new group's seed: the index it starts at (its Raft log goes on
// from there) and the keys it holds.
type RestoredSeed struct {
	ID         uint32 `json:"id"`
	StartIndex uint64 `json:"start_index"`
	Keys       uint64 `json:"keys"`
}

// Restore prepares dataDir, which must be absent or empty, from the backup in file:
// `ringkv serve --data-dir dataDir` then creates a new cluster (a new cluster id) of the
// backup's partitions and groups, each group starting from a snapshot of exactly the
// backup's keys, versions, create and mod indexes, at the group's backup index (so a
// key's later writes get higher mod indexes and its ETags never repeat).
//
// Everything is written into a directory beside the final one and renamed into place
// only once the whole file has been read and checked: a corrupted, truncated or newer
// file, or any failure, leaves dataDir as it was (absent or empty).
func Restore(file, dataDir string) (RestorePlan, error) {
	created, err := emptyDataDir(dataDir)
	if err != nil {
		return RestorePlan{}, err
	}
	staging := filepath.Join(dataDir, restoreStagingName)
	plan, err := restoreInto(file, staging)
	if err == nil {
		err = os.Rename(staging, filepath.Join(dataDir, restoreDirName))
	}
	if err == nil {
		err = SyncDir(dataDir)
	}
	if err != nil {
		_ = os.RemoveAll(staging)
		if created {
			_ = os.Remove(dataDir)
		}
		return RestorePlan{}, err
	}
	return plan, nil
}

// emptyDataDir makes sure dir is an empty directory, creating it (created) if absent.
func emptyDataDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, os.MkdirAll(dir, 0o700)
	case err != nil:
		return false, err
	case len(entries) > 0:
		return false, fmt.Errorf("%w: %s holds %s (and %d more): restore only into a new or empty directory",
			ErrDataDirNotEmpty, dir, entries[0].Name(), len(entries)-1)
	}
	return false, nil
}

func restoreInto(file, staging string) (RestorePlan, error) {
	f, err := os.Open(file)
	if err != nil {
		return RestorePlan{}, err
	}
	defer f.Close()
	br, err := backup.NewReader(f)
	if err != nil {
		return RestorePlan{}, err
	}
	h := br.Header()
	// The bounds `serve` puts on a new cluster's layout: a file past them would restore,
	// then crash the node that starts from it (a table over Badger's value limit).
	if len(h.Groups) == 0 || len(h.Partitions) < len(h.Groups) || len(h.Partitions) > placement.MaxPartitions {
		return RestorePlan{}, fmt.Errorf("%w: %d partitions, %d groups (at most %d partitions, and at least one per group)",
			backup.ErrCorrupt, len(h.Partitions), len(h.Groups), placement.MaxPartitions)
	}
	// The new cluster's layout is what its first node creates (placement's "init"):
	// the backup's partition count and group count; a key stays in its partition.
	layout, err := placement.Apply(&placement.Table{}, placement.Command{Op: "init", Partitions: len(h.Partitions),
		Groups: len(h.Groups), Replication: 1, Node: &placement.Node{ID: "restore"}})
	if err != nil {
		return RestorePlan{}, err
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return RestorePlan{}, err
	}
	seeds := map[uint32]*raftgroup.SeedWriter{}
	start := map[uint32]uint64{}
	defer func() {
		for _, s := range seeds {
			s.Abort()
		}
	}()
	for _, g := range layout.Groups {
		s, err := raftgroup.CreateSeed(filepath.Join(staging, raftgroup.SeedFile(g.ID)))
		if err != nil {
			return RestorePlan{}, err
		}
		seeds[g.ID], start[g.ID] = s, 1
	}
	for {
		group, applied, ok, err := br.NextSection()
		if err != nil {
			return RestorePlan{}, err
		}
		if !ok {
			break
		}
		// Every new group serving one of this group's partitions starts at or after
		// its index, so the mod indexes of the keys it receives stay below its own.
		for p, g := range h.Partitions {
			if g == group {
				ng := layout.GroupOf(uint32(p))
				start[ng] = max(start[ng], applied)
			}
		}
		for {
			key, rec, ok, err := br.NextRecord()
			if err != nil {
				return RestorePlan{}, err
			}
			if !ok {
				break
			}
			p, _, _ := raftgroup.SplitDataKey(key) // the reader checked the key's partition
			if err := seeds[layout.GroupOf(p)].Put(key, rec); err != nil {
				return RestorePlan{}, err
			}
		}
	}
	m, _ := br.Manifest()
	plan := RestorePlan{From: m, Partitions: len(h.Partitions)}
	for _, g := range layout.Groups {
		s := seeds[g.ID]
		delete(seeds, g.ID)
		plan.Groups = append(plan.Groups, RestoredSeed{ID: g.ID, StartIndex: start[g.ID], Keys: s.Keys()})
		if err := s.Close(start[g.ID]); err != nil {
			return RestorePlan{}, err
		}
	}
	js, _ := json.MarshalIndent(plan, "", "  ")
	if err := writeSynced(filepath.Join(staging, restorePlanFile), js); err != nil {
		return RestorePlan{}, err
	}
	return plan, SyncDir(staging)
}

// restoreStagingName is where Restore writes before renaming into place; a data dir
// still holding it was being restored when the restore was killed.
const restoreStagingName = ".restore-partial"

// pendingRestore reads the restore plan a data dir holds (nil when it holds none). A
// data dir a killed restore left half-written is refused: started, it would create an
// empty new cluster beside the partial files.
func pendingRestore(dataDir string) (*RestorePlan, error) {
	if _, err := os.Stat(filepath.Join(dataDir, restoreStagingName)); err == nil {
		return nil, fmt.Errorf("data dir %s holds a restore that did not finish (%s): remove the data dir and run ringkv restore again",
			dataDir, restoreStagingName)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, restoreDirName, restorePlanFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p RestorePlan
	if err := json.Unmarshal(b, &p); err != nil || p.Partitions < 1 || len(p.Groups) < 1 {
		return nil, fmt.Errorf("%s in %s is damaged (%v): restore the backup again into an empty data dir",
			restorePlanFile, filepath.Join(dataDir, restoreDirName), err)
	}
	return &p, nil
}
