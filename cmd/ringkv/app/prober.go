package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ringkv/ringkv/placement"
)

// httpProber asks a node's /internal/status for its replicas' state, through the
// cluster client.
type httpProber struct{ client *clusterClient }

// probeTimeout bounds one probe or leader-transfer request, answer included.
const probeTimeout = 2 * time.Second

func (p *httpProber) Probe(ctx context.Context, httpAddr string) (placement.NodeReport, error) {
	var rep placement.NodeReport
	nonce := placement.NewNonce()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.client.URL(httpAddr, "/internal/status?nonce="+nonce), nil)
	if err != nil {
		return rep, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return rep, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("probe %s: %s", httpAddr, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&rep)
	rep.Nonce = nonce // the proof counts only over the nonce this probe chose
	return rep, err
}

// TransferLeader asks the node at httpAddr (the group's leader) to hand the group's
// leadership to node, through the admin API.
func (p *httpProber) TransferLeader(ctx context.Context, httpAddr string, group uint32, node string) error {
	body, _ := json.Marshal(map[string]string{"node": node})
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	url := p.client.URL(httpAddr, fmt.Sprintf("/admin/groups/%d/leader", group))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("transfer leader of group %d at %s: %s %s", group, httpAddr, resp.Status, b)
	}
	return nil
}
