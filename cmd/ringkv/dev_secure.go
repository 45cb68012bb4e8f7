package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// devAccess is how `ringkv dev` itself reaches its nodes: plain HTTP, or with
// --secure the cluster's CA and the admin client certificate it made.
type devAccess struct {
	conn     connFlags
	certsDir string // --secure: the root of the certificates (devSecure)
}

// client is an HTTP client for the nodes.
func (a devAccess) client(timeout time.Duration) (*http.Client, error) {
	t, err := a.conn.transport()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t, Timeout: timeout}, nil
}

// devSecure makes (or finds, in a kept --data-dir) a throwaway CA and the nodes' and an
// admin client's certificates under dir/certs, and gives each node its --certs-dir.
func devSecure(dir string, nodes []*devNode, stderr io.Writer) (devAccess, error) {
	certs := filepath.Join(dir, "certs")
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.id
		n.extraArgs = append(n.extraArgs, "--certs-dir", filepath.Join(certs, n.id))
	}
	written, err := ensureClusterCerts(clusterCertsSpec{dir: certs, nodes: ids}, time.Now())
	if err != nil {
		return devAccess{}, fmt.Errorf("dev --secure: %w", err)
	}
	if len(written) > 0 {
		fmt.Fprintf(stderr, "ringkv dev: made a throwaway CA and certificates in %s\n", certs)
	}
	return devAccess{conn: connFlags{certsDir: filepath.Join(certs, clientDirName)}, certsDir: certs}, nil
}

// devAdminToken is the bootstrap admin token node1 wrote when it created the cluster.
func devAdminToken(nodes []*devNode) (string, error) {
	b, err := os.ReadFile(filepath.Join(nodes[0].dataDir, "admin.token"))
	return strings.TrimSpace(string(b)), err
}

// devPrintSecureTry prints how to reach a secure dev cluster: curl with the CA and
// the admin token, and the CLI with the admin client certificate.
func devPrintSecureTry(w io.Writer, nodes []*devNode, access devAccess) {
	first, last := access.conn.base(nodes[0].httpAddr), access.conn.base(nodes[len(nodes)-1].httpAddr)
	ca := filepath.Join(access.certsDir, caCertFile)
	token, err := devAdminToken(nodes)
	if err != nil {
		token = "(not found: " + err.Error() + ")"
	}
	fmt.Fprintf(w, "\nSecure: TLS on both ports, every request needs a token or a client certificate.\n")
	fmt.Fprintf(w, "  CA:          %s\n  admin token: %s\n  admin cert:  %s\n", ca, token, access.conn.certsDir)
	fmt.Fprintf(w, "\nTry:\n  export RINGKV_TOKEN=%s\n", token)
	fmt.Fprintf(w, "  curl --cacert %s -H \"Authorization: Bearer $RINGKV_TOKEN\" -X PUT %s/kv/hello -d world\n", ca, first)
	fmt.Fprintf(w, "  curl --cacert %s -H \"Authorization: Bearer $RINGKV_TOKEN\" %s/kv/hello\n", ca, last)
	fmt.Fprintf(w, "  ringkv get hello --addr %s --certs-dir %s\n", first, access.conn.certsDir)
	fmt.Fprintf(w, "  ringkv token create --role read --prefix app/ --addr %s --certs-dir %s\n\nCtrl-C stops every node.\n", first, access.conn.certsDir)
}
