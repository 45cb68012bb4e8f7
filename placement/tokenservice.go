package placement

import (
	"context"
	"fmt"
	"time"
)

// CreateToken makes a token with role, limited to prefixes (none: every key), and
// replicates its record; it returns the token (to be shown once: only its hash is
// kept) and the record. Meta leader only. Errors: ErrInvalidToken (role, prefixes,
// name), or the meta group's (not the leader, no quorum).
func (s *Service) CreateToken(ctx context.Context, role Role, prefixes []string, name string) (string, Token, error) {
	plain, rec, err := NewToken(role, prefixes, name, time.Now())
	if err != nil {
		return "", Token{}, err
	}
	cmd := Command{Op: "create_token", Token: &rec}
	// Checked first, as Join does: a refused request costs no Raft entry.
	if _, err := ApplyTokens(s.meta.Tokens(), cmd); err != nil {
		return "", Token{}, err
	}
	if err := s.Propose(ctx, cmd); err != nil {
		return "", Token{}, err
	}
	return plain, rec, nil
}

// RevokeToken removes token id: from the moment a node's meta replica applies it, the
// node refuses the token. Meta leader only; ErrUnknownToken when there is no such token.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	if _, ok := s.meta.Tokens().Get(id); !ok {
		return fmt.Errorf("%w: %s", ErrUnknownToken, id)
	}
	return s.Propose(ctx, Command{Op: "revoke_token", TokenID: id})
}
