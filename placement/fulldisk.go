package placement

// fullDisks is the set of nodes whose last report says their disk is below its
// reserve: they refuse writes, so they should lead no group while another voter can.
func (s *Service) fullDisks() map[string]bool {
	full := map[string]bool{}
	for id, rep := range s.Reports() {
		if rep.Disk != nil && rep.Disk.Full {
			full[id] = true
		}
	}
	return full
}

// mayLead lists the nodes leader balancing may give leaderships to: live members that
// host a group, whose last report says neither that the disk is full (the leader would
// refuse every write) nor that the node is stopping (it would hand the leadership off
// again, or lose it when it goes, within moments).
func mayLead(t *Table, c Cluster, reports map[string]NodeReport) []string {
	var nodes []string
	for _, n := range t.Nodes {
		rep := reports[n.ID]
		if c.eligible(n) && len(t.GroupsOf(n.ID)) > 0 && (rep.Disk == nil || !rep.Disk.Full) && !rep.Stopping {
			nodes = append(nodes, n.ID)
		}
	}
	return nodes
}

// leadersOffFullDisks moves the leadership of every group led by a node whose disk is
// full (up to limit groups) to the voter among nodes (live, with room) that leads the
// fewest groups. A leader on a full disk refuses every write to its group with 507
// although its followers may have room, and nothing else moves it: its Raft log is not
// failing, it refuses before proposing.
func leadersOffFullDisks(t *Table, views map[uint32]groupView, full map[string]bool, nodes []string, led map[string]int, limit int) []leaderMove {
	var round []leaderMove
	for _, g := range t.Groups {
		if len(round) == limit {
			break
		}
		v := views[g.ID]
		if v.leader == "" || !full[v.leader] {
			continue
		}
		to := ""
		for _, voter := range v.voters {
			if voter == v.leader || full[voter] || !contains(nodes, voter) {
				continue
			}
			if to == "" || led[voter] < led[to] {
				to = voter
			}
		}
		if to == "" {
			continue
		}
		round = append(round, leaderMove{Group: g.ID, From: v.leader, To: to})
		led[v.leader]--
		led[to]++
	}
	return round
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// caughtUpVoters narrows each view's voters to the leader and the voters whose replica
// has applied to within maxCatchUpLag of the leader's commit index: leader balancing
// transfers leadership only to those. To a replica still catching up (a node that just
// restarted), hashicorp/raft first sends what it lacks, perhaps a snapshot, refusing
// every write of the group meanwhile (raftgroup/transferwatch.go).
func caughtUpVoters(views map[uint32]groupView, reports map[string]NodeReport) map[uint32]groupView {
	out := make(map[uint32]groupView, len(views))
	for id, v := range views {
		var voters []string
		for _, n := range v.voters {
			r, ok := reports[n].Replica(id)
			if n == v.leader || (ok && r.Applied+maxCatchUpLag >= v.commit) {
				voters = append(voters, n)
			}
		}
		v.voters = voters
		out[id] = v
	}
	return out
}
