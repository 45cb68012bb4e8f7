package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// listGroup returns one group's share of a listing, served here when this node may, or
// asked of the group's leader.
func (s *Server) listGroup(ctx context.Context, rt Route, in ListInput) ([]keyValueJSON, error) {
	in.Group = rt.Group
	if rt.Leader || (in.Stale && rt.Local) {
		items, _, err := s.kv.List(ctx, in)
		if err == nil {
			out := make([]keyValueJSON, 0, len(items))
			for _, it := range items {
				out = append(out, toKeyValue(it.Key, it.Group, it.Value, !in.KeysOnly))
			}
			return out, nil
		}
		if !errors.Is(err, ErrNotLeader) {
			return nil, err
		}
		if rt, err = s.kv.GroupRoute(in.Group); err != nil || rt.LeaderHTTP == "" {
			return nil, fmt.Errorf("%w: group %d has no known leader", ErrUnavailable, in.Group)
		}
	}
	if rt.LeaderHTTP == "" {
		return nil, fmt.Errorf("%w: group %d has no known leader", ErrUnavailable, rt.Group)
	}
	q := url.Values{}
	q.Set("group", strconv.FormatUint(uint64(rt.Group), 10))
	q.Set("prefix", string(in.Prefix))
	if in.StartAfter != nil {
		q.Set("start_after", string(in.StartAfter))
	}
	q.Set("limit", strconv.Itoa(in.Limit))
	q.Set("keys_only", strconv.FormatBool(in.KeysOnly))
	if in.Stale {
		q.Set("consistency", "stale")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(rt.LeaderHTTP)+"/kv?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(forwardedHeader, s.kv.NodeID())
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: listing group %d at %s: %v", ErrUnavailable, rt.Group, rt.LeaderHTTP, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return nil, fmt.Errorf("%w: listing group %d: %s %s", ErrUnavailable, rt.Group, resp.Status, p.Detail)
	}
	var out listJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: listing group %d: %v", ErrUnavailable, rt.Group, err)
	}
	return out.Items, nil
}
