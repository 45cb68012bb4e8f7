package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// adminRead runs a client command that takes no argument and reads one admin answer:
// it returns the decoded answer, or nil and the error to exit with, the failure
// already reported. With -o json it prints the answer itself and returns nil, nil.
func adminRead[T any](ctx context.Context, c *clientCmd, args []string, getenv func(string) string,
	call func(context.Context, *openapi.ClientWithResponses) (*T, int, []byte, error)) (*T, error) {
	if _, err := c.parse(args, getenv, 0, 0); err != nil {
		return nil, err
	}
	api, err := c.api()
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	v, status, body, err := call(ctx, api)
	switch {
	case err != nil:
		return nil, c.unreachable(err)
	case v == nil:
		return nil, c.failed(status, body)
	case c.output == "json":
		return nil, c.printJSON(v)
	}
	return v, nil
}

// cmdNodes: ringkv nodes — the cluster's members.
func cmdNodes(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("nodes", "", stdout, stderr)
	nodes, err := adminRead(ctx, c, args, getenv, func(ctx context.Context, api *openapi.ClientWithResponses) (*struct {
		Nodes []openapi.Node `json:"nodes"`
	}, int, []byte, error) {
		r, err := api.ListNodesWithResponse(ctx)
		if err != nil {
			return nil, 0, nil, err
		}
		return r.JSON200, r.StatusCode(), r.Body, nil
	})
	if nodes == nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tHTTP\tRAFT\tREPLICAS\tLEADERS\tLAST_SEEN")
	for _, n := range nodes.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Id, n.State, n.HttpAddr, n.RaftAddr, optInt(n.Replicas), optInt(n.Leaders), ago(n.LastSeen))
	}
	return tw.Flush()
}

// cmdGroups: ringkv groups — every Raft group, its leader and replicas.
func cmdGroups(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("groups", "", stdout, stderr)
	groups, err := adminRead(ctx, c, args, getenv, func(ctx context.Context, api *openapi.ClientWithResponses) (*struct {
		Groups []openapi.Group `json:"groups"`
	}, int, []byte, error) {
		r, err := api.ListGroupsWithResponse(ctx)
		if err != nil {
			return nil, 0, nil, err
		}
		return r.JSON200, r.StatusCode(), r.Body, nil
	})
	if groups == nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tLEADER\tTERM\tCOMMIT\tAPPLIED\tPARTITIONS\tREPLICAS")
	for _, g := range groups.Groups {
		leader := g.Leader
		if leader == "" {
			leader = "(none)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%s\n", g.Id, leader, g.Term, g.CommitIndex, g.AppliedIndex, len(g.Partitions), replicaSummary(g.Replicas))
	}
	return tw.Flush()
}

// replicaSummary is "node1 node2(lag 3) node3(non-voter) node4(unhealthy)".
func replicaSummary(rs []openapi.Replica) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		var notes []string
		if !r.Voter {
			notes = append(notes, "non-voter")
		}
		if r.Lag != nil && *r.Lag > 0 {
			notes = append(notes, fmt.Sprintf("lag %d", *r.Lag))
		}
		if !r.Healthy {
			notes = append(notes, "unhealthy")
		}
		s := r.Node
		if len(notes) > 0 {
			s += "(" + strings.Join(notes, ", ") + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// cmdPartitions: ringkv partitions — the hash ring: partition -> group.
func cmdPartitions(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("partitions", "", stdout, stderr)
	parts, err := adminRead(ctx, c, args, getenv, func(ctx context.Context, api *openapi.ClientWithResponses) (*openapi.Partitions, int, []byte, error) {
		r, err := api.ListPartitionsWithResponse(ctx)
		if err != nil {
			return nil, 0, nil, err
		}
		return r.JSON200, r.StatusCode(), r.Body, nil
	})
	if parts == nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PARTITION\tGROUP\tEPOCH\tHASH_START\tHASH_END\t(table epoch %d)\n", parts.Epoch)
	for _, p := range parts.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t\n", p.Id, p.Group, p.Epoch, p.HashStart, p.HashEnd)
	}
	return tw.Flush()
}

func optInt(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

// ago renders a last-seen time as "1.2s ago".
func ago(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return time.Since(*t).Round(100*time.Millisecond).String() + " ago"
}

// cmdDecommission: ringkv decommission NODE — drain a node off the cluster.
func cmdDecommission(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newClientCmd("decommission", "NODE", stdout, stderr)
	dryRun := c.fs.Bool("dry-run", false, "print the plan and change nothing")
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
	resp, err := api.DecommissionNodeWithResponse(ctx, args[0], &openapi.DecommissionNodeParams{DryRun: dryRun})
	if err != nil {
		return c.unreachable(err)
	}
	plan := resp.JSON202
	if resp.JSON200 != nil {
		plan = resp.JSON200
	}
	if plan == nil {
		return c.failed(resp.StatusCode(), resp.Body)
	}
	if c.output == "json" {
		return c.printJSON(plan)
	}
	if plan.DryRun {
		fmt.Fprintf(stdout, "dry run: decommissioning %s would make %d replica moves:\n", plan.Node, len(plan.Moves))
	} else {
		fmt.Fprintf(stdout, "%s is draining (ringkv nodes shows it removed once done); %d replica moves planned:\n", plan.Node, len(plan.Moves))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tFROM\tTO")
	for _, m := range plan.Moves {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Group, orDash(m.From), orDash(m.To))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replicas per node afterwards: %v\n", plan.ReplicasAfter)
	return nil
}

func orDash(p *string) string {
	if p == nil || *p == "" {
		return "-"
	}
	return *p
}
