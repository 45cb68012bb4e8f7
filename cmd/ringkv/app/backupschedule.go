package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/raftgroup/backup"
)

// backupScheduler takes the scheduled backups (--backup-dir, --backup-every,
// --backup-keep). Every node runs one; only the meta group's leader takes backups, so
// one node takes each (after a leader change the next leader takes the next). A backup
// is due --backup-every after the newest one in the directory (by its name, the UTC
// time it was started), so a new leader sharing the directory keeps the schedule.
// It is written as FILE.tmp, checked by reading it back, and renamed; then all but the
// newest --backup-keep are removed.
type backupScheduler struct {
	n     *Node
	dir   string
	every time.Duration
	keep  int

	mu   sync.Mutex
	last BackupRun // this node's last attempt

	runs *prometheus.CounterVec // ringkv_backup_runs_total{result}
}

// BackupRun is one scheduled backup attempt, as the dashboard and /metrics show it.
type BackupRun struct {
	Started time.Time
	Took    time.Duration
	File    string
	Bytes   int64
	Keys    uint64
	Err     string // "" when it succeeded
}

// backupPrefix and backupSuffix frame a scheduled backup's file name.
const (
	backupPrefix = "ringkv-"
	backupSuffix = ".rkbackup"
	backupStamp  = "20060102T150405.000Z"
)

func newBackupScheduler(n *Node, reg prometheus.Registerer) *backupScheduler {
	s := &backupScheduler{n: n, dir: n.cfg.BackupDir, every: n.cfg.BackupEvery, keep: n.cfg.BackupKeep,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringkv_backup_runs_total",
			Help: "Scheduled backups this node took (as the meta leader), by result (ok, failed).",
		}, []string{"result"})}
	s.runs.WithLabelValues("ok")
	s.runs.WithLabelValues("failed")
	reg.MustRegister(s.runs, backupCollector{s})
	return s
}

// run takes backups while ctx lasts.
func (s *backupScheduler) run(ctx context.Context) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		s.n.log.Error("scheduled backups: cannot create --backup-dir; none will be taken", "dir", s.dir, "err", err)
		return
	}
	check := min(max(s.every/10, 100*time.Millisecond), 10*time.Second)
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.n.metaGroup.IsLeader() {
			continue
		}
		newest, _, _ := s.newest()
		if !newest.IsZero() && time.Since(newest) < s.every {
			continue
		}
		if failed := s.lastRun(); failed.Err != "" && time.Since(failed.Started) < min(s.every, time.Minute) {
			continue // a failed backup is retried after a minute (or --backup-every, if shorter)
		}
		s.take(ctx)
	}
}

func (s *backupScheduler) lastRun() BackupRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// take writes one backup and prunes the old ones.
func (s *backupScheduler) take(ctx context.Context) {
	run := BackupRun{Started: time.Now().UTC()}
	run.File = filepath.Join(s.dir, backupPrefix+run.Started.Format(backupStamp)+backupSuffix)
	m, err := s.write(ctx, run.File)
	run.Took = time.Since(run.Started)
	if err != nil {
		run.Err = err.Error()
		s.runs.WithLabelValues("failed").Inc()
		s.n.log.Error("scheduled backup failed", "file", run.File, "err", err)
	} else {
		if st, err := os.Stat(run.File); err == nil {
			run.Bytes = st.Size()
		}
		run.Keys = m.Keys
		s.runs.WithLabelValues("ok").Inc()
		s.n.log.Info("scheduled backup taken", "file", run.File, "keys", m.Keys, "bytes", run.Bytes, "took", run.Took.Round(time.Millisecond))
		s.prune()
	}
	s.mu.Lock()
	s.last = run
	s.mu.Unlock()
}

