package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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

// mergePage merges the groups' shares of a listing (each in byte order, each holding
// at most limit+1 keys) into one page: the first limit keys in the byte order of the
// raw keys, and the last of them as next when more keys follow (nil at the end). A key
// can only be in one group's share; were it in two (a partition mid-move), it is
// listed once.
func mergePage(parts [][]listed, limit int) (page []listed, next []byte) {
	var all []listed
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.SortStableFunc(all, func(a, b listed) int { return bytes.Compare(a.key, b.key) })
	all = slices.CompactFunc(all, func(a, b listed) bool { return bytes.Equal(a.key, b.key) })
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
func (s *Server) listGroup(ctx context.Context, rt Route, in ListInput) ([]listed, error) {
	in.Group = rt.Group
	resolve := s.groupResolver(rt)
	servable := func(rt Route) bool { return rt.Leader || rt.LeaderHTTP != "" || (in.Stale && rt.Local) }
	var err error
	for attempt := 1; attempt <= forwardAttempts; attempt++ {
		if attempt > 1 {
			failed := rt
			rt = s.awaitRoute(ctx, Route{Group: rt.Group}, resolve, func(n Route) bool {
				return servable(n) && (n.Leader != failed.Leader || n.LeaderID != failed.LeaderID)
			})
		} else {
			rt = s.awaitRoute(ctx, rt, resolve, servable)
		}
		var retry bool
		if rt.Leader || (in.Stale && rt.Local) {
			var items []ListItem
			if items, _, err = s.kv.List(ctx, in); err == nil {
				out := make([]listed, 0, len(items))
				for _, it := range items {
					out = append(out, listed{key: it.Key, item: toKeyValue(it.Key, it.Group, it.Value, !in.KeysOnly)})
				}
				return out, nil
			}
			retry = errors.Is(err, ErrNotLeader)
		} else if rt.LeaderHTTP != "" {
			var part []listed
			if part, retry, err = s.listRemote(ctx, rt, in); err == nil {
				return part, nil
			}
		} else {
			return nil, fmt.Errorf("%w: group %d has no known leader", ErrUnavailable, rt.Group)
		}
		if !retry || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}

// listRemote asks rt's leader for the group's share. retry says the leader was not
// reached or no longer leads, so another may be asked.
func (s *Server) listRemote(ctx context.Context, rt Route, in ListInput) (items []listed, retry bool, err error) {
	q := url.Values{}
	q.Set("group", strconv.FormatUint(uint64(rt.Group), 10))
	q.Set("prefix", string(in.Prefix))
	if in.StartAfter != nil {
		// A plain key, exact in a query string (every byte is escaped as it is).
		q.Set("start_after", string(in.StartAfter))
	}
	q.Set("limit", strconv.Itoa(in.Limit))
	q.Set("keys_only", strconv.FormatBool(in.KeysOnly))
	if in.Stale {
		q.Set("consistency", "stale")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(rt.LeaderHTTP)+"/kv?"+q.Encode(), nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set(forwardedHeader, s.kv.NodeID())
	resp, err := s.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			s.kv.ForgetLeader(rt.Group, rt.LeaderID)
			retry = true
		}
		return nil, retry, fmt.Errorf("%w: listing group %d at %s: %v", ErrUnavailable, rt.Group, rt.LeaderHTTP, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p Problem
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		// A not-leader refusal: the node asked no longer leads the group; ask the next.
		return nil, p.Type == notLeaderType,
			fmt.Errorf("%w: listing group %d: %s %s", ErrUnavailable, rt.Group, resp.Status, p.Detail)
	}
	var out listJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, false, fmt.Errorf("%w: listing group %d: %v", ErrUnavailable, rt.Group, err)
	}
	items = make([]listed, 0, len(out.Items))
	for _, it := range out.Items {
		k, err := keyOfItem(it)
		if err != nil {
			return nil, false, fmt.Errorf("%w: listing group %d: key_base64: %v", ErrUnavailable, rt.Group, err)
		}
		items = append(items, listed{key: k, item: it})
	}
	return items, false, nil
}
