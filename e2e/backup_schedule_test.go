package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScheduledBackups: three nodes sharing one --backup-dir, a backup every second,
// the newest 3 kept. Only the meta leader takes them (one node's log says so, the files
// are a second apart), old ones are removed, each file verifies, /metrics reports the
// newest one's age and the dashboard shows it.
func TestScheduledBackups(t *testing.T) {
	c := startProcCluster(t, 3, "--backup-dir", "backups", "--backup-every", "1s", "--backup-keep", "3")
	dir := filepath.Join(c.dir, "backups")
	if _, err := putRaw(t.Context(), c.procs[0].httpURL, "scheduled", []byte("v")); err != nil {
		t.Fatal(err)
	}
	var names []string
	taken := func() (map[int]int, int) {
		per, total := map[int]int{}, 0
		for i := range c.procs {
			b, _ := os.ReadFile(c.procs[i].logPath)
			if n := strings.Count(string(b), "scheduled backup taken"); n > 0 {
				per[i] = n
				total += n
			}
		}
		return per, total
	}
	eventually(t, 60*time.Second, "5 scheduled backups taken, 3 kept", func() error {
		if _, total := taken(); total < 5 {
			return fmt.Errorf("%d taken", total)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		names = names[:0]
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".rkbackup") {
				names = append(names, e.Name())
			}
		}
		if len(names) != 3 {
			return fmt.Errorf("%d kept: %v", len(names), names)
		}
		return nil
	})
	if per, _ := taken(); len(per) != 1 {
		t.Fatalf("backups taken by %d nodes (%v); only the meta leader takes them", len(per), per)
	}
	slices.Sort(names)
	var prev time.Time
	for _, name := range names {
		at, err := time.Parse("20060102T150405.000Z", strings.TrimSuffix(strings.TrimPrefix(name, "ringkv-"), ".rkbackup"))
		if err != nil {
			t.Fatalf("backup file %s: %v", name, err)
		}
		if !prev.IsZero() && at.Sub(prev) < 900*time.Millisecond {
			t.Fatalf("backups %s taken %s after the one before: two nodes took one each", name, at.Sub(prev))
		}
		prev = at
		if out, errOut, status := runCLI(t, c.bin, "backup", "--verify", filepath.Join(dir, name)); status != 0 {
			t.Fatalf("--verify %s: %d %s%s", name, status, out, errOut)
		}
	}
	per, _ := taken()
	var leader int
	for i := range per {
		leader = i
	}
	get := func(path string) string {
		resp, err := http.Get(c.procs[leader].httpURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	metrics := get("/metrics")
	for _, m := range []string{"ringkv_backup_age_seconds ", "ringkv_backup_last_size_bytes ", `ringkv_backup_runs_total{result="ok"}`} {
		if !strings.Contains(metrics, m) {
			t.Fatalf("/metrics lacks %s", m)
		}
	}
	if ui := get("/ui/"); !strings.Contains(ui, `data-testid="fact-backup" data-ok="true"`) {
		t.Fatalf("the dashboard does not show the last backup as ok")
	}
}
