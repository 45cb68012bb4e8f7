package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitReplicated waits until every group has a leader and 3 voting replicas.
func (c *cluster) waitReplicated() {
	c.t.Helper()
	eventually(c.t, 60*time.Second, "every group has 3 voters", func() error {
		resp, err := client.Get(c.procs[0].httpURL + "/admin/groups")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var gs struct {
			Groups []struct {
				ID       int    `json:"id"`
				Leader   string `json:"leader"`
				Replicas []struct {
					Voter bool `json:"voter"`
				} `json:"replicas"`
			} `json:"groups"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&gs); err != nil {
			return err
		}
		if len(gs.Groups) == 0 {
			return fmt.Errorf("no groups")
		}
		for _, g := range gs.Groups {
			voters := 0
			for _, r := range g.Replicas {
				if r.Voter {
					voters++
				}
			}
			if g.Leader == "" || voters != 3 {
				return fmt.Errorf("group %d: leader %q, %d voters", g.ID, g.Leader, voters)
			}
		}
		return nil
	})
}

var statusNote = regexp.MustCompile(`\s+#\s*(\d{3})\b.*$`)

// TestReadmeExamples starts the README's 3-node cluster and runs the README's curl
// block as one shell script, checking each annotated status.
func TestReadmeExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the README examples (apt-get install curl)")
	}
	c := startReadmeCluster(t)
	for i := range c.procs {
		c.waitReady(i)
	}
	c.waitReplicated()
	var script strings.Builder
	script.WriteString("set -u\nbody=$(mktemp)\n")
	checked := 0
	for n, line := range readmeBlock(t, "curl") {
		line = c.ports.rewrite(t, line)
		m := statusNote.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(line, "curl ") {
			fmt.Fprintf(&script, "%s\nif [ $? -ne 0 ]; then echo 'README curl block line %d failed'; exit 1; fi\n", line, n+1)
			continue
		}
		cmd := strings.TrimSpace(line[:len(line)-len(m[0])])
		fmt.Fprintf(&script, "got=$(%s -s -o \"$body\" -w '%%{http_code}')\n", cmd)
		fmt.Fprintf(&script, "if [ \"$got\" != %s ]; then echo \"README curl block line %d: want %s, got $got: $(cat \"$body\")\"; echo %s; exit 1; fi\n",
			m[1], n+1, m[1], shellQuote(cmd))
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d annotated curl examples found in the README", checked)
	}
	out, err := exec.Command("bash", "-c", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("README examples: %v\n%s", err, out)
	}
	t.Logf("%d README curl examples answered as documented", checked)

	// The examples' end state is what they say it is.
	resp, err := client.Get(c.procs[2].httpURL + "/kv/once")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET once after the examples: %v %v", resp, err)
	}
	resp.Body.Close()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
