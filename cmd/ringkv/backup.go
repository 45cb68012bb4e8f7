package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringkv/ringkv/cmd/ringkv/app"
	"github.com/ringkv/ringkv/openapi"
)

// cmdBackup: ringkv backup FILE — a backup of the whole cluster (GET /admin/backup)
// into FILE; ringkv backup --verify FILE checks one and prints its manifest.
//
// The backup is streamed into FILE.tmp, checked as it arrives (every section's and
// the file's checksum, the trailer), synced, and only then renamed to FILE: a backup
// that fails for any reason (a node dies, the stream is cut, a checksum is wrong)
// leaves nothing under FILE, and removes FILE.tmp.
func cmdBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("backup", "FILE", stdout, stderr)
	verify := c.fs.Bool("verify", false, "check FILE (checksums, format) without restoring it, and print its manifest")
	consistent := c.fs.Bool("consistent", false, "one cluster-wide cut (new writes wait while it is taken: milliseconds) rather than one per group")
	// --timeout bounds a stall (no byte received), not the whole backup.
	c.timeout = 30 * time.Second
	tf := c.fs.Lookup("timeout")
	tf.DefValue, tf.Usage = c.timeout.String(), "how long the stream may stall (no byte received) before the backup fails"
	pos, err := c.parse(args, getenv, 1, 1)
	if err != nil {
		return err
	}
	file := pos[0]
	if *verify {
		return verifyBackup(c, file)
	}
	start := time.Now()
	m, err := takeBackup(ctx, c, file, *consistent)
	if err != nil {
		fmt.Fprintf(stderr, "ringkv backup: %v (nothing written to %s)\n", err, file)
		return exitCode(2)
	}
	if c.output == "json" {
		return c.printJSON(m)
	}
	st, _ := os.Stat(file)
	kind := "each group's own cut"
	if m.Consistent {
		kind = "one consistent cut"
	}
	fmt.Fprintf(stdout, "backup %s: %d keys in %d groups (%s), %d bytes, %s, sha256 %s\n",
		file, m.Keys, len(m.Groups), kind, st.Size(), time.Since(start).Round(time.Millisecond), m.SHA256)
	return nil
}

func takeBackup(ctx context.Context, c *clientCmd, file string, consistent bool) (app.BackupManifest, error) {
	// No overall timeout: a backup is as long as the data. A stall is cut below.
	hc, err := c.httpClient(0)
	if err != nil {
		return app.BackupManifest{}, err
	}
	api, err := openapi.NewClient(c.conn.base(c.addr), openapi.WithHTTPClient(hc), openapi.WithBearerToken(c.conn.token))
	if err != nil {
		return app.BackupManifest{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(c.timeout, func() { cancel(fmt.Errorf("no answer for %s", c.timeout)) })
	defer stall.Stop()
	resp, err := api.GetBackup(ctx, &openapi.GetBackupParams{Consistent: &consistent})
	if err != nil {
		return app.BackupManifest{}, fmt.Errorf("%s: %w", c.addr, causeOf(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return app.BackupManifest{}, fmt.Errorf("%s answered %s: %s", c.addr, resp.Status, problemText(body))
	}
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return app.BackupManifest{}, err
	}
	body := &stallReader{r: resp.Body, timer: stall, idle: c.timeout}
	m, err := app.VerifyBackup(io.TeeReader(body, f))
	if err != nil {
		err = fmt.Errorf("receiving the backup: %w", err)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err == nil {
		err = app.SyncDir(filepath.Dir(file))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return app.BackupManifest{}, causeOf(ctx, err)
	}
	return m, nil
}

// stallReader pushes the stall timer back whenever bytes arrive.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (s *stallReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if n > 0 {
		s.timer.Reset(s.idle)
	}
	return n, err
}

func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return fmt.Errorf("%w (%v)", err, c)
	}
	return err
}

func verifyBackup(c *clientCmd, file string) error {
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(c.stderr, "ringkv backup: %v\n", err)
		return exitCode(2)
	}
	defer f.Close()
	m, err := app.VerifyBackup(f)
	if err != nil {
		fmt.Fprintf(c.stderr, "ringkv backup: %s is not a sound backup: %v\n", file, err)
		return exitCode(2)
	}
	if c.output == "json" {
		return c.printJSON(m)
	}
	printManifest(c.stdout, file, m)
	return nil
}

func printManifest(w io.Writer, file string, m app.BackupManifest) {
	fmt.Fprintf(w, "%s: ringkv backup, format version %d, sound\n", file, m.FormatVersion)
	if m.Consistent {
		fmt.Fprintln(w, "one consistent cut of the whole cluster (--consistent)")
	} else {
		fmt.Fprintln(w, "each group cut at its own applied index")
	}
	fmt.Fprintf(w, "cluster %s, taken %s by node %s, %d partitions, %d keys\nsha256 %s\n",
		m.ClusterID, m.Created.Format(time.RFC3339), m.Node, m.Partitions, m.Keys, m.SHA256)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tAPPLIED_INDEX\tKEYS\tBYTES\tSHA256")
	for _, g := range m.Groups {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\n", g.ID, g.AppliedIndex, g.Keys, g.Bytes, g.SHA256)
	}
	_ = tw.Flush()
}

// cmdRestore: ringkv restore FILE --data-dir DIR — a data dir from which `ringkv serve
// --data-dir DIR` starts a new cluster holding exactly the backup's keys.
func cmdRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("restore", "FILE --data-dir DIR", stdout, stderr)
	dir := c.fs.String("data-dir", "", "the new node's data dir: must not exist or be empty")
	pos, err := c.parse(args, getenv, 1, 1)
	if err != nil {
		return err
	}
	if *dir == "" {
		return c.usageError("--data-dir is required")
	}
	plan, err := app.Restore(pos[0], *dir)
	if err != nil {
		fmt.Fprintf(stderr, "ringkv restore: %v (nothing restored; %s unchanged)\n", err, *dir)
		return exitCode(2)
	}
	if c.output == "json" {
		return c.printJSON(plan)
	}
	fmt.Fprintf(stdout, "restored %d keys of cluster %s (backup of %s) into %s: %d partitions, %d groups\n",
		plan.From.Keys, plan.From.ClusterID, plan.From.Created.Format(time.RFC3339), *dir, plan.Partitions, len(plan.Groups))
	fmt.Fprintf(stdout, "start the new cluster with: ringkv serve --data-dir %s (without --join; other nodes join it)\n", *dir)
	return nil
}

// problemText is a problem answer's title and detail (or the body as it is).
func problemText(body []byte) string {
	var p openapi.Problem
	if json.Unmarshal(body, &p) == nil && p.Title != "" {
		if p.Detail != nil && *p.Detail != "" {
			return p.Title + ": " + *p.Detail
		}
		return p.Title
	}
	return strings.TrimSpace(string(body))
}
