package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/placement"
	"github.com/ringkv/ringkv/raftgroup"
	"github.com/ringkv/ringkv/raftgroup/backup"
)

// backupSource serves httpapi's Backup interface: it assembles a backup of the whole
// cluster on the node asked (GET /admin/backup), and answers other nodes assembling one
// with the sections of the groups this node leads (GET /internal/backup/groups/{id}).
//
// Each group's section is written by the group's leader, from a Badger read view opened
// after a read index is confirmed (raftgroup.Group.OpenReadView): it holds every write
// of the group acknowledged before the backup reached that group, and is exactly the
// state at the applied index it carries. A group led elsewhere is fetched from its
// leader rather than read from a local follower after asking the leader for a read
// index: the leader already has the whole recipe (read index, fresh quorum, wait for
// apply) and no internal "read index" call exists to ask it for one; the cost is that
// the section crosses the network twice (leader to this node to the client).
type backupSource struct {
	node   *Node
	client *clusterClient
}

// newBackupSource returns the source of node n. Its requests have no overall timeout
// (a section is as long as its group), but the cluster client bounds dialing and
// waiting for an answer, and a stalled stream is cut by idleReader.
func newBackupSource(n *Node) backupSource {
	return backupSource{node: n, client: n.peers}
}

// backupLeaderWait bounds how long a backup waits for a group to have a leader that
// answers (an election, a transfer) before it fails.
const backupLeaderWait = 10 * time.Second

// backupIdle is how long a section being fetched from another node may send nothing
// before the backup fails (a leader that stopped answering).
const backupIdle = 30 * time.Second

