package main

import (
	"context"
	"fmt"

	"github.com/ringkv/ringkv/openapi"
	"github.com/ringkv/ringkv/placement"
)

// devSettled returns nil once the cluster api talks to has placed what a fresh dev cluster
// places right after its nodes are ready: every data group has a leader and only
// voting replicas, `replicas` of them (unless replicas is 0: a restarted cluster keeps
// the count it was made with), and each node leads as many groups as any other, give
// or take one. Until then the placement service is still adding replicas and moving
// leaders, and a request that meets a leadership transfer can be answered 503: "ready"
// is only printed once that is over, so the first commands a user types just work.
func devSettled(ctx context.Context, api *openapi.ClientWithResponses, nodes []*devNode, replicas int) error {
	resp, err := api.ListGroupsWithResponse(ctx)
	if err != nil {
		return err
	}
	if resp.JSON200 == nil {
		return fmt.Errorf("GET /admin/groups: %s", resp.Status())
	}
	want := min(replicas, len(nodes))
	leads := map[string]int{}
	for _, n := range nodes {
		leads[n.id] = 0
	}
	for _, g := range resp.JSON200.Groups {
		if g.Id == 0 { // the meta group is not placed
			continue
		}
		if g.Leader == "" {
			return fmt.Errorf("group %d has no leader", g.Id)
		}
		voters := 0
		for _, r := range g.Replicas {
			if r.Voter {
				voters++
			}
		}
		if voters != len(g.Replicas) || (replicas > 0 && voters != want) {
			return fmt.Errorf("group %d has %d replicas, %d voting; placement is still adding replicas", g.Id, len(g.Replicas), voters)
		}
		leads[g.Leader]++
	}
	if placement.Spread(leads) > 1 {
		return fmt.Errorf("leaders not balanced yet: %v", leads)
	}
	return nil
}
