package raftgroup

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakeLeader is a leader whose VerifyLeader always succeeds, as hashicorp/raft's does
// when followers' answers to heartbeats sent before a pause are read after it; onVerify
// plays the followers answering the heartbeats VerifyLeader sends now.
type fakeLeader struct {
	voters   int
	onVerify func()
}

// fakeFuture is a finished Apply or VerifyLeader.
type fakeFuture struct{}

func (fakeFuture) Error() error  { return nil }
func (fakeFuture) Index() uint64 { return 0 }
func (fakeFuture) Response() any { return nil }

// fakeConfig is a finished GetConfiguration.
type fakeConfig struct{ servers []raft.Server }

func (f fakeConfig) Error() error                      { return nil }
func (f fakeConfig) Index() uint64                     { return 1 }
func (f fakeConfig) Configuration() raft.Configuration { return raft.Configuration{Servers: f.servers} }

func (l *fakeLeader) State() raft.RaftState                        { return raft.Leader }
func (l *fakeLeader) CurrentTerm() uint64                          { return 7 }
func (l *fakeLeader) CommitIndex() uint64                          { return 42 }
func (l *fakeLeader) Apply([]byte, time.Duration) raft.ApplyFuture { return fakeFuture{} }
func (l *fakeLeader) VerifyLeader() raft.Future {
	if l.onVerify != nil {
		l.onVerify()
	}
	return fakeFuture{}
}
func (l *fakeLeader) GetConfiguration() raft.ConfigurationFuture {
	c := fakeConfig{}
	for i := 1; i <= l.voters; i++ {
		c.servers = append(c.servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i)), Suffrage: raft.Voter})
	}
	// A non-voter's answers never make a quorum.
	c.servers = append(c.servers, raft.Server{ID: "learner", Suffrage: raft.Nonvoter})
	return c
}

func TestReadIsConfirmedOnlyByAnswersToHeartbeatsSentAfterItBegan(t *testing.T) {
	cases := []struct {
		name     string
		voters   int
		before   []raft.ServerID // followers whose accepted request was sent before the read
		after    []raft.ServerID // followers that accept the heartbeat VerifyLeader sends
		confirms bool
	}{
		{"VerifyLeader alone, no answers", 3, nil, nil, false},
		{"only answers to heartbeats sent before the read", 3, []raft.ServerID{"n2", "n3"}, nil, false},
		{"a non-voter's fresh answer", 3, []raft.ServerID{"n2", "n3"}, []raft.ServerID{"learner"}, false},
		{"one fresh follower of three voters", 3, nil, []raft.ServerID{"n3"}, true},
		{"one fresh follower of five voters", 5, []raft.ServerID{"n2", "n3", "n4"}, []raft.ServerID{"n5"}, false},
		{"two fresh followers of five voters", 5, nil, []raft.ServerID{"n2", "n4"}, true},
		{"a single voter needs no one", 1, nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			acks := newFreshAcks()
			for _, id := range tc.before {
				acks.accepted(id, acks.tick())
			}
			l := &fakeLeader{voters: tc.voters, onVerify: func() {
				for _, id := range tc.after {
					sent := acks.tick() // the heartbeat goes out after the read's round began
					go acks.accepted(id, sent)
				}
			}}
			ri := &readIndex{r: l, self: "n1", acks: acks}
			start := time.Now()
			idx, err := ri.confirm(nil)
			switch {
			case tc.confirms && (err != nil || idx != 42):
				t.Fatalf("read not confirmed: %d %v", idx, err)
			case !tc.confirms && !errors.Is(err, ErrNotLeader):
				t.Fatalf("read confirmed without a fresh quorum: %d %v", idx, err)
			case !tc.confirms && time.Since(start) < freshQuorumWait:
				t.Fatalf("gave up after %v, before freshQuorumWait", time.Since(start))
			}
		})
	}
}
