package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// The client commands (put, get, del, ls, nodes, groups, partitions) talk to a node
// through the client generated from openapi.yaml. Exit codes: 0 ok, 1 not found or
// condition failed, 2 usage or server error (the problem's detail on stderr).

// clientCmd is what every client command shares: where the node is, how to print.
type clientCmd struct {
	name    string
	fs      *flag.FlagSet
	addr    string
	output  string
	timeout time.Duration
	conn    connFlags
	stdout  io.Writer
	stderr  io.Writer
}

func newClientCmd(name, argsUsage string, stdout, stderr io.Writer) *clientCmd {
	c := &clientCmd{name: name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet("ringkv "+name, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	c.fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "any node's HTTP address (host:port or URL)")
	c.fs.StringVar(&c.output, "o", "text", "output: text or json")
	c.fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for the answer")
	c.conn.register(c.fs)
	c.fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ringkv %s [flags] %s\n\nFlags (also RINGKV_<NAME> env vars):\n", name, argsUsage)
		c.fs.PrintDefaults()
	}
	return c
}

// parse reads flags (interspersed with arguments, as users type them: `ringkv get k
// -o json`) and env vars, and checks the number of arguments.
func (c *clientCmd) parse(args []string, getenv func(string) string, minArgs, maxArgs int) ([]string, error) {
	var positional []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitCode(0)
			}
			return nil, exitCode(2)
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		// Parse stops at the first argument that is not a flag ("-" for stdin is one).
		positional = append(positional, args[0])
		args = args[1:]
	}
	if err := applyEnv(c.fs, getenv); err != nil {
		return nil, err
	}
	if c.output != "text" && c.output != "json" {
		return nil, c.usageError("-o must be text or json")
	}
	if len(positional) < minArgs || len(positional) > maxArgs {
		return nil, c.usageError("wrong number of arguments")
	}
	return positional, nil
}

func (c *clientCmd) usageError(msg string) error {
	fmt.Fprintf(c.stderr, "ringkv %s: %s\n", c.name, msg)
	c.fs.Usage()
	return exitCode(2)
}

// api is the generated client for --addr ("host:port" or a URL).
func (c *clientCmd) api() (*openapi.ClientWithResponses, error) {
	hc, err := c.httpClient(c.timeout)
	if err != nil {
		return nil, err
	}
	return openapi.NewClientWithResponses(c.conn.base(c.addr), openapi.WithHTTPClient(hc), openapi.WithBearerToken(c.conn.token))
}

// httpClient is a client with the TLS flags' settings; timeout 0 means none.
func (c *clientCmd) httpClient(timeout time.Duration) (*http.Client, error) {
	if err := c.conn.checkAddr(c.addr); err != nil {
		return nil, c.usageError(err.Error())
	}
	t, err := c.conn.transport()
	if err != nil {
		return nil, c.usageError(err.Error())
	}
	return &http.Client{Transport: t, Timeout: timeout}, nil
}

func (c *clientCmd) context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// printJSON writes v indented, for -o json.
func (c *clientCmd) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// failed reports an answer that is not a success: the problem's title and detail on
// stderr, exit 1 for "not found" and "condition failed", 2 for anything else.
func (c *clientCmd) failed(status int, body []byte) error {
	var p openapi.Problem
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &p) == nil && p.Title != "" {
		msg = p.Title
		if p.Detail != nil && *p.Detail != "" {
			msg += ": " + *p.Detail
		}
		if p.Outcome != nil && *p.Outcome == "unknown" {
			msg += " (the write may or may not have been applied)"
		}
	}
	if status == http.StatusBadRequest && strings.Contains(msg, "HTTP request to an HTTPS server") {
		msg += " (the node is secure: give --certs-dir, --cacert or --token, or an https:// address)"
	}
	fmt.Fprintf(c.stderr, "ringkv %s: %d %s\n", c.name, status, msg)
	if status == http.StatusNotFound || status == http.StatusPreconditionFailed {
		return exitCode(1)
	}
	return exitCode(2)
}

// unreachable reports a request that got no answer.
func (c *clientCmd) unreachable(err error) error {
	fmt.Fprintf(c.stderr, "ringkv %s: %s: %v\n", c.name, c.addr, err)
	return exitCode(2)
}
