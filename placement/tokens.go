package placement

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// API tokens (issue #14, item 3), kept by the meta group beside the placement table
// (Consul's ACL tokens, etcd's users and roles): every node follows the meta group, so
// every node holds the token set and judges a token itself, and a revocation takes
// effect on a node as soon as its meta replica applies it.
//
// A token reads rkv_<id>_<secret>: the id (16 hex digits) is public and names the
// record; the secret is 32 random bytes in unpadded base64url. The record keeps only
// the SHA-256 of the whole token, compared in constant time: a copy of a node's data
// dir, a snapshot or a backup gives away no usable token.

// Role is what a token may do: read keys, read and write them, or everything.
type Role string

const (
	RoleRead      Role = "read"      // GET and list /kv
	RoleReadWrite Role = "readwrite" // also PUT and DELETE /kv/{key}
	RoleAdmin     Role = "admin"     // everything: /admin, tokens, metrics
)

// Valid says whether r is one of the three roles.
func (r Role) Valid() bool { return r == RoleRead || r == RoleReadWrite || r == RoleAdmin }

// Errors of the token commands, returned to the proposer; the set is unchanged.
var (
	ErrInvalidToken = errors.New("placement: invalid token request")
	ErrTokenExists  = errors.New("placement: a token with this id exists")
	ErrUnknownToken = errors.New("placement: no such token")
	// ErrBootstrapped: the cluster's bootstrap admin token was made already.
	ErrBootstrapped = errors.New("placement: bootstrap admin token already made")
)

// Limits of a token request: a token set is one replicated value, read on every request.
const (
	MaxTokens         = 10000
	MaxTokenPrefixes  = 64
	maxTokenPrefixLen = 4096 // a key's longest
	maxTokenNameLen   = 256
)

// Token is one token's record: never its secret.
type Token struct {
	ID       string    `json:"id"`
	Role     Role      `json:"role"`
	Prefixes []string  `json:"prefixes,omitempty"` // keys the token is limited to; none: every key
	Name     string    `json:"name,omitempty"`
	Created  time.Time `json:"created"`
	Hash     []byte    `json:"hash"` // SHA-256 of the whole token
}

// Tokens is the token set. A published value is never modified: commands work on a copy.
type Tokens struct {
	Version int `json:"version"`
	// Bootstrapped: the bootstrap admin token was made (it may have been revoked since;
	// it is never made again).
	Bootstrapped bool    `json:"bootstrapped,omitempty"`
	Tokens       []Token `json:"tokens"` // ascending by ID
	// RevokedIDs are the ids of the latest revoked tokens (at most MaxRevokedIDs,
	// oldest first), so a node can refuse a revoked token at once rather than wait for a
	// token it does not know yet (cmd/ringkv/app/tokens.go).
	RevokedIDs []string `json:"revoked_ids,omitempty"`
}

// MaxRevokedIDs bounds Tokens.RevokedIDs: an id revoked longer ago than that many
// revocations is refused as an unknown one.
const MaxRevokedIDs = 4096

// IsRevoked says whether id is among the latest revoked ids.
func (s *Tokens) IsRevoked(id string) bool { return s != nil && slices.Contains(s.RevokedIDs, id) }

const tokensVersion = 1

const (
	tokenPrefix    = "rkv_"
	tokenIDBytes   = 8
	tokenSecretLen = 32
)

// NewToken makes a token and its record. The plaintext is the caller's to hand to the
// user once; only the record is proposed. It fails with ErrInvalidToken when the role,
// prefixes or name are not acceptable (see CheckToken).
func NewToken(role Role, prefixes []string, name string, now time.Time) (plaintext string, rec Token, err error) {
	id := make([]byte, tokenIDBytes)
	secret := make([]byte, tokenSecretLen)
	if _, err := rand.Read(id); err != nil {
		return "", Token{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return "", Token{}, err
	}
	rec = Token{ID: hex.EncodeToString(id), Role: role, Prefixes: slices.Clone(prefixes), Name: name, Created: now.UTC().Truncate(time.Second)}
	plaintext = tokenPrefix + rec.ID + "_" + base64.RawURLEncoding.EncodeToString(secret)
	rec.Hash = hashToken(plaintext)
	if err := CheckToken(rec); err != nil {
		return "", Token{}, err
	}
	return plaintext, rec, nil
}

// TokenRecord is the record of a token made earlier (the bootstrap token kept in a
// data dir), with the given role and name; ok is false when token is not well formed.
func TokenRecord(token string, role Role, name string, created time.Time) (Token, bool) {
	id, ok := TokenID(token)
	if !ok {
		return Token{}, false
	}
	return Token{ID: id, Role: role, Name: name, Created: created.UTC().Truncate(time.Second), Hash: hashToken(token)}, true
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenID is the public id of a well-formed token; ok is false for anything else.
func TokenID(token string) (id string, ok bool) {
	rest, found := strings.CutPrefix(token, tokenPrefix)
	if !found {
		return "", false
	}
	id, secret, found := strings.Cut(rest, "_")
	if !found || len(id) != 2*tokenIDBytes || base64.RawURLEncoding.DecodedLen(len(secret)) != tokenSecretLen {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", false
	}
	return id, true
}

// CheckToken says why rec cannot be stored (ErrInvalidToken), or nil: a known role; an
// admin token has no prefixes (it may do everything anyway); prefixes are non-empty,
// distinct, at most MaxTokenPrefixes of at most 4096 bytes; a name of at most 256 bytes
// of UTF-8; a 16-hex-digit id and a SHA-256.
func CheckToken(rec Token) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, a...))
	}
	switch {
	case !rec.Role.Valid():
		return bad("role must be read, readwrite or admin, not %q", rec.Role)
	case rec.Role == RoleAdmin && len(rec.Prefixes) > 0:
		return bad("an admin token may do everything: it cannot be limited to key prefixes")
	case len(rec.Prefixes) > MaxTokenPrefixes:
		return bad("at most %d prefixes", MaxTokenPrefixes)
	case len(rec.Name) > maxTokenNameLen || !utf8.ValidString(rec.Name):
		return bad("the name must be UTF-8 of at most %d bytes", maxTokenNameLen)
	case len(rec.Hash) != sha256.Size:
		return bad("the hash must be a SHA-256")
	}
	if _, err := hex.DecodeString(rec.ID); err != nil || len(rec.ID) != 2*tokenIDBytes {
		return bad("the id must be %d hex digits", 2*tokenIDBytes)
	}
	for i, p := range rec.Prefixes {
		if p == "" || len(p) > maxTokenPrefixLen {
			return bad("a prefix must be 1 to %d bytes (no prefixes: every key)", maxTokenPrefixLen)
		}
		if slices.Contains(rec.Prefixes[:i], p) {
			return bad("prefix %q is given twice", p)
		}
	}
	return nil
}

