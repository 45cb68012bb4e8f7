// Package app assembles one ringkv node from its parts; main and the in-process test
// harness both use it.
package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
	"github.com/ringkv/ringkv/tlsconfig"
)

// Config is everything a node is started with.
type Config struct {
	ID            string
	DataDir       string
	HTTPAddr      string   // listen address of the HTTP API
	RaftAddr      string   // listen address of the cluster port
	AdvertiseHTTP string   // what other nodes and clients are told (default: HTTPAddr as bound)
	AdvertiseRaft string   // likewise for the cluster port
	Join          []string // HTTP addresses of members to join through; empty creates a cluster

	Partitions    int   // P, fixed when the cluster is created
	Groups        int   // G data groups
	Replicas      int   // R replicas per group
	MaxValueBytes int64 // largest value accepted
	// MaxConnections bounds the client connections held open (--max-connections;
	// httpapi.LimitConnections). 0 takes httpapi.DefaultMaxConnections.
	MaxConnections int
	// MaxInFlight bounds the client requests to /kv served at once
	// (--max-requests-in-flight); 0 takes httpapi.DefaultMaxInFlight.
	MaxInFlight int

	SnapshotThreshold uint64
	TrailingLogs      uint64
	// WatchHistory is how much change history each data group keeps for watches to
	// resume from (--watch-history: a count of changes or a duration;
	// raftgroup.DefaultHistoryRetention).
	WatchHistory raftgroup.HistoryRetention

	// DiskReserveBytes is the free space kept on the data dir's filesystem: writes are
	// refused with 507 below it (--disk-reserve-bytes; 0 never refuses). DiskPoll is
	// how often the free space is measured (100 ms).
	DiskReserveBytes uint64
	DiskPoll         time.Duration
	// GC tunes the value-log GC (--value-log-gc-interval is GC.Interval).
	GC raftgroup.GCTuning

	// Timing knobs the tests shorten; zero values take production defaults.
	Tuning          raftgroup.Tuning
	ServiceInterval time.Duration
	DownAfter       time.Duration
	// DeadAfter is the grace period after which a down node's replicas are re-created
	// on other nodes (--dead-after, 5 minutes).
	DeadAfter time.Duration
	// BackupDir, BackupEvery and BackupKeep schedule backups (--backup-dir,
	// --backup-every, --backup-keep): the meta leader takes one every BackupEvery into
	// BackupDir and keeps the newest BackupKeep. No BackupDir: none.
	BackupDir   string
	BackupEvery time.Duration
	BackupKeep  int
	// JoinTimeout: a joined node that has not answered a probe this long is shown
	// down, given up on (--join-timeout, 60 s); it gets no replicas until it answers.
	JoinTimeout time.Duration
	// AllowedHosts are names, besides the node's own (see Node.allowedHosts), that a
	// request's Host header may carry: a proxy's or load balancer's (--allowed-hosts).
	// "*" allows any. Other names are answered 421 (DNS rebinding; httpapi/guard.go).
	AllowedHosts []string
	// HTTPTLS turns on secure mode: the HTTP port's node certificate, key and the
	// cluster's CA (--certs-dir's node.crt, node.key and ca.crt, or --tls-cert,
	// --tls-key, --tls-ca). Zero: plain HTTP and a plain cluster port. PeerTLS are the
	// cluster port's (--peer-tls-*); zero takes HTTPTLS. Reloaded when the files change
	// or on SIGHUP (ReloadTLS).
	HTTPTLS, PeerTLS tlsconfig.Files
	// Auth asks every client for a token or a client certificate (on with --certs-dir;
	// --auth alone turns it on without TLS, where tokens travel in clear: for loopback,
	// or behind a TLS-terminating proxy). Rules: httpapi/authrules.go. Tokens are kept
	// (and the bootstrap admin token made) whether or not it is on.
	Auth bool
	// JoinToken is the cluster's join secret (--join-token): without TLS, a node must
	// show it to join and on every internal request, and internal endpoints are served
	// only to requests that carry it. With TLS, node certificates do this instead.
	JoinToken string
	// Insecure allows listening beyond loopback without TLS and authentication
	// (--insecure); a warning is logged at every start.
	Insecure bool
	// Pprof serves Go's profiler at /debug/pprof/ (--pprof): for measuring, not for
	// an exposed listener.
	Pprof bool
	// testPeer, set by tests, stands in for peer authentication (Node.peer).
	testPeer func(*http.Request) bool

	Log *slog.Logger
	// Registry receives the node's metrics and is served at /metrics; nil makes a
	// fresh one (see NewRegistry).
	Registry *prometheus.Registry
}

