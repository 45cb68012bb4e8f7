package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringkv/ringkv/placement"
)

// AdminTokenFile is where the node that creates a cluster keeps its bootstrap admin
// token, in its data dir (mode 0600; the data dir itself is 0700). It is written once
// and never overwritten, and never logged: an operator reads it (cat) to make the
// cluster's other tokens and may delete it then.
const AdminTokenFile = "admin.token"

// adminTokenFile is placement.AdminTokenStore over <data-dir>/admin.token.
type adminTokenFile struct{ dir string }

var _ placement.AdminTokenStore = adminTokenFile{}

func (f adminTokenFile) path() string { return filepath.Join(f.dir, AdminTokenFile) }

// Token returns the kept token, making and writing it when there is none: written to
// a temporary file, synced, then linked into place (a link never replaces a file, so
// a token someone already holds is never overwritten), and the directory synced.
func (f adminTokenFile) Token() (string, error) {
	b, err := os.ReadFile(f.path())
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	token, _, err := placement.NewToken(placement.RoleAdmin, nil, "", time.Now())
	if err != nil {
		return "", err
	}
	tmp := f.path() + ".tmp"
	_ = os.Remove(tmp) // left by a crash before the link
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	_, err = out.WriteString(token + "\n")
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, f.path())
	}
	_ = os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) { // written meanwhile: that one counts
		return f.Token()
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", f.path(), err)
	}
	return token, SyncDir(f.dir)
}

// Discard removes the kept token: the cluster was bootstrapped with another node's.
func (f adminTokenFile) Discard() error {
	if err := os.Remove(f.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