// Authenticate returns the record of token when it is in the set and its hash matches
// (compared in constant time); ok is false otherwise (unknown, revoked, malformed).
func (s *Tokens) Authenticate(token string) (rec Token, ok bool) {
	id, ok := TokenID(token)
	if !ok {
		return Token{}, false
	}
	rec, ok = s.Get(id)
	if !ok || subtle.ConstantTimeCompare(rec.Hash, hashToken(token)) != 1 {
		return Token{}, false
	}
	return rec, true
}

// Get returns the record with id.
func (s *Tokens) Get(id string) (Token, bool) {
	if s == nil {
		return Token{}, false
	}
	i, found := slices.BinarySearchFunc(s.Tokens, id, func(t Token, id string) int { return strings.Compare(t.ID, id) })
	if !found {
		return Token{}, false
	}
	return s.Tokens[i], true
}

// clone returns a copy that commands may change (records are shared: never modified).
func (s *Tokens) clone() *Tokens {
	if s == nil {
		return &Tokens{Version: tokensVersion}
	}
	c := *s
	c.Version = tokensVersion
	c.Tokens = slices.Clone(s.Tokens)
	c.RevokedIDs = slices.Clone(s.RevokedIDs)
	return &c
}

// ApplyTokens returns the set that results from a token command (create_token,
// revoke_token; s itself is unchanged): ErrInvalidToken, ErrTokenExists, ErrUnknownToken
// or ErrBootstrapped when it cannot be applied.
func ApplyTokens(s *Tokens, c Command) (*Tokens, error) {
	n := s.clone()
	switch c.Op {
	case "create_token":
		if c.Token == nil {
			return nil, fmt.Errorf("%w: create_token without a token", ErrBadCommand)
		}
		if c.Bootstrap && n.Bootstrapped {
			return nil, ErrBootstrapped
		}
		if c.Bootstrap && c.Token.Role != RoleAdmin {
			return nil, fmt.Errorf("%w: the bootstrap token must be an admin token", ErrInvalidToken)
		}
		if err := n.add(*c.Token); err != nil {
			return nil, err
		}
		n.Bootstrapped = n.Bootstrapped || c.Bootstrap
	case "revoke_token":
		i := slices.IndexFunc(n.Tokens, func(t Token) bool { return t.ID == c.TokenID })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrUnknownToken, c.TokenID)
		}
		n.Tokens = slices.Delete(n.Tokens, i, i+1)
		n.RevokedIDs = append(n.RevokedIDs, c.TokenID)
		if len(n.RevokedIDs) > MaxRevokedIDs {
			n.RevokedIDs = n.RevokedIDs[len(n.RevokedIDs)-MaxRevokedIDs:]
		}
	default:
		return nil, fmt.Errorf("%w: unknown token op %q", ErrBadCommand, c.Op)
	}
	return n, nil
}

// add inserts rec, keeping the set sorted by id.
func (s *Tokens) add(rec Token) error {
	if err := CheckToken(rec); err != nil {
		return err
	}
	if len(s.Tokens) >= MaxTokens {
		return fmt.Errorf("%w: the cluster holds %d tokens, the most it keeps; revoke some first", ErrInvalidToken, MaxTokens)
	}
	i, found := slices.BinarySearchFunc(s.Tokens, rec.ID, func(t Token, id string) int { return strings.Compare(t.ID, id) })
	if found {
		return fmt.Errorf("%w: %s", ErrTokenExists, rec.ID)
	}
	rec.Prefixes = slices.Clone(rec.Prefixes)
	s.Tokens = slices.Insert(s.Tokens, i, rec)
	return nil
}

// EncodeTokens serialises s.
func EncodeTokens(s *Tokens) ([]byte, error) { return json.Marshal(s) }

// DecodeTokens parses and checks what EncodeTokens wrote.
func DecodeTokens(b []byte) (*Tokens, error) {
	var s Tokens
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode token set: %w", err)
	}
	if s.Version != tokensVersion {
		return nil, fmt.Errorf("decode token set: unsupported version %d", s.Version)
	}
	for i, t := range s.Tokens {
		if err := CheckToken(t); err != nil {
			return nil, fmt.Errorf("decode token set: %w", err)
		}
		if i > 0 && s.Tokens[i-1].ID >= t.ID {
			return nil, errors.New("decode token set: ids must be distinct and ascending")
		}
	}
	return &s, nil
}
