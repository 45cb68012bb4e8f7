package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// listed is one listed key: its raw bytes, which order the merge, beside the JSON
// item it is answered as (whose `key` may not hold the bytes: see keyFields).
type listed struct {
	key  []byte
	item keyValueJSON
}

// share is one group's share of a listing: its first keys in byte order, and whether
// it stopped at its byte budget (listShareBytes) with more keys possibly after them.
type share struct {
	items     []listed
	truncated bool
	cursor    Cursor // the group's position at the view read: where a watch of it resumes
}

// listShareBytes bounds the keys and values one group's share of a listing holds, so
// a page costs a bounded amount of memory whatever its limit and the values' sizes:
// with 1 MiB values, 1,000 of them from each of 8 groups would be 8 GiB. The page's
// budget, listPageBytes, is split over the groups (shareBytes), down to
// minShareBytes each: 4 MiB a share made a page of 1 MiB values 32 MiB, and a storm
// of such listings starved Raft of CPU (elections) on 2 cores.
const (
	listShareBytes = 4 << 20
	listPageBytes  = 8 << 20
	minShareBytes  = 256 << 10
)

// shareBytes is the byte budget of one group's share of a listing over groups groups.
func shareBytes(groups int) int {
	return min(listShareBytes, max(minShareBytes, listPageBytes/max(groups, 1)))
}

// mergePage merges the groups' shares of a listing (each in byte order, each holding
// at most limit+1 keys) into one page: the first limit keys in the byte order of the
// raw keys, and the last of them as next when more keys follow (nil at the end). A
// share cut by its byte budget holds no key past its last one, so the page ends there
// at the latest (its frontier). A key can only be in one group's share; were it in two
// (a partition mid-move), it is listed once.
func mergePage(parts []share, limit int) (page []listed, next []byte) {
	var all []listed
	var frontier []byte
	for _, p := range parts {
		all = append(all, p.items...)
		if p.truncated && len(p.items) > 0 {
			if last := p.items[len(p.items)-1].key; frontier == nil || bytes.Compare(last, frontier) < 0 {
				frontier = last
			}
		}
	}
	slices.SortStableFunc(all, func(a, b listed) int { return bytes.Compare(a.key, b.key) })
	all = slices.CompactFunc(all, func(a, b listed) bool { return bytes.Equal(a.key, b.key) })
	if frontier != nil {
		// Keys after the frontier are not all known: the page ends there, and the next
		// one starts after it.
		n, _ := slices.BinarySearchFunc(all, frontier, func(a listed, k []byte) int { return bytes.Compare(a.key, k) })
		if all = all[:n+1]; len(all) <= limit {
			return all, frontier
		}
	}
	if len(all) > limit {
		all = all[:limit]
		next = all[limit-1].key
	}
	return all, next
}

// keyOfItem is the raw key of an item another node answered.
func keyOfItem(it keyValueJSON) ([]byte, error) {
	if it.KeyBase64 != nil {
		return base64.StdEncoding.DecodeString(*it.KeyBase64)
	}
	return []byte(it.Key), nil
}

