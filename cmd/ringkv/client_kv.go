package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/ringkv/ringkv/openapi"
)

// maxStdinValue bounds what `ringkv put KEY -` reads: a little over the server's
// default limit, so the server (which knows its configured limit) says 413.
const maxStdinValue = 64 << 20

// cmdPut: ringkv put KEY [VALUE|-]. No VALUE or "-" reads the value from stdin.
func cmdPut(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newClientCmd("put", "KEY [VALUE|-]", stdout, stderr)
	ifMatch := c.fs.String("if-match", "", "compare-and-swap: write only if the key's ETag is this")
	createOnly := c.fs.Bool("create-only", false, "write only if the key does not exist (If-None-Match: *)")
	prev := c.fs.Bool("prev", false, "print the previous value too")
	args, err := c.parse(args, getenv, 1, 2)
	if err != nil {
		return err
	}
	var value []byte
	if len(args) == 2 && args[1] != "-" {
		value = []byte(args[1])
	} else if value, err = io.ReadAll(io.LimitReader(stdin, maxStdinValue)); err != nil {
		return fmt.Errorf("reading the value from stdin: %w", err)
	}
	params := &openapi.PutKeyParams{Prev: prev}
	if *ifMatch != "" {
		params.IfMatch = ifMatch
	}
	if *createOnly {
		star := openapi.PutKeyParamsIfNoneMatch("*")
		params.IfNoneMatch = &star
	}
	api, err := c.api()
	if err != nil {
		return err
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	resp, err := api.PutKeyWithBodyWithResponse(ctx, args[0], params, "application/octet-stream", bytes.NewReader(value))
	if err != nil {
		return c.unreachable(err)
	}
	res := resp.JSON200
	if resp.JSON201 != nil {
		res = resp.JSON201
	}
	if res == nil {
		return c.failed(resp.StatusCode(), resp.Body)
	}
	if c.output == "json" {
		return c.printJSON(res)
	}
	what := "replaced"
	if res.Created {
		what = "created"
	}
	fmt.Fprintf(stdout, "%s %s (version %d, index %d, etag %s)\n", what, showKey(res.RawKey()), res.Version, res.ModIndex, resp.HTTPResponse.Header.Get("ETag"))
	if res.Prev != nil {
		fmt.Fprintf(stdout, "previous (version %d): %s\n", res.Prev.Version, showValue(res.Prev.Value, res.Prev.ValueBase64))
	}
	return nil
}

// cmdGet: ringkv get KEY. Text output is the value itself, for shell pipelines.
func cmdGet(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("get", "KEY", stdout, stderr)
	stale := c.fs.Bool("stale", false, "read from the local replica (?consistency=stale)")
	etag := c.fs.Bool("etag", false, "print the value's ETag instead of the value (for put/del --if-match)")
	args, err := c.parse(args, getenv, 1, 1)
	if err != nil {
		return err
	}
	consistency := openapi.GetKeyParamsConsistency("linearizable")
	if *stale {
		consistency = "stale"
	}
	api, err := c.api()
	if err != nil {
		return err
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	resp, err := api.GetKeyWithResponse(ctx, args[0], &openapi.GetKeyParams{Consistency: &consistency})
	if err != nil {
		return c.unreachable(err)
	}
	kv := resp.JSON200
	if kv == nil {
		return c.failed(resp.StatusCode(), resp.Body)
	}
	switch {
	case *etag:
		fmt.Fprintln(stdout, resp.HTTPResponse.Header.Get("ETag"))
	case c.output == "json":
		return c.printJSON(kv)
	case kv.Value != nil:
		fmt.Fprintln(stdout, *kv.Value)
	case kv.ValueBase64 != nil:
		_, err = stdout.Write(*kv.ValueBase64) // binary: the bytes as they are
	}
	return err
}

// cmdDel: ringkv del KEY.
func cmdDel(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("del", "KEY", stdout, stderr)
	ifMatch := c.fs.String("if-match", "", "delete only if the key's ETag is this")
	prev := c.fs.Bool("prev", false, "print the deleted value")
	args, err := c.parse(args, getenv, 1, 1)
	if err != nil {
		return err
	}
	params := &openapi.DeleteKeyParams{Prev: prev}
	if *ifMatch != "" {
		params.IfMatch = ifMatch
	}
	api, err := c.api()
	if err != nil {
		return err
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	resp, err := api.DeleteKeyWithResponse(ctx, args[0], params)
	if err != nil {
		return c.unreachable(err)
	}
	res := resp.JSON200
	if res == nil {
		return c.failed(resp.StatusCode(), resp.Body)
	}
	if c.output == "json" {
		return c.printJSON(res)
	}
	fmt.Fprintf(stdout, "deleted %s (index %d)\n", showKey(res.RawKey()), res.ModIndex)
	if res.Prev != nil {
		fmt.Fprintf(stdout, "previous (version %d): %s\n", res.Prev.Version, showValue(res.Prev.Value, res.Prev.ValueBase64))
	}
	return nil
}

// cmdLs: ringkv ls [PREFIX]: every key under PREFIX in byte order, fetched page by page.
func cmdLs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("ls", "[PREFIX]", stdout, stderr)
	limit := c.fs.Int("limit", 0, "list at most this many keys (0: all)")
	keysOnly := c.fs.Bool("keys-only", false, "print keys alone")
	pageSize := c.fs.Int("page-size", 500, "keys fetched per request")
	args, err := c.parse(args, getenv, 0, 1)
	if err != nil {
		return err
	}
	if *limit < 0 || *pageSize < 1 {
		return c.usageError("--limit must be >= 0 and --page-size >= 1")
	}
	prefix := ""
	if len(args) == 1 {
		prefix = args[0]
	}
	api, err := c.api()
	if err != nil {
		return err
	}
	var items []openapi.KeyValue
	cursor := ""
	for *limit == 0 || len(items) < *limit {
		page := *pageSize
		if *limit > 0 {
			page = min(page, *limit-len(items))
		}
		params := &openapi.ListKeysParams{Prefix: &prefix, Limit: &page, KeysOnly: keysOnly}
		if cursor != "" {
			params.Cursor = &cursor
		}
		pctx, cancel := c.context(ctx)
		resp, err := api.ListKeysWithResponse(pctx, params)
		cancel()
		if err != nil {
			return c.unreachable(err)
		}
		if resp.JSON200 == nil {
			return c.failed(resp.StatusCode(), resp.Body)
		}
		items = append(items, resp.JSON200.Items...)
		if cursor = resp.JSON200.Next; cursor == "" {
			break
		}
	}
	if c.output == "json" {
		return c.printJSON(openapi.KeyList{Items: items})
	}
	if *keysOnly {
		for _, kv := range items {
			fmt.Fprintln(stdout, showKey(kv.RawKey()))
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVERSION\tMOD_INDEX\tGROUP\tVALUE")
	for _, kv := range items {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", showKey(kv.RawKey()), kv.Version, kv.ModIndex, kv.Group, showValue(kv.Value, kv.ValueBase64))
	}
	return tw.Flush()
}

// showKey renders a key on one line: as it is when it is printable UTF-8, else as a
// Go-quoted string ("a\xfe"), which names every byte and which a shell passes back
// with $'...' or printf.
func showKey(k string) string {
	if utf8.ValidString(k) && strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return k
	}
	return strconv.Quote(k)
}

// showValue renders a value on one line of a table: text as it is (shortened),
// binary as hex.
func showValue(text *string, binary *[]byte) string {
	const max = 60
	switch {
	case text != nil:
		s := *text
		if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			s = strconv.Quote(s) // control characters would garble the table
		}
		if utf8.RuneCountInString(s) > max {
			s = string([]rune(s)[:max]) + "…"
		}
		return s
	case binary != nil:
		b := *binary
		if len(b) > max/2 {
			return fmt.Sprintf("0x%x… (%d bytes)", b[:max/2], len(b))
		}
		return fmt.Sprintf("0x%x", b)
	}
	return ""
}
