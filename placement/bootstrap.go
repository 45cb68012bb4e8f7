package placement

import (
	"context"
	"errors"
	"time"
)

// The bootstrap admin token: the first credential of a cluster, made with it by the
// node that creates it and kept in that node's data dir for its operator
// (<data-dir>/admin.token). It is made whether or not auth is on, so that turning auth
// on later finds a way in. A cluster created before tokens existed gets one from the
// first meta leader that runs this code, kept in that leader's data dir.

// AdminTokenStore keeps the plaintext of the bootstrap admin token where the operator
// finds it.
type AdminTokenStore interface {
	// Token returns the token, making and keeping it at the first call. It is kept
	// before it is proposed, so a proposal whose outcome is unknown never leaves the
	// cluster with a token nobody holds, and every retry proposes the same token.
	Token() (string, error)
	// Discard removes the kept token: the cluster was bootstrapped with another.
	Discard() error
}

// bootstrapName is the name the bootstrap token is listed under.
const bootstrapName = "bootstrap admin (admin.token of the node that made it)"

// bootstrapToken returns the record of the kept bootstrap token; ok is false when there
// is no store or the token cannot be had (logged once).
func (s *Service) bootstrapToken() (Token, bool) {
	if s.cfg.AdminToken == nil {
		return Token{}, false
	}
	plain, err := s.cfg.AdminToken.Token()
	if err != nil {
		s.warnBootstrap("keep the bootstrap admin token", err)
		return Token{}, false
	}
	rec, ok := TokenRecord(plain, RoleAdmin, bootstrapName, time.Now())
	if !ok {
		s.warnBootstrap("keep the bootstrap admin token", errors.New("the kept token is not a ringkv token; remove the file to have a new one made"))
		return Token{}, false
	}
	return rec, true
}

// bootstrapTokens gives a cluster that has no bootstrap admin token (one created before
// tokens existed, or whose init carried none) the token this node keeps.
func (s *Service) bootstrapTokens(ctx context.Context) {
	if s.meta.Tokens().Bootstrapped {
		return
	}
	rec, ok := s.bootstrapToken()
	if !ok {
		return
	}
	err := s.Propose(ctx, Command{Op: "create_token", Token: &rec, Bootstrap: true})
	switch {
	case err == nil:
		s.log.Info("made the cluster's bootstrap admin token, kept in this node's data dir", "token_id", rec.ID)
	case errors.Is(err, ErrBootstrapped):
		// Another meta leader made it first: the token kept here was never valid.
		if _, held := s.meta.Tokens().Get(rec.ID); !held {
			if err := s.cfg.AdminToken.Discard(); err != nil {
				s.warnBootstrap("discard an unused bootstrap token", err)
			}
		}
	default:
		s.warnBootstrap("make the bootstrap admin token", err)
	}
}

// warnBootstrap logs a bootstrap failure once: the service retries every pass.
func (s *Service) warnBootstrap(what string, err error) {
	if s.bootstrapWarned.CompareAndSwap(false, true) {
		s.log.Warn("could not "+what+"; retrying every pass", "err", err)
	}
}
