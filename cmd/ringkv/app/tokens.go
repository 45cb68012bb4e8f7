package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ringkv/ringkv/httpapi"
	"github.com/ringkv/ringkv/placement"
)

// tokenBackend serves httpapi's Authenticator (from this node's copy of the token set,
// which its meta replica keeps current) and Tokens (changes proposed to the meta group
// through the placement service, on the meta leader).
type tokenBackend struct {
	node *Node
}

var (
	_ httpapi.Authenticator = tokenBackend{}
	_ httpapi.Tokens        = tokenBackend{}
)

// newTokenWait bounds how long a well-formed token this node does not know is waited
// for: a token just created on the meta leader reaches the other nodes' meta replicas
// a heartbeat or so later (tens of milliseconds), and a client that creates a token
// and uses it at once on another node must not be told 401. Malformed tokens are
// refused at once, and so are revoked ones (Tokens.RevokedIDs); unknown ones after
// this wait, which also slows guessing.
const newTokenWait = time.Second

func (b tokenBackend) Authenticate(token string) (httpapi.Grant, bool) {
	id, ok := placement.TokenID(token)
	if !ok {
		return httpapi.Grant{}, false
	}
	var deadline *time.Timer
	for {
		changed := b.node.meta.Changed()
		set := b.node.meta.Tokens()
		if rec, ok := set.Authenticate(token); ok {
			return httpapi.Grant{Role: httpapi.Role(rec.Role), Prefixes: rec.Prefixes, TokenID: rec.ID}, true
		}
		if set.IsRevoked(id) {
			return httpapi.Grant{}, false
		}
		if deadline == nil {
			deadline = time.NewTimer(newTokenWait)
			defer deadline.Stop()
		}
		select {
		case <-changed:
		case <-deadline.C:
			return httpapi.Grant{}, false
		}
	}
}

func (b tokenBackend) CreateToken(ctx context.Context, req httpapi.TokenRequest) (httpapi.CreatedToken, error) {
	plain, rec, err := b.node.service.CreateToken(ctx, placement.Role(req.Role), req.Prefixes, req.Name)
	if err != nil {
		return httpapi.CreatedToken{}, b.error(err)
	}
	return httpapi.CreatedToken{TokenInfo: tokenInfo(rec), Token: plain}, nil
}

func (b tokenBackend) ListTokens(context.Context) ([]httpapi.TokenInfo, error) {
	set := b.node.meta.Tokens()
	out := make([]httpapi.TokenInfo, 0, len(set.Tokens))
	for _, t := range set.Tokens {
		out = append(out, tokenInfo(t))
	}
	return out, nil
}

func (b tokenBackend) RevokeToken(ctx context.Context, id string) error {
	if err := b.node.service.RevokeToken(ctx, id); err != nil {
		return b.error(err)
	}
	return nil
}

// error maps the placement service's errors to httpapi's.
func (b tokenBackend) error(err error) error {
	switch {
	case errors.Is(err, placement.ErrInvalidToken):
		return fmt.Errorf("%w: %v", httpapi.ErrBadRequest, err)
	case errors.Is(err, placement.ErrUnknownToken):
		return fmt.Errorf("%w: %v", httpapi.ErrNotFound, err)
	case errors.Is(err, placement.ErrTokenExists):
		return fmt.Errorf("%w: %v", httpapi.ErrConflict, err)
	}
	return kvBackend{b.node}.groupError(b.node.metaGroup, err)
}

func tokenInfo(t placement.Token) httpapi.TokenInfo {
	return httpapi.TokenInfo{ID: t.ID, Role: httpapi.Role(t.Role), Prefixes: t.Prefixes, Name: t.Name, Created: t.Created}
}

// peer is httpapi's Config.Peer: isPeer (secure.go), or the stand-in tests give.
func (n *Node) peer(r *http.Request) bool {
	if n.cfg.testPeer != nil {
		return n.cfg.testPeer(r)
	}
	return n.isPeer(r)
}
