package raftgroup

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// instance is one hashicorp/raft instance of a replica with its transport. A replica
// normally runs one for its whole life; transferwatch.go replaces a wedged one.
type instance struct {
	r     *raft.Raft
	trans *ackingTransport
	once  sync.Once
	done  chan struct{}
	err   error
}

// shutdown closes the transport, then shuts the Raft instance down, once; the channel
// is closed when the shutdown has finished (err then holds its error). The transport
// goes first, with every connection it holds: hashicorp/raft's shutdown waits for its
// replication goroutines, and one blocked on a peer that stopped answering (a
// partition, a paused node) would hold it for the transport's timeout.
func (in *instance) shutdown() <-chan struct{} {
	in.once.Do(func() {
		in.done = make(chan struct{})
		in.trans.Close()
		go func() {
			in.err = in.r.Shutdown().Error()
			close(in.done)
		}()
	})
	return in.done
}

// newTransport is a replica's Raft transport over the node's mux.
//
// MaxRPCsInFlight 1 turns hashicorp/raft's pipelined replication off:
// AppendEntriesPipeline answers ErrPipelineReplicationNotSupported and every append is
// a plain request and answer. With the default (2) the pipeline's channels are
// unbuffered (net_transport.go newNetPipeline: maxInFlight-2), and once a follower
// answers Success=false (a log mismatch, or a follower whose disk is full refusing the
// append) pipelineDecode returns while decodeResponses waits to hand it the next answer
// and pipelineSend waits to queue the next request: replication to that follower stops
// for the rest of the term, heartbeats go on, and no election heals it
// (hashicorp/raft#611, #612; grafana/pyroscope#5518). ringkv's group commit keeps one
// entry in flight per group, so a pipeline had nothing to overlap: the measured write
// throughput is in docs/RAFT-HAZARDS.md.
func newTransport(stream raft.StreamLayer, acks *freshAcks, log hclog.Logger, electionTimeout time.Duration) *ackingTransport {
	return &ackingTransport{
		acks:           acks,
		timeoutNowWait: electionTimeout,
		NetworkTransport: raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:          stream,
			MaxPool:         3,
			MaxRPCsInFlight: 1,
			Timeout:         10 * time.Second,
			Logger:          log,
		}),
	}
}

// startInstance starts a Raft instance over the replica's stores and state machine,
// with a new transport on the replica's mux layer.
func (g *Group) startInstance() (*instance, error) {
	trans := newTransport(g.mux.Layer(g.id), g.reads.acks, g.hl, g.rc.ElectionTimeout)
	rc := g.rc
	r, err := raft.NewRaft(&rc, g.fsm, g.logs, g.store, g.snaps, trans)
	if err != nil {
		trans.Close()
		return nil, err
	}
	return &instance{r: r, trans: trans}, nil
}

// TimeoutNow sends a leadership transfer's TimeoutNow, waiting at most an election
// timeout for the answer. hashicorp/raft keeps its "leadership transfer in progress"
// flag set, refusing every Apply, until this call returns, even after the leader has
// stepped down and been elected again (raft.go leaderLoop: the transfer goroutine's
// `<-doneCh`; hashicorp/raft#696); the transport's own 10 s I/O timeout would make that
// a 10 s write outage. The request may still reach the peer after the error: the
// peer then starts an election, which is what was asked.
func (t *ackingTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	done := make(chan error, 1)
	var answer raft.TimeoutNowResponse
	go func() {
		err := t.NetworkTransport.TimeoutNow(id, target, args, &answer)
		if t.afterTimeoutNow != nil {
			t.afterTimeoutNow()
		}
		done <- err
	}()
	wait := time.NewTimer(t.timeoutNowWait)
	defer wait.Stop()
	select {
	case err := <-done:
		if err == nil {
			*resp = answer
		}
		return err
	case <-wait.C:
		return fmt.Errorf("TimeoutNow to %s: no answer within %v", id, t.timeoutNowWait)
	}
}
