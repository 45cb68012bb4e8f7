package app

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup/backup"
)

// TestRestoredDataDirMakesANewClusterOfTheBackupsLayout (in process): a backup of a
// cluster of 16 partitions and 4 groups, restored, starts under a default config (64
// partitions, 8 groups) as a cluster of 16 and 4 with the key; the same data dir with
// --join is refused before anything starts.
func TestRestoredDataDirMakesANewClusterOfTheBackupsLayout(t *testing.T) {
	c := startCluster(t, 1, func(cfg *Config) { cfg.Partitions, cfg.Groups = 16, 4 })
	c.mustPut(0, "restored", "value")
	status, _, file := c.do(0, http.MethodGet, "/admin/backup", "")
	if status != http.StatusOK {
		t.Fatalf("GET /admin/backup: %d %s", status, file)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "b.rkbackup")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "restored")
	plan, err := Restore(path, dataDir)
	if err != nil || plan.Partitions != 16 || len(plan.Groups) != 4 || plan.From.Keys != 1 {
		t.Fatalf("restore: %+v %v", plan, err)
	}

	cfg := Default()
	cfg.ID, cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = "r1", dataDir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.Tuning, cfg.ServiceInterval, cfg.Log = testTuning, 100*time.Millisecond, testLogger(t, "r1")
	joining := cfg
	joining.Join = []string{c.nodes[0].node.HTTPAddr()}
	if _, err := New(joining); err == nil || !strings.Contains(err.Error(), "without --join") {
		t.Fatalf("a restored data dir with --join: %v, want a refusal", err)
	}
	r := &testCluster{t: t, client: c.client, nodes: []*testNode{{cfg: cfg}}}
	r.start(0)
	t.Cleanup(func() { r.stop(0) })
	r.waitReady(0)
	var parts struct {
		Partitions []struct{} `json:"partitions"`
	}
	if r.getJSON(0, "/admin/partitions", &parts); len(parts.Partitions) != 16 {
		t.Fatalf("the restored cluster has %d partitions, want the backup's 16", len(parts.Partitions))
	}
	eventually(t, 20*time.Second, "the restored key", func() error {
		if status, kv := r.get(0, "restored", ""); status != http.StatusOK || kv.Value != "value" || kv.Version != 1 {
			return fmt.Errorf("GET restored: %d %+v", status, kv)
		}
		return nil
	})
}

// TestHalfRestoredDataDirIsRefused: a data dir a killed `ringkv restore` left with its
// staging directory is refused at start, instead of starting an empty new cluster
// beside the partial files.
func TestHalfRestoredDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, restoreStagingName), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := pendingRestore(dir); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("pendingRestore of a half-restored data dir: %v, want a refusal", err)
	}
}

// TestRestoreRefusesALayoutServeWouldRefuse: a well-formed backup whose header names
// more partitions than a cluster may have is refused, with nothing written (one of
// 8,000,000 partitions restored, then crashed the node it started: its placement table
// passed Badger's value limit).
func TestRestoreRefusesALayoutServeWouldRefuse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "huge.rkbackup")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw, err := backup.NewWriter(f, backup.Header{ClusterID: "c", Partitions: make([]uint32, placement.MaxPartitions+1), Groups: []uint32{0}})
	if err == nil {
		if _, err = bw.Section(0, 1); err == nil {
			if _, err = bw.EndSection(); err == nil {
				_, err = bw.Close()
			}
		}
	}
	if err != nil || f.Close() != nil {
		t.Fatalf("writing the file: %v", err)
	}
	dataDir := filepath.Join(dir, "restored")
	if _, err := Restore(path, dataDir); err == nil || !strings.Contains(err.Error(), "partitions") {
		t.Fatalf("restore of %d partitions: %v, want a refusal", placement.MaxPartitions+1, err)
	}
	if _, err := os.Stat(dataDir); err == nil {
		t.Fatal("the refused restore left its data dir")
	}
}
