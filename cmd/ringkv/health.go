package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// health exits 0 when the node at --addr answers /readyz with 200: the container
// image's HEALTHCHECK, since a scratch image has no shell or curl.
func health(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringkv health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "node HTTP address (default: the address RINGKV_HTTP_ADDR names, loopback when it is a wildcard; port 8080)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	var conn connFlags // RINGKV_CERTS_DIR, as serve has it in the container, turns on https
	conn.register(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return exitCode(2)
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if *addr == "" {
		*addr = localNodeAddr(getenv("RINGKV_HTTP_ADDR"))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	t, err := conn.transport()
	if err != nil {
		fmt.Fprintln(stderr, "ringkv health:", err)
		return exitCode(2)
	}
	if err := readyz(ctx, &http.Client{Transport: t}, conn.base(*addr)); err != nil {
		fmt.Fprintln(stderr, "not ready:", err)
		return exitCode(1)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// localNodeAddr is where the node configured by RINGKV_HTTP_ADDR (as in the container
// image, where health runs beside serve with the same environment) answers on this
// host: its address when it listens on one, loopback when it listens on all of them.
func localNodeAddr(httpAddr string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" {
		port = "8080"
	}
	if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// readyz returns nil when the node at base (a URL) answers /readyz with 200: the
// container's health check and ringkv dev's wait for its nodes.
func readyz(ctx context.Context, client *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
