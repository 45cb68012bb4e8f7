package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringkv/ringkv/openapi"
)

// waitReplicated waits until every group has a leader and 3 voting replicas, and the
// meta group a replica on every node (5 of them voters in a cluster of 5 or more).
func (c *cluster) waitReplicated() {
	c.t.Helper()
	eventually(c.t, 60*time.Second, "every group has 3 voters", func() error {
		resp, err := api(c.t, c.procs[0].httpURL).ListGroupsWithResponse(context.Background())
		if err != nil {
			return err
		}
		if resp.JSON200 == nil || len(resp.JSON200.Groups) == 0 {
			return fmt.Errorf("no groups: %s", resp.Status())
		}
		nodes, err := api(c.t, c.procs[0].httpURL).ListNodesWithResponse(context.Background())
		if err != nil || nodes.JSON200 == nil {
			return fmt.Errorf("listing nodes: %v", err)
		}
		members := 0 // the meta group has a replica on each
		for _, n := range nodes.JSON200.Nodes {
			if n.State != openapi.Removed {
				members++
			}
		}
		for _, g := range resp.JSON200.Groups {
			voters := 0
			for _, r := range g.Replicas {
				if r.Voter {
					voters++
				}
			}
			replicas, wantVoters := 3, 3
			if g.Id == 0 { // the meta group has every member: 3 or 5 voters, the others non-voters
				replicas = members
				if members >= 5 {
					wantVoters = 5
				}
			}
			if g.Leader == "" || voters != wantVoters || len(g.Replicas) != replicas {
				return fmt.Errorf("group %d: leader %q, %d voters of %d replicas", g.Id, g.Leader, voters, len(g.Replicas))
			}
		}
		return nil
	})
}

var (
	statusNote = regexp.MustCompile(`\s+#\s*(\d{3})\b.*$`)                  // curl block: "# 201 created"
	exitNote   = regexp.MustCompile(`\s+#\s*(\d)\b(?:.*?prints: (.*)|.*)$`) // cli block: "# 1 prints: 404"
)

// TestReadmeExamples starts the README's 3-node cluster and runs the README's curl
// block as one shell script, checking each annotated status; then, on an emptied
// store, the block that does the same with the ringkv command, checking each exit
// status and the text it says is printed.
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
			writeMustSucceed(&script, "curl", n, line)
			continue
		}
		cmd := strings.TrimSpace(line[:len(line)-len(m[0])])
		fmt.Fprintf(&script, "got=$(%s -s -o \"$body\" -w '%%{http_code}')\n", cmd)
		fmt.Fprintf(&script, "if [ \"$got\" != %s ]; then echo \"README curl block line %d: want %s, got $got: $(cat \"$body\")\"; echo %s; exit 1; fi\n",
			m[1], n+1, m[1], shellQuote(cmd))
		checked++
	}
	runBlock(t, "curl", script.String(), checked, 20)
	// The examples' end state is what they say it is.
	if status, got, err := readValue(t, c.procs[2].httpURL, "once"); err != nil || status != http.StatusOK || got != "1" {
		t.Fatalf("GET once after the examples: %d %q %v", status, got, err)
	}

	deleteEverything(t, c.procs[0].httpURL)
	script.Reset()
	script.WriteString("set -u\nbody=$(mktemp)\n")
	checked = 0
	for n, line := range readmeBlock(t, "cli") {
		line = strings.ReplaceAll(c.ports.rewrite(t, line), "./bin/ringkv", c.bin)
		m := exitNote.FindStringSubmatch(line)
		if m == nil {
			writeMustSucceed(&script, "cli", n, line)
			continue
		}
		cmd := strings.TrimSpace(line[:len(line)-len(m[0])])
		fmt.Fprintf(&script, "{ %s ; } >\"$body\" 2>&1; got=$?\n", cmd)
		fmt.Fprintf(&script, "if [ \"$got\" != %s ]; then echo \"README cli block line %d: want exit %s, got $got: $(cat \"$body\")\"; echo %s; exit 1; fi\n",
			m[1], n+1, m[1], shellQuote(cmd))
		if want := strings.TrimSpace(m[2]); want != "" {
			fmt.Fprintf(&script, "if ! grep -qF -- %s \"$body\"; then echo \"README cli block line %d: output lacks %s: $(cat \"$body\")\"; exit 1; fi\n",
				shellQuote(want), n+1, shellQuote(want))
		}
		checked++
	}
	runBlock(t, "cli", script.String(), checked, 20)
	if status, got, err := readValue(t, c.procs[1].httpURL, "once"); err != nil || status != http.StatusOK || got != "1" {
		t.Fatalf("GET once after the cli examples: %d %q %v", status, got, err)
	}
}

// writeMustSucceed adds an unannotated README line to script: it must exit 0.
func writeMustSucceed(script *strings.Builder, block string, n int, line string) {
	fmt.Fprintf(script, "%s\nif [ $? -ne 0 ]; then echo 'README %s block line %d failed'; exit 1; fi\n", line, block, n+1)
}

func runBlock(t *testing.T, block, script string, checked, atLeast int) {
	t.Helper()
	if checked < atLeast {
		t.Fatalf("only %d annotated examples found in the README's %s block", checked, block)
	}
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("README %s examples: %v\n%s", block, err, out)
	}
	t.Logf("%d README %s examples answered as documented", checked, block)
}

// deleteEverything empties the store through the generated client, so a README block
// starts from what a new cluster holds.
func deleteEverything(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	c := api(t, url)
	keysOnly := true
	resp, err := c.ListKeysWithResponse(ctx, &openapi.ListKeysParams{KeysOnly: &keysOnly})
	if err != nil || resp.JSON200 == nil {
		t.Fatalf("listing keys: %v %v", resp, err)
	}
	for _, kv := range resp.JSON200.Items {
		if r, err := c.DeleteKeyWithResponse(ctx, kv.RawKey(), nil); err != nil || r.StatusCode() != http.StatusOK {
			t.Fatalf("deleting %q: %v %v", kv.RawKey(), r, err)
		}
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
