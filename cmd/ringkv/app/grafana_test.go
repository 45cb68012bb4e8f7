package app

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/ringkv/ringkv/web"
)

// TestGrafanaDashboardQueriesExportedMetrics checks that every metric the Grafana
// dashboard (web/grafana/ringkv-dashboard.json) queries is one a running node exports,
// so a renamed metric cannot leave a dashboard panel silently empty.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	want := grafanaMetrics(t, web.GrafanaDashboard)
	if len(want) < 10 {
		t.Fatalf("only %d metrics found in the dashboard: %v", len(want), want)
	}
	// One node leads every group, so it reports the leader-only series too.
	c := startCluster(t, 1)
	c.mustPut(0, "grafana", "1")
	c.get(0, "grafana", "")
	eventually(t, 20*time.Second, "every dashboard metric exported", func() error {
		status, _, body := c.do(0, "GET", "/metrics", "")
		if status != 200 {
			return fmt.Errorf("/metrics: %d", status)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			return err
		}
		var missing []string
		for _, name := range want {
			if _, ok := families[name]; ok {
				continue
			}
			// A histogram is exported as one family; queries name its series.
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
			if f, ok := families[base]; !ok || f.GetType().String() != "HISTOGRAM" {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not exported: %v", missing)
		}
		return nil
	})
}

// grafanaMetrics returns the metric names in a dashboard's panel queries and template
// variables.
func grafanaMetrics(t *testing.T, dashboard []byte) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	names := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range promqlMetrics(tg.Expr) {
				names[n] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		if m := labelValuesRE.FindStringSubmatch(v.Definition); m != nil {
			names[m[1]] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

var (
	labelValuesRE = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	// What is not a metric name: strings, label matchers, range selectors, numbers and
	// durations, and the label lists of by / without / on / ignoring / group_left /
	// group_right.
	promqlNoise = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|\b\d[\w.]*|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
)

var promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "by": true, "without": true}

// promqlMetrics returns the metric names in a PromQL expression: the identifiers left
// once the noise is cut out that are neither functions (followed by "(") nor keywords.
// It is no parser, but the dashboard's queries are plain enough, and
// TestGrafanaPromqlMetrics pins what it sees.
func promqlMetrics(expr string) []string {
	var out []string
	for _, tok := range promqlIdent.FindAllString(promqlNoise.ReplaceAllString(expr, " "), -1) {
		if tok = strings.TrimSpace(tok); strings.HasSuffix(tok, "(") || promqlKeywords[strings.ToLower(tok)] {
			continue
		}
		out = append(out, tok)
	}
	return out
}

func TestGrafanaPromqlMetrics(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`raft_term{job=~"$job"}`, []string{"raft_term"}},
		{`count(max by (group) (raft_state{job=~"$job"}) < 2) or vector(0)`, []string{"raft_state"}},
		{`histogram_quantile(0.99, sum by (le, op) (rate(raft_request_latency_seconds_bucket{job=~"a|b"}[$__rate_interval])))`, []string{"raft_request_latency_seconds_bucket"}},
		{`max by (group, instance) (raft_committed_index - raft_applied_index)`, []string{"raft_committed_index", "raft_applied_index"}},
		{`sum without (code) (rate(x_total{code=~"5.."}[5m] offset 1h)) / on (route) group_left (a) y`, []string{"x_total", "y"}},
	}
	for _, tt := range tests {
		if got := promqlMetrics(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.expr, got, tt.want)
		}
	}
}
