package web

import (
	"testing"
	"time"
)

// TestOverviewLastBackup: the cluster facts show the last scheduled backup (when
// backups are scheduled): none yet, its age, size and "ok", or that it failed.
func TestOverviewLastBackup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		backup *BackupStatus
		want   string // "" when the fact must be absent
		ok     string
	}{
		{name: "not scheduled"},
		{name: "none yet", backup: &BackupStatus{}, want: "none yet", ok: "true"},
		{name: "ok", backup: &BackupStatus{Started: testNow.Add(-3 * time.Minute), Bytes: 150 << 20}, want: "3 min ago, 150 MiB, ok", ok: "true"},
		{name: "failed", backup: &BackupStatus{Started: testNow.Add(-5 * time.Second), Err: "group 3 has no leader"}, want: "failed 5 s ago", ok: "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newFakeCluster().overview()
			o.Backup = tc.backup
			d := renderDoc(t, OverviewBody(o))
			if tc.want == "" {
				if d.has("fact-backup") {
					t.Fatal("a last-backup fact without scheduled backups")
				}
				return
			}
			if got := d.text("fact-backup"); got != tc.want {
				t.Errorf("fact-backup %q, want %q", got, tc.want)
			}
			if got := attr(d.one("fact-backup"), "data-ok"); got != tc.ok {
				t.Errorf("data-ok %q, want %q", got, tc.ok)
			}
		})
	}
}
