package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ringkv/ringkv/placement"
)

// httpProber asks a node's /internal/status for its replicas' state.
type httpProber struct{ client *http.Client }

func newProber() *httpProber {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 8
	return &httpProber{client: &http.Client{Transport: t, Timeout: 2 * time.Second}}
}

func (p *httpProber) Probe(ctx context.Context, httpAddr string) (placement.NodeReport, error) {
	var rep placement.NodeReport
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/internal/status", nil)
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
	return rep, err
}
