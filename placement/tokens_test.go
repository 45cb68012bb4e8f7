package placement

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestNewTokenAuthenticates(t *testing.T) {
	plain, rec, err := NewToken(RoleRead, []string{"app/"}, "ci", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "rkv_"+rec.ID+"_") || len(rec.ID) != 16 {
		t.Fatalf("token %q, id %q", plain, rec.ID)
	}
	if strings.Contains(string(rec.Hash), plain) || len(rec.Hash) != 32 {
		t.Fatalf("the record must keep a SHA-256, not the token: %x", rec.Hash)
	}
	set, err := ApplyTokens(nil, Command{Op: "create_token", Token: &rec})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := set.Authenticate(plain); !ok || got.ID != rec.ID || got.Role != RoleRead || !reflect.DeepEqual(got.Prefixes, []string{"app/"}) {
		t.Fatalf("Authenticate = %+v, %v", got, ok)
	}
	secret := plain[len("rkv_"+rec.ID+"_"):]
	flipped := []byte(secret)
	flipped[0] ^= 1
	other, _, _ := NewToken(RoleRead, nil, "", time.Now())
	for name, bad := range map[string]string{
		"empty":          "",
		"no prefix":      strings.TrimPrefix(plain, "rkv_"),
		"wrong secret":   "rkv_" + rec.ID + "_" + string(flipped),
		"unknown id":     other,
		"truncated":      plain[:len(plain)-1],
		"extra byte":     plain + "A",
		"upper-case id":  "rkv_" + strings.ToUpper(rec.ID) + "_" + secret,
		"secret as id":   "rkv_" + secret + "_" + rec.ID,
		"id only":        "rkv_" + rec.ID,
		"bearer keyword": "Bearer " + plain,
	} {
		if _, ok := set.Authenticate(bad); ok {
			t.Errorf("%s: %q authenticated", name, bad)
		}
	}
}

func TestCheckToken(t *testing.T) {
	_, good, err := NewToken(RoleReadWrite, nil, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Token)
		ok   bool
	}{
		{"good", func(*Token) {}, true},
		{"read with prefixes", func(r *Token) { r.Role, r.Prefixes = RoleRead, []string{"a/", "b/"} }, true},
		{"admin", func(r *Token) { r.Role = RoleAdmin }, true},
		{"admin with prefixes", func(r *Token) { r.Role, r.Prefixes = RoleAdmin, []string{"a/"} }, false},
		{"unknown role", func(r *Token) { r.Role = "root" }, false},
		{"empty role", func(r *Token) { r.Role = "" }, false},
		{"empty prefix", func(r *Token) { r.Prefixes = []string{""} }, false},
		{"duplicate prefix", func(r *Token) { r.Prefixes = []string{"a", "a"} }, false},
		{"too many prefixes", func(r *Token) {
			for i := range MaxTokenPrefixes + 1 {
				r.Prefixes = append(r.Prefixes, string(rune('a'+i%26))+strings.Repeat("x", i))
			}
		}, false},
		{"long name", func(r *Token) { r.Name = strings.Repeat("n", 257) }, false},
		{"bad hash", func(r *Token) { r.Hash = r.Hash[:16] }, false},
		{"bad id", func(r *Token) { r.ID = "xyz" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.edit(&r)
			err := CheckToken(r)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidToken)) {
				t.Fatalf("CheckToken = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, _, err := NewToken(RoleAdmin, []string{"a/"}, "", time.Now()); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("NewToken of an admin token with prefixes: %v", err)
	}
}

func TestApplyTokens(t *testing.T) {
	_, a, _ := NewToken(RoleAdmin, nil, "a", time.Now())
	_, b, _ := NewToken(RoleRead, nil, "b", time.Now())
	set, err := ApplyTokens(nil, Command{Op: "create_token", Token: &a, Bootstrap: true})
	if err != nil || !set.Bootstrapped {
		t.Fatalf("bootstrap: %v %+v", err, set)
	}
	if _, err := ApplyTokens(set, Command{Op: "create_token", Token: &b, Bootstrap: true}); !errors.Is(err, ErrBootstrapped) {
		t.Fatalf("second bootstrap: %v", err)
	}
	if _, err := ApplyTokens(set, Command{Op: "create_token", Token: &a}); !errors.Is(err, ErrTokenExists) {
		t.Fatalf("same id twice: %v", err)
	}
	next, err := ApplyTokens(set, Command{Op: "create_token", Token: &b})
	if err != nil || len(next.Tokens) != 2 || len(set.Tokens) != 1 {
		t.Fatalf("create: %v; %d tokens after, %d in the original", err, len(next.Tokens), len(set.Tokens))
	}
	if next.Tokens[0].ID > next.Tokens[1].ID {
		t.Fatal("tokens not kept in id order")
	}
	revoked, err := ApplyTokens(next, Command{Op: "revoke_token", TokenID: a.ID})
	if err != nil || len(revoked.Tokens) != 1 || !revoked.Bootstrapped {
		t.Fatalf("revoke: %v %+v", err, revoked)
	}
	if _, ok := revoked.Get(a.ID); ok {
		t.Fatal("revoked token still held")
	}
	if _, ok := next.Get(a.ID); !ok || next.IsRevoked(a.ID) {
		t.Fatal("revoke changed the set it was applied to")
	}
	if !revoked.IsRevoked(a.ID) {
		t.Fatal("the revoked id is not remembered as revoked")
	}
	if _, err := ApplyTokens(revoked, Command{Op: "revoke_token", TokenID: a.ID}); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("revoke unknown: %v", err)
	}
	_, rw, _ := NewToken(RoleReadWrite, nil, "", time.Now())
	if _, err := ApplyTokens(nil, Command{Op: "create_token", Token: &rw, Bootstrap: true}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a non-admin bootstrap token: %v", err)
	}
	if _, err := ApplyTokens(nil, Command{Op: "create_token"}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("create_token without a token: %v", err)
	}
}

