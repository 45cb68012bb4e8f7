package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestWatchOfAGroupWithNoLocalReplica: with one replica per group, a node that holds
// no replica of a key's group serves a watch and a long poll of it by reading the
// replica's history (/internal/watch/groups/{id}).
func TestWatchOfAGroupWithNoLocalReplica(t *testing.T) {
	c := startProcCluster(t, 2, "--replicas", "1") // two nodes: the other has no replica
	// Replicas move to the second node after it joins: wait for placement to settle
	// (8 data groups, 4 on each), so the group stays where it is.
	eventually(t, 60*time.Second, "replicas balanced", func() error {
		resp, err := http.Get(c.procs[0].httpURL + "/admin/nodes")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var nodes struct {
			Nodes []struct{ Replicas int } `json:"nodes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil {
			return err
		}
		if len(nodes.Nodes) != 2 || nodes.Nodes[0].Replicas < 4 || nodes.Nodes[1].Replicas < 4 {
			return fmt.Errorf("nodes %+v", nodes)
		}
		return nil
	})
	key := "remote/k"
	owner := groupLeader(t, c, key) // the group's only replica
	serving := c.procs[1-owner].httpURL
	events, cancel := watchStream(t, serving+"/kv/"+url.PathEscape(key)+"?watch=true", "")
	defer cancel()
	watchPut(t, c.procs[owner].httpURL, key, "v1")
	e := nextChange(t, events)
	if e.key(t) != key || e.Data.Value == nil || *e.Data.Value != "v1" {
		t.Fatalf("remote watch: %+v", e)
	}
	watchPut(t, serving, key, "v2")
	if e2 := nextChange(t, events); *e2.Data.Value != "v2" {
		t.Fatalf("second event %+v", e2)
	}
	// A long poll from the first event's id on the same node answers v2.
	resp, err := http.Get(serving + "/kv/" + url.PathEscape(key) + "?since=" + url.QueryEscape(e.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var poll struct {
		Events []struct{ Key, Value string } `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&poll); err != nil || len(poll.Events) != 1 || poll.Events[0].Value != "v2" {
		t.Fatalf("remote long poll: %d %+v %v", resp.StatusCode, poll, err)
	}
}

// TestWatchSurvivesItsGroupLeadersKill: a watch served by a node that does not lead
// the key's group keeps going across a SIGKILL of that leader: every acknowledged
// write appears, in write order, and no event is delivered twice.
func TestWatchSurvivesItsGroupLeadersKill(t *testing.T) {
	c := startProcCluster(t, 3)
	key := "lead/k"
	leader := groupLeader(t, c, key)
	serving := (leader + 1) % 3
	writer := c.procs[(leader+2)%3].httpURL
	events, cancel := watchStream(t, c.procs[serving].httpURL+"/kv?prefix=lead/&watch=true", "")
	defer cancel()
	var acked []string
	put := func(v string) {
		watchPut(t, writer, key, v)
		acked = append(acked, v)
	}
	for i := 0; i < 5; i++ {
		put(fmt.Sprint("before", i))
	}
	c.kill(leader)
	for i := 0; i < 5; i++ {
		put(fmt.Sprint("after", i))
	}
	newWatchOrder().readUntil(t, events, acked)
}