// listGroup returns one group's share of a listing, served here when this node may, or
// asked of the group's leader. Like a point request it waits for a leader while an
// election runs, and tries the next leader it learns of when one refuses the
// connection or no longer leads: a list fails only when a group has no leader to ask.
func (s *Server) listGroup(ctx context.Context, rt Route, in ListInput) (share, error) {
	in.Group = rt.Group
	resolve := s.groupResolver(rt)
	servable := func(rt Route) bool { return rt.Leader || rt.LeaderHTTP != "" || (in.Stale && rt.Local) }
	var err error
	for attempt := 1; attempt <= forwardAttempts; attempt++ {
		switch failed := rt; {
		case attempt > 1 && failed.Leader:
			// This node refused its own share (a read index not confirmed in time) and
			// may lead still: it tries again, or follows the leader it learns of.
			if !pause(ctx, retryPause) {
				return share{}, err
			}
			rt = s.awaitRoute(ctx, Route{Group: rt.Group}, resolve, servable)
		case attempt > 1:
			rt = s.awaitRoute(ctx, Route{Group: rt.Group}, resolve, func(n Route) bool {
				return servable(n) && (n.Leader || n.LeaderID != failed.LeaderID)
			})
		default:
			rt = s.awaitRoute(ctx, rt, resolve, servable)
		}
		var retry bool
		if rt.Leader || (in.Stale && rt.Local) {
			var page ListPage
			if page, err = s.kv.List(ctx, in); err == nil {
				out := share{items: make([]listed, 0, len(page.Items)), truncated: page.Truncated,
					cursor: Cursor{rt.Group: AtIndex(page.Index)}}
				for _, it := range page.Items {
					out.items = append(out.items, listed{key: it.Key, item: listedJSON(it, in.KeysOnly)})
				}
				return out, nil
			}
			retry = errors.Is(err, ErrNotLeader)
		} else if rt.LeaderHTTP != "" {
			var part share
			if part, retry, err = s.listRemote(ctx, rt, in); err == nil {
				return part, nil
			}
		} else {
			return share{}, fmt.Errorf("%w: group %d has no known leader", ErrUnavailable, rt.Group)
		}
		if !retry || ctx.Err() != nil {
			return share{}, err
		}
	}
	return share{}, err
}

// listRemote asks rt's leader for the group's share. retry says the leader was not
// reached or no longer leads, so another may be asked.
//
// The node asked answers its share as a listing page; a `next` in it says the share
// stopped at its byte budget (see listOneGroup).
func (s *Server) listRemote(ctx context.Context, rt Route, in ListInput) (part share, retry bool, err error) {
	q := url.Values{}
	q.Set("group", strconv.FormatUint(uint64(rt.Group), 10))
	q.Set("prefix", string(in.Prefix))
	if in.StartAfter != nil {
		// A plain key, exact in a query string (every byte is escaped as it is).
		q.Set("start_after", string(in.StartAfter))
	}
	q.Set("limit", strconv.Itoa(in.Limit))
	q.Set("keys_only", strconv.FormatBool(in.KeysOnly))
	if in.MaxValueBytes > 0 {
		q.Set("max_value_bytes", strconv.Itoa(in.MaxValueBytes))
	}
	if in.Stale {
		q.Set("consistency", "stale")
	}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.peers.URL(rt.LeaderHTTP, "/kv?"+q.Encode()), nil)
	if err != nil {
		return share{}, false, err
	}
	req.Header.Set(forwardedHeader, s.kv.NodeID())
	resp, err := s.peers.Do(req)
	if err != nil {
		if neverSent(err) {
			s.kv.ForgetLeader(rt.Group, rt.LeaderID)
			retry = true
		}
		return share{}, retry, fmt.Errorf("%w: listing group %d at %s: %v", ErrUnavailable, rt.Group, rt.LeaderHTTP, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p Problem
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		// A not-leader refusal: the node asked no longer leads the group; ask the next.
		if p.Type == notLeaderType && p.Leader != "" && p.Leader != rt.LeaderID {
			s.kv.LeaderHint(rt.Group, p.Leader)
		}
		return share{}, p.Type == notLeaderType,
			fmt.Errorf("%w: listing group %d: %s %s", ErrUnavailable, rt.Group, resp.Status, p.Detail)
	}
	var out listJSON
	// A share is at most listShareBytes of keys and values, more as JSON and base64.
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4*listShareBytes+(1<<20))).Decode(&out); err != nil {
		return share{}, false, fmt.Errorf("%w: listing group %d: %v", ErrUnavailable, rt.Group, err)
	}
	part = share{items: make([]listed, 0, len(out.Items)), truncated: out.Next != ""}
	if part.cursor, err = ParseCursor(out.Cursor); err != nil {
		return share{}, false, fmt.Errorf("%w: listing group %d: %v", ErrUnavailable, rt.Group, err)
	}
	for _, it := range out.Items {
		k, err := keyOfItem(it)
		if err != nil {
			return share{}, false, fmt.Errorf("%w: listing group %d: key_base64: %v", ErrUnavailable, rt.Group, err)
		}
		part.items = append(part.items, listed{key: k, item: it})
	}
	return part, false, nil
}