// Defaults of a node started with no flags: a single-node cluster on loopback.
const (
	DefaultID            = "node1"
	DefaultDataDir       = "ringkv-data"
	DefaultHTTPAddr      = "127.0.0.1:8080"
	DefaultRaftAddr      = "127.0.0.1:7080"
	DefaultPartitions    = 64
	DefaultGroups        = 8
	DefaultReplicas      = 3
	DefaultMaxValueBytes = 1 << 20
	// DefaultMaxConnections is --max-connections' default.
	DefaultMaxConnections = httpapi.DefaultMaxConnections
	// DefaultMaxInFlight is --max-requests-in-flight's default.
	DefaultMaxInFlight = httpapi.DefaultMaxInFlight
	// maxValueLimit keeps one command well inside one Badger transaction.
	maxValueLimit = 4 << 20
)

// Default returns the configuration of `ringkv serve` with no flags.
func Default() Config {
	return Config{
		ID: DefaultID, DataDir: DefaultDataDir, HTTPAddr: DefaultHTTPAddr, RaftAddr: DefaultRaftAddr,
		Partitions: DefaultPartitions, Groups: DefaultGroups, Replicas: DefaultReplicas,
		MaxValueBytes: DefaultMaxValueBytes, DiskReserveBytes: raftgroup.DefaultDiskReserve,
		WatchHistory: raftgroup.DefaultHistoryRetention,
	}
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if placement.CheckNodeID(c.ID) != nil {
		errs = append(errs, errors.New("--id must be 1 to 128 bytes of UTF-8 without spaces, control characters or slashes"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must be set"))
	}
	for _, a := range []struct{ flag, v string }{{"--http-addr", c.HTTPAddr}, {"--raft-addr", c.RaftAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", a.flag, a.v))
		}
	}
	for _, a := range []struct{ flag, v string }{{"--advertise-http", c.AdvertiseHTTP}, {"--advertise-raft", c.AdvertiseRaft}} {
		if a.v == "" {
			continue
		}
		if host, _, err := net.SplitHostPort(a.v); err != nil || host == "" {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", a.flag, a.v))
		}
	}
	if c.Partitions < 1 || c.Partitions > placement.MaxPartitions {
		errs = append(errs, fmt.Errorf("--partitions must be from 1 to %d", placement.MaxPartitions))
	}
	if c.Groups < 1 || c.Groups > c.Partitions {
		errs = append(errs, errors.New("--groups must be from 1 to the number of partitions"))
	}
	if c.Replicas < 1 || c.Replicas > 7 {
		errs = append(errs, errors.New("--replicas must be from 1 to 7"))
	}
	if c.Tuning.MaxInFlight < 0 || c.Tuning.MaxInFlight > 64 {
		errs = append(errs, errors.New("--proposals-in-flight must be from 1 to 64 (0 takes the default, 1)"))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, errors.New("--max-connections must be positive (0 takes the default)"))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, errors.New("--max-requests-in-flight must be positive (0 takes the default)"))
	}
	if c.WatchHistory.Entries < 0 || c.WatchHistory.Age < 0 {
		errs = append(errs, errors.New("--watch-history must be 0 or more changes, or a positive duration"))
	}
	if c.MaxValueBytes < 1 || c.MaxValueBytes > maxValueLimit {
		errs = append(errs, fmt.Errorf("--max-value-bytes must be from 1 to %d", maxValueLimit))
	}
	if c.BackupDir != "" && (c.BackupEvery < time.Second || c.BackupKeep < 1) {
		errs = append(errs, errors.New("with --backup-dir, --backup-every must be at least 1s and --backup-keep at least 1"))
	}
	errs = append(errs, c.validateSecurity()...)
	return errors.Join(errs...)
}

// advertised returns the address to tell others for a listener bound at bound: the
// explicit one when set, else the bound address, or, when that is a wildcard
// (0.0.0.0, ::), this machine's host name with the bound port (what a container's
// peers can resolve).
func advertised(explicit string, bound net.Addr, flag string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	host, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		name, err := os.Hostname()
		if err != nil || name == "" {
			return "", fmt.Errorf("listening on %s: set %s to an address other nodes can reach", bound, flag)
		}
		return net.JoinHostPort(name, port), nil
	}
	return bound.String(), nil
}

// NormalizeJoin turns "--join" values (host:port or http://host:port) into host:port.
func NormalizeJoin(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			p = strings.TrimPrefix(strings.TrimPrefix(p, "http://"), "https://")
			p = strings.TrimSuffix(p, "/")
			if p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