func (s *backupScheduler) write(ctx context.Context, file string) (backup.Manifest, error) {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return backup.Manifest{}, err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	err = newBackupSource(s.n).WriteBackup(ctx, w, false)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	var m backup.Manifest
	if err == nil {
		m, err = verifyFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err == nil {
		err = SyncDir(s.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return m, err
}

func verifyFile(path string) (backup.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return backup.Manifest{}, err
	}
	defer f.Close()
	m, err := backup.Verify(f)
	if err != nil {
		return m, fmt.Errorf("the backup written does not read back: %w", err)
	}
	return m, nil
}

// backups lists the completed scheduled backups in the directory, oldest first.
func (s *backupScheduler) backups() []string {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, backupPrefix) && strings.HasSuffix(name, backupSuffix) && !e.IsDir() {
			out = append(out, name)
		}
	}
	slices.Sort(out) // the UTC stamp sorts by time
	return out
}

// newest is the newest completed backup in the directory: when it was started (from
// its name), its path and size; a zero time when there is none.
func (s *backupScheduler) newest() (time.Time, string, int64) {
	list := s.backups()
	if len(list) == 0 {
		return time.Time{}, "", 0
	}
	name := list[len(list)-1]
	at, err := time.Parse(backupStamp, strings.TrimSuffix(strings.TrimPrefix(name, backupPrefix), backupSuffix))
	if err != nil {
		return time.Time{}, "", 0
	}
	var size int64
	if st, err := os.Stat(filepath.Join(s.dir, name)); err == nil {
		size = st.Size()
	}
	return at, filepath.Join(s.dir, name), size
}

// prune removes all but the newest keep backups.
func (s *backupScheduler) prune() {
	// A *.tmp a crash left: unfinished for longer than a backup is taken apart, so it
	// is no backup in progress (another meta leader may share the directory).
	if entries, err := os.ReadDir(s.dir); err == nil {
		for _, e := range entries {
			name := e.Name()
			info, err := e.Info()
			if err != nil || !strings.HasPrefix(name, backupPrefix) || !strings.HasSuffix(name, backupSuffix+".tmp") ||
				time.Since(info.ModTime()) < max(s.every, time.Hour) {
				continue
			}
			if err := os.Remove(filepath.Join(s.dir, name)); err == nil {
				s.n.log.Info("removed a backup a crash left unfinished", "file", name)
			}
		}
	}
	list := s.backups()
	for len(list) > s.keep {
		if err := os.Remove(filepath.Join(s.dir, list[0])); err != nil {
			s.n.log.Warn("removing an old backup", "file", list[0], "err", err)
		}
		list = list[1:]
	}
}

// Status is what the dashboard shows: this node's last attempt, or when it made none,
// the newest backup in the directory (taken by another meta leader sharing it).
func (s *backupScheduler) Status() BackupRun {
	if run := s.lastRun(); !run.Started.IsZero() {
		return run
	}
	at, file, size := s.newest()
	return BackupRun{Started: at, File: file, Bytes: size}
}

// backupCollector reports the newest backup in the directory at scrape time.
type backupCollector struct{ s *backupScheduler }

var (
	backupAgeDesc = prometheus.NewDesc("ringkv_backup_age_seconds",
		"Seconds since the newest scheduled backup in --backup-dir was started (absent while there is none).", nil, nil)
	backupSizeDesc = prometheus.NewDesc("ringkv_backup_last_size_bytes",
		"Size of the newest scheduled backup in --backup-dir.", nil, nil)
	backupDurationDesc = prometheus.NewDesc("ringkv_backup_last_duration_seconds",
		"How long this node's last successful scheduled backup took.", nil, nil)
)

func (c backupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backupAgeDesc
	ch <- backupSizeDesc
	ch <- backupDurationDesc
}

func (c backupCollector) Collect(ch chan<- prometheus.Metric) {
	at, _, size := c.s.newest()
	if at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(backupAgeDesc, prometheus.GaugeValue, time.Since(at).Seconds())
	ch <- prometheus.MustNewConstMetric(backupSizeDesc, prometheus.GaugeValue, float64(size))
	if run := c.s.lastRun(); run.Err == "" && !run.Started.IsZero() {
		ch <- prometheus.MustNewConstMetric(backupDurationDesc, prometheus.GaugeValue, run.Took.Seconds())
	}
}
