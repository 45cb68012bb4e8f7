package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsPassPromlint scrapes the binary's /metrics as Prometheus would: it must
// pass promlint (what `promtool check metrics` runs), and every group's request
// latency series must exist before the first request, so dashboards show 0 rather
// than "no data".
func TestMetricsPassPromlint(t *testing.T) {
	c := startProcCluster(t, 1)
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(c.procs[0].httpURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
		}
		problems, err := promlint.New(strings.NewReader(string(body))).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
		return string(body)
	}

	body := scrape()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]bool{}
	for _, m := range families["raft_term"].GetMetric() {
		groups[m.GetLabel()[0].GetValue()] = true
	}
	if len(groups) < 2 {
		t.Fatalf("raft_term names %d groups, want the meta group and the data groups", len(groups))
	}
	for g := range groups {
		// A single node elected itself in every group: one election each.
		if series := fmt.Sprintf(`ringkv_raft_elections_total{group="%s"} 1`, g); !strings.Contains(body, series) {
			t.Errorf("a fresh single node lacks %s", series)
		}
		for _, op := range []string{"put", "delete", "get", "list"} {
			series := fmt.Sprintf(`raft_request_latency_seconds_count{group="%s",op="%s"} 0`, g, op)
			if !strings.Contains(body, series) {
				t.Errorf("a fresh node lacks %s", series)
			}
		}
	}
	req, _ := http.NewRequest(http.MethodPut, c.procs[0].httpURL+"/kv/m", strings.NewReader("1"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT /kv/m: %s", resp.Status)
	}
	if !strings.Contains(scrape(), "ringkv_group_commit_writes_total") {
		t.Error("no ringkv_group_commit_writes_total after a write")
	}
}