// applyMeta applies cmds to m in one transaction, as the meta group's fsm does, and
// returns their answers.
func applyMeta(t *testing.T, db *badger.DB, m *Meta, cmds ...Command) []any {
	t.Helper()
	txn := db.NewTransaction(true)
	var out []any
	for i, c := range cmds {
		out = append(out, m.Apply(txn, 1, i, c.Encode()))
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	m.Committed()
	return out
}

func TestMetaKeepsTokensBesideTheTable(t *testing.T) {
	db, m := openMeta(t)
	boot, bootRec, _ := NewToken(RoleAdmin, nil, "boot", time.Now())
	init := Command{Op: "init", Partitions: 8, Groups: 2, Replication: 3, Node: &Node{ID: "n1", HTTPAddr: "h:1", RaftAddr: "r:1"}, Token: &bootRec}
	if res := applyMeta(t, db, m, init); res[0] != nil {
		t.Fatalf("init: %v", res[0])
	}
	if _, ok := m.Tokens().Authenticate(boot); !ok || !m.Tokens().Bootstrapped {
		t.Fatal("the init's bootstrap token is not in the set")
	}
	epoch := m.Table().Epoch
	plain, rec, _ := NewToken(RoleRead, []string{"app/"}, "reader", time.Now())
	changed := m.Changed()
	if res := applyMeta(t, db, m, Command{Op: "create_token", Token: &rec}); res[0] != nil {
		t.Fatalf("create_token: %v", res[0])
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire for a token change")
	}
	if m.Table().Epoch != epoch {
		t.Fatalf("a token command changed the table epoch: %d -> %d", epoch, m.Table().Epoch)
	}
	if _, ok := m.Tokens().Authenticate(plain); !ok {
		t.Fatal("created token does not authenticate")
	}
	// A restart loads both.
	m2, err := NewMeta(db)
	if err != nil || !reflect.DeepEqual(m2.Tokens(), m.Tokens()) || !reflect.DeepEqual(m2.Table(), m.Table()) {
		t.Fatalf("reloaded state differs: %v", err)
	}
	// A snapshot carries both to another node.
	var buf bytes.Buffer
	if err := db.View(func(txn *badger.Txn) error { return m.WriteSnapshot(txn, &buf) }); err != nil {
		t.Fatal(err)
	}
	db2, other := openMeta(t)
	if err := other.Clear(db2); err != nil {
		t.Fatal(err)
	}
	if err := other.LoadSnapshot(db2, &buf); err != nil {
		t.Fatal(err)
	}
	other.Committed()
	if !reflect.DeepEqual(other.Tokens(), m.Tokens()) || !reflect.DeepEqual(other.Table(), m.Table()) {
		t.Fatal("snapshot round trip lost state")
	}
	// Revoked: refused at once, and a failed command in the same batch changes nothing.
	res := applyMeta(t, db, m, Command{Op: "revoke_token", TokenID: rec.ID}, Command{Op: "revoke_token", TokenID: rec.ID})
	if res[0] != nil || !errors.Is(res[1].(error), ErrUnknownToken) {
		t.Fatalf("revoke answers: %v", res)
	}
	if _, ok := m.Tokens().Authenticate(plain); ok {
		t.Fatal("revoked token still authenticates")
	}
	if _, ok := m.Tokens().Authenticate(boot); !ok {
		t.Fatal("revoking one token dropped another")
	}
}

func TestMetaLoadsSnapshotWithoutTokens(t *testing.T) {
	// A snapshot from before tokens: the table section alone.
	tbl, err := Apply(&Table{}, Command{Op: "init", Partitions: 4, Groups: 1, Replication: 1, Node: &Node{ID: "n1", HTTPAddr: "h:1", RaftAddr: "r:1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := EncodeTable(tbl)
	var buf bytes.Buffer
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	buf.Write(b)
	db, m := openMeta(t)
	if err := m.Clear(db); err != nil {
		t.Fatal(err)
	}
	if err := m.LoadSnapshot(db, &buf); err != nil {
		t.Fatalf("old snapshot refused: %v", err)
	}
	m.Committed()
	if m.Table().NumPartitions() != 4 || len(m.Tokens().Tokens) != 0 || m.Tokens().Bootstrapped {
		t.Fatalf("after an old snapshot: table %d partitions, tokens %+v", m.Table().NumPartitions(), m.Tokens())
	}
	// A cut-off tokens section is refused rather than read as none.
	var cut bytes.Buffer
	cut.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	cut.Write(b)
	cut.Write([]byte{0, 0})
	if err := m.LoadSnapshot(db, &cut); err == nil {
		t.Fatal("a truncated tokens section was accepted")
	}
}
