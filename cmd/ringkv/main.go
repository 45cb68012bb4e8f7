// Command ringkv is the ringkv node and its command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		os.Exit(int(ec))
	case err != nil:
		fmt.Fprintln(os.Stderr, "ringkv:", err)
		os.Exit(2)
	}
}

// exitCode ends the process with a status after the command has said why.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const usage = `ringkv: a distributed key-value store (multi-Raft, HTTP/JSON).

Usage:
  ringkv serve [flags]     run a node (no flags: single-node cluster on 127.0.0.1:8080)
  ringkv health [--addr]   exit 0 when the node is ready (/readyz), else 1
  ringkv dev [--nodes 3]   a local cluster of N serve processes on 127.0.0.1:8080.. (Ctrl-C stops it)
  ringkv bench [flags]     closed-loop load generator: throughput and latency percentiles
  ringkv restore FILE --data-dir DIR  prepare DIR (new or empty) from a backup: then
                           "ringkv serve --data-dir DIR" starts a new cluster holding its keys
  ringkv cert create-ca|create-node|create-client|create-cluster --certs-dir DIR
                           a cluster CA, node and client certificates (ringkv cert -h)
  Secure mode: serve --certs-dir DIR (TLS and auth; docs/SECURITY.md); dev --secure.

Client commands (against --addr, default 127.0.0.1:8080; -o json for machines; for a
secure node --certs-dir DIR or --cacert FILE [--cert F --key F], and --token or
RINGKV_TOKEN; with any of them an address without a scheme is https):
  ringkv put KEY [VALUE|-] create or replace (no VALUE or -: read stdin); --if-match, --create-only, --prev
  ringkv get KEY           print the value; --stale reads the local replica
  ringkv del KEY           delete; --if-match, --prev
  ringkv ls [PREFIX]       keys in byte order; --limit, --keys-only
  ringkv watch [PREFIX]    print each put and delete under PREFIX as applied, until Ctrl-C;
                           --since CURSOR, --prev; reconnects to the next of --addr a,b,c
  ringkv nodes             cluster members
  ringkv groups            Raft groups: leader, term, indexes, replicas
  ringkv partitions        the hash ring: partition -> group
  ringkv decommission NODE drain a node off the cluster; --dry-run prints the plan only
  ringkv backup FILE       a backup of the whole cluster into FILE (written only when complete and checked)
  ringkv backup --verify FILE  check a backup file without restoring it; print its manifest
  ringkv token create --role R [--prefix P]... [--name N]  print a new API token (admin)
  ringkv token list|revoke ID  the cluster's tokens (never their secrets); revoke one
  Exit status: 0 ok, 1 not found or condition failed, 2 usage or server error.
  ringkv help              this text

Run "ringkv serve -h" for the node's flags. Every flag can also be set as an
environment variable RINGKV_<NAME>, e.g. RINGKV_DATA_DIR for --data-dir.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr)
	case "health":
		return health(ctx, args[1:], getenv, stdout, stderr)
	case "dev":
		return dev(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], getenv, stdout, stderr)
	case "put":
		return cmdPut(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "get":
		return cmdGet(ctx, args[1:], getenv, stdout, stderr)
	case "del":
		return cmdDel(ctx, args[1:], getenv, stdout, stderr)
	case "ls":
		return cmdLs(ctx, args[1:], getenv, stdout, stderr)
	case "watch":
		return cmdWatch(ctx, args[1:], getenv, stdout, stderr)
	case "nodes":
		return cmdNodes(ctx, args[1:], getenv, stdout, stderr)
	case "groups":
		return cmdGroups(ctx, args[1:], getenv, stdout, stderr)
	case "partitions":
		return cmdPartitions(ctx, args[1:], getenv, stdout, stderr)
	case "decommission":
		return cmdDecommission(ctx, args[1:], getenv, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, args[1:], getenv, stdout, stderr)
	case "restore":
		return cmdRestore(ctx, args[1:], getenv, stdout, stderr)
	case "cert":
		return cmdCert(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return cmdToken(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "ringkv: unknown command %q\n\n%s", args[0], usage)
		return exitCode(2)
	}
}