// WriteBackup implements httpapi.Backup.
func (b backupSource) WriteBackup(ctx context.Context, w io.Writer, consistent bool) error {
	t := b.node.meta.Table()
	if !t.Initialized() {
		return fmt.Errorf("%w: the cluster is not created yet", httpapi.ErrUnavailable)
	}
	h := backup.Header{ClusterID: t.ClusterID, Created: time.Now().UTC(), Node: b.node.cfg.ID,
		Partitions: make([]uint32, t.NumPartitions())}
	for p := range h.Partitions {
		h.Partitions[p] = t.GroupOf(uint32(p))
	}
	for _, g := range t.Groups {
		h.Groups = append(h.Groups, g.ID)
	}
	start := time.Now()
	var plan *cutPlan
	if consistent {
		// A cut fails when a group's leader changes while it is taken (or another
		// consistent backup holds a group): nothing is held then, so it is tried again.
		var err error
		for attempt := 1; ; attempt++ {
			if plan, err = b.takeCut(ctx, h.Groups); err == nil {
				break
			}
			if attempt == 3 || !(errors.Is(err, httpapi.ErrUnavailable) || errors.Is(err, httpapi.ErrNotLeader)) {
				return err
			}
			b.node.log.Warn("consistent cut failed; trying again", "attempt", attempt, "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			}
		}
		defer b.dropCut(plan) // views not streamed (a failure half-way)
		h.Consistent = true
	}
	bw, err := backup.NewWriter(w, h)
	if err != nil {
		return err
	}
	for _, id := range h.Groups {
		if plan != nil {
			err = b.cutSection(ctx, bw, plan, id)
		} else {
			err = b.section(ctx, bw, id)
		}
		if err != nil {
			return fmt.Errorf("backup of group %d: %w", id, err)
		}
	}
	m, err := bw.Close()
	if err != nil {
		return err
	}
	b.node.log.Info("backup written", "keys", m.Keys, "groups", len(m.Groups), "consistent", consistent, "sha256", m.SHA256,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// section writes group id's section: read here when this node leads the group, else
// fetched from its leader. It retries, while nothing of the section is written, when the
// group has no leader or the one asked no longer leads.
func (b backupSource) section(ctx context.Context, bw *backup.Writer, id uint32) error {
	deadline := time.Now().Add(backupLeaderWait)
	for {
		rt, err := kvBackend{b.node}.GroupRoute(id)
		if err != nil {
			return err
		}
		var retry bool
		switch {
		case rt.Leader:
			retry, err = b.localSection(ctx, bw, id)
		case rt.LeaderHTTP != "":
			retry, err = b.remoteSection(ctx, bw, rt, "")
		default:
			retry, err = true, fmt.Errorf("%w: group %d has no known leader", httpapi.ErrUnavailable, id)
		}
		if !retry || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: no leader of group %d answered within %s: %w", httpapi.ErrUnavailable, id, backupLeaderWait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b backupSource) localSection(ctx context.Context, bw *backup.Writer, id uint32) (retry bool, err error) {
	g := b.node.host.Group(id)
	if g == nil {
		return true, &httpapi.NotLeaderError{}
	}
	view, err := g.OpenReadView(ctx)
	if err != nil {
		return errors.Is(err, raftgroup.ErrNotLeader), kvBackend{b.node}.groupError(g, err)
	}
	defer view.Close()
	return false, writeSection(bw, id, view)
}

// cutSection writes group id's section from its view in the consistent cut plan.
func (b backupSource) cutSection(ctx context.Context, bw *backup.Writer, plan *cutPlan, id uint32) error {
	for node, groups := range plan.byNode {
		if !slices.Contains(groups, id) {
			continue
		}
		if node == b.node.cfg.ID {
			view, err := b.node.cuts.takeView(plan.id, id)
			if err != nil {
				return err
			}
			defer view.Close()
			return writeSection(bw, id, view)
		}
		_, err := b.remoteSection(ctx, bw, httpapi.Route{Group: id, LeaderID: node, LeaderHTTP: plan.addr[node]}, plan.id)
		return err
	}
	return fmt.Errorf("group %d is not in cut %s", id, plan.id)
}

// remoteSection asks rt's leader for the group's section and copies it, checked, into
// bw. retry: the leader was not reached or does not lead (nothing was written).
// With cut set it asks for the group's view in that consistent cut instead.
func (b backupSource) remoteSection(ctx context.Context, bw *backup.Writer, rt httpapi.Route, cut string) (retry bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	url := b.client.URL(rt.LeaderHTTP, "/internal/backup/groups/"+strconv.FormatUint(uint64(rt.Group), 10))
	if cut != "" {
		url += "?cut=" + cut
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		kvBackend{b.node}.ForgetLeader(rt.Group, rt.LeaderID)
		return true, fmt.Errorf("%w: group %d's leader %s: %v", httpapi.ErrUnavailable, rt.Group, rt.LeaderID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p httpapi.Problem
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		err := fmt.Errorf("%w: group %d's leader %s answered %s: %s", httpapi.ErrUnavailable, rt.Group, rt.LeaderID, resp.Status, p.Detail)
		if resp.StatusCode == http.StatusServiceUnavailable {
			kvBackend{b.node}.ForgetLeader(rt.Group, rt.LeaderID)
			return true, err
		}
		return false, err
	}
	if _, err := bw.CopySection(newIdleReader(resp.Body, backupIdle, cancel), rt.Group); err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			err = fmt.Errorf("%w (%v)", err, c)
		}
		return false, fmt.Errorf("copying group %d's section from %s: %w", rt.Group, rt.LeaderID, err)
	}
	return false, nil
}

// WriteGroupSection implements httpapi.Backup: group id's section, when this node
// leads the group (else a *httpapi.NotLeaderError, nothing written); with cut set,
// from the group's view in that consistent cut.
func (b backupSource) WriteGroupSection(ctx context.Context, id uint32, cut string, w io.Writer) error {
	if id == placement.MetaGroup {
		return fmt.Errorf("%w: group %d is not a data group", httpapi.ErrBadRequest, id)
	}
	view, err := b.sectionView(ctx, id, cut)
	if err != nil {
		return err
	}
	defer view.Close()
	sw := backup.NewSectionWriter(w, id, view.Applied)
	if err := view.Scan(sw.Put); err != nil {
		return err
	}
	_, err = sw.End()
	return err
}

// sectionView is the read view group id's section is read from: the one cut holds of
// it on this node, or with no cut a new one, which this node must lead the group for.
func (b backupSource) sectionView(ctx context.Context, id uint32, cut string) (*raftgroup.ReadView, error) {
	if cut != "" {
		return b.node.cuts.takeView(cut, id)
	}
	g := b.node.host.Group(id)
	if g == nil || !g.IsLeader() {
		if g != nil {
			return nil, kvBackend{b.node}.groupError(g, raftgroup.ErrNotLeader)
		}
		return nil, &httpapi.NotLeaderError{}
	}
	view, err := g.OpenReadView(ctx)
	if err != nil {
		return nil, kvBackend{b.node}.groupError(g, err)
	}
	return view, nil
}

// writeSection writes group id's section of the backup bw from view.
func writeSection(bw *backup.Writer, id uint32, view *raftgroup.ReadView) error {
	sw, err := bw.Section(id, view.Applied)
	if err != nil {
		return err
	}
	if err := view.Scan(sw.Put); err != nil {
		return err
	}
	_, err = bw.EndSection()
	return err
}

// idleReader cancels a stream (through cancel) that delivers nothing for idle.
type idleReader struct {
	r     io.Reader
	idle  time.Duration
	timer *time.Timer
}

var errStalled = errors.New("the stream stalled")

func newIdleReader(r io.Reader, idle time.Duration, cancel context.CancelCauseFunc) *idleReader {
	return &idleReader{r: r, idle: idle, timer: time.AfterFunc(idle, func() {
		cancel(fmt.Errorf("%w: nothing received for %s", errStalled, idle))
	})}
}

func (ir *idleReader) Read(b []byte) (int, error) {
	n, err := ir.r.Read(b)
	if n > 0 {
		ir.timer.Reset(ir.idle)
	}
	if err != nil {
		ir.timer.Stop()
	}
	return n, err
}
