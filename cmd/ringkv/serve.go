package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ringkv/ringkv/cmd/ringkv/app"
)

// serve runs one node until ctx ends (SIGINT/SIGTERM), then shuts it down cleanly.
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg := app.Default()
	var join, allowedHosts listFlag
	var logLevel string
	fs := flag.NewFlagSet("ringkv serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.ID, "id", cfg.ID, "this node's id, unique in the cluster")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for this node's data")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "listen address of the HTTP API")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "listen address of the cluster (Raft) port")
	fs.StringVar(&cfg.AdvertiseHTTP, "advertise-http", "", "HTTP address other nodes use to reach this one (default: --http-addr)")
	fs.StringVar(&cfg.AdvertiseRaft, "advertise-raft", "", "cluster address other nodes use to reach this one (default: --raft-addr)")
	fs.Var(&allowedHosts, "allowed-hosts", "host names, besides IP addresses, localhost, the --http-addr and --advertise-http hosts and the machine's hostname, that requests may be addressed to (a proxy's or load balancer's); comma list; * allows any. Others are answered 421 (DNS rebinding)")
	fs.Var(&join, "join", "HTTP address (host:port) of a cluster member to join; comma list allowed. Empty: create a new cluster")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "hash-ring partitions (fixed when the cluster is created)")
	fs.IntVar(&cfg.Groups, "groups", cfg.Groups, "data Raft groups (when the cluster is created)")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "replicas per group")
	fs.Int64Var(&cfg.MaxValueBytes, "max-value-bytes", cfg.MaxValueBytes, "largest value accepted, in bytes")
	fs.Var(historyFlag{&cfg.WatchHistory}, "watch-history", "change history each group keeps for watches to resume from: a count of changes (0: none) or a duration such as 1h")
	fs.IntVar(&cfg.MaxInFlight, "max-requests-in-flight", app.DefaultMaxInFlight, "client requests to /kv served at once; more are answered 503 with Retry-After")
	fs.IntVar(&cfg.MaxConnections, "max-connections", app.DefaultMaxConnections, "client connections held open at most; idle keep-alive ones are closed past 7/8 of it")
	fs.Var(uint64Flag{&cfg.SnapshotThreshold}, "snapshot-threshold", "log entries between snapshots (default 10000)")
	fs.Var(uint64Flag{&cfg.TrailingLogs}, "trailing-logs", "log entries kept after a snapshot (default 10240)")
	fs.DurationVar(&cfg.DeadAfter, "dead-after", 5*time.Minute, "how long a node may be down before its replicas are re-created elsewhere")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", 60*time.Second, "how long a joined node may go without answering a probe before it is shown down (it gets no replicas until it answers)")
	fs.DurationVar(&cfg.Tuning.SnapshotInterval, "snapshot-interval", 10*time.Second, "how often each group checks whether it passed --snapshot-threshold")
	fs.Var(logStoreFlag{&cfg.Tuning.LogStore}, "log-store", "Raft log store of replicas created on this node: wal (hashicorp/raft-wal, the default) or bolt (raft-boltdb); see docs/PERFORMANCE.md. A replica keeps the store it was created with")
	fs.IntVar(&cfg.Tuning.MaxInFlight, "proposals-in-flight", 1, "batched proposals a group leader keeps in flight (for measuring; see docs/PERFORMANCE.md)")
	fs.Var(uint64Flag{&cfg.DiskReserveBytes}, "disk-reserve-bytes", "free space kept on the data dir's filesystem: writes are refused with 507 below it, reads go on (0: never refuse)")
	fs.DurationVar(&cfg.GC.Interval, "value-log-gc-interval", time.Minute, "how often Badger's value log is garbage-collected (negative: never)")
	fs.StringVar(&cfg.BackupDir, "backup-dir", "", "directory for scheduled backups, taken by the meta leader (see docs/BACKUP.md); empty: none")
	fs.DurationVar(&cfg.BackupEvery, "backup-every", time.Hour, "with --backup-dir: how often a backup is taken")
	fs.IntVar(&cfg.BackupKeep, "backup-keep", 24, "with --backup-dir: how many backups are kept (the newest)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ (for measuring)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	var sec secureFlags
	sec.register(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	cfg.Join = join
	cfg.AllowedHosts = allowedHosts
	if err := sec.apply(fs, getenv, &cfg); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Registry = app.NewRegistry()
	node, err := app.New(cfg)
	if err != nil {
		return err
	}
	go reloadOnSIGHUP(ctx, node, cfg.Log)
	return node.Run(ctx)
}
