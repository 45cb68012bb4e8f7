package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ringkv/ringkv/openapi"
)

// ringkv token create|list|revoke: the cluster's API tokens (admin role). create prints
// the new token alone on stdout (the only time it is shown), so that
// `RINGKV_TOKEN=$(ringkv token create --role read)` works; what it is goes to stderr.

const tokenUsage = `Usage:
  ringkv token create --role read|readwrite|admin [--prefix P]... [--name N]
                      print a new token on stdout (its id and role on stderr; -o json: all)
  ringkv token list   every token: id, role, prefixes, name, created (never secrets)
  ringkv token revoke ID  every node refuses the token from then on
Each takes the client flags (--addr, --token or RINGKV_TOKEN: an admin token, -o, --timeout).
`

func cmdToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return exitCode(2)
	}
	switch args[0] {
	case "create":
		return cmdTokenCreate(ctx, args[1:], getenv, stdout, stderr)
	case "list":
		return cmdTokenList(ctx, args[1:], getenv, stdout, stderr)
	case "revoke":
		return cmdTokenRevoke(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, tokenUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "ringkv token: unknown command %q\n\n%s", args[0], tokenUsage)
		return exitCode(2)
	}
}

// repeatedFlag collects every value of a flag given more than once, as given (a key
// prefix may hold a comma).
type repeatedFlag []string

func (r *repeatedFlag) String() string     { return strings.Join(*r, " ") }
func (r *repeatedFlag) Set(v string) error { *r = append(*r, v); return nil }

func cmdTokenCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("token create", "", stdout, stderr)
	role := c.fs.String("role", "", "read, readwrite or admin")
	var prefixes repeatedFlag
	c.fs.Var(&prefixes, "prefix", "limit the token to keys starting with this (repeat for more; read and readwrite only)")
	name := c.fs.String("name", "", "what the token is for (shown by ringkv token list)")
	if _, err := c.parse(args, getenv, 0, 0); err != nil {
		return err
	}
	if *role == "" {
		return c.usageError("--role is required")
	}
	api, err := c.api()
	if err != nil {
		return err
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	req := openapi.TokenRequest{Role: openapi.Role(*role)}
	if len(prefixes) > 0 {
		req.Prefixes = (*[]string)(&prefixes)
	}
	if *name != "" {
		req.Name = name
	}
	resp, err := api.CreateTokenWithResponse(ctx, req)
	if err != nil {
		return c.unreachable(err)
	}
	tok := resp.JSON201
	if tok == nil {
		return c.failed(resp.StatusCode(), resp.Body)
	}
	if c.output == "json" {
		return c.printJSON(tok)
	}
	fmt.Fprintln(stdout, tok.Token)
	fmt.Fprintf(stderr, "token %s: role %s%s; shown only this once\n", tok.Id, tok.Role, prefixNote(tok.Prefixes))
	return nil
}

func prefixNote(p *[]string) string {
	if p == nil || len(*p) == 0 {
		return ", every key"
	}
	return fmt.Sprintf(", keys starting with %q", *p)
}

func cmdTokenList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("token list", "", stdout, stderr)
	list, err := adminRead(ctx, c, args, getenv, func(ctx context.Context, api *openapi.ClientWithResponses) (*struct {
		Tokens []openapi.TokenInfo `json:"tokens"`
	}, int, []byte, error) {
		r, err := api.ListTokensWithResponse(ctx)
		if err != nil {
			return nil, 0, nil, err
		}
		return r.JSON200, r.StatusCode(), r.Body, nil
	})
	if list == nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tPREFIXES\tCREATED\tNAME")
	for _, t := range list.Tokens {
		prefixes := "*"
		if t.Prefixes != nil && len(*t.Prefixes) > 0 {
			prefixes = strings.Join(*t.Prefixes, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Id, t.Role, prefixes, t.Created.Format("2006-01-02 15:04:05Z07:00"), orDash(t.Name))
	}
	return tw.Flush()
}

func cmdTokenRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("token revoke", "ID", stdout, stderr)
	args, err := c.parse(args, getenv, 1, 1)
	if err != nil {
		return err
	}
	api, err := c.api()
	if err != nil {
		return err
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	resp, err := api.RevokeTokenWithResponse(ctx, args[0])
	if err != nil {
		return c.unreachable(err)
	}
	if resp.StatusCode() != 204 {
		return c.failed(resp.StatusCode(), resp.Body)
	}
	if c.output == "json" {
		return c.printJSON(map[string]any{"id": args[0], "revoked": true})
	}
	fmt.Fprintf(stdout, "token %s revoked\n", args[0])
	return nil
}
