package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ringkv/ringkv/placement"
)

// identityFile is where a node keeps who it is, in its data dir.
const identityFile = "identity.json"

// identity is what a data dir says of its node: the identity made at its first start
// and, once the node is a member, the id of its cluster. Both are sent with every
// join: the meta leader refuses an id held by another identity, and a data dir of
// another cluster.
type identity struct {
	NodeUUID  string `json:"node_uuid"`
	ClusterID string `json:"cluster_id,omitempty"`
}

// ErrOtherCluster: the data dir belongs to another cluster than the one it was
// started against; main exits with status 2.
var ErrOtherCluster = errors.New("data dir belongs to another cluster")

// loadIdentity reads dir's identity, making and writing a new one on the first start.
func loadIdentity(dir string) (id identity, err error) {
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		id.NodeUUID = placement.NewIdentity()
		return id, saveIdentity(dir, id)
	case err != nil:
		return id, err
	}
	if err := json.Unmarshal(b, &id); err != nil || id.NodeUUID == "" {
		return id, fmt.Errorf("%s in %s is damaged (%v): it names this node; restore it, or start with an empty data dir under a new id", identityFile, dir, err)
	}
	return id, nil
}

// saveIdentity writes id atomically and durably: the file is synced, renamed into
// place, and the directory synced, so a crash leaves the old file or the new one, and
// never loses one the cluster already bound this node to (a node whose identity file
// vanished would be refused as a stranger).
func saveIdentity(dir string, id identity) error {
	b, _ := json.MarshalIndent(id, "", "  ")
	tmp := filepath.Join(dir, identityFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, identityFile)); err != nil {
		return err
	}
	return SyncDir(dir)
}

// privateDir makes dir, or narrows an existing one, to its owner alone (0700, as etcd
// keeps its data dir): it holds the node's identity and, in the meta group's log and
// state, every member's, besides the data itself. Files in it keep their modes; the
// directory is what keeps other users out.
func privateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			// A directory this process does not own (a mounted volume): say so, and go on.
			log.Warn("data dir is readable by other users and cannot be narrowed; restrict it to the node's user",
				"dir", dir, "mode", st.Mode().Perm().String(), "err", err)
			return nil
		}
		log.Info("data dir narrowed to its owner", "dir", dir, "was", st.Mode().Perm().String())
	}
	return nil
}
