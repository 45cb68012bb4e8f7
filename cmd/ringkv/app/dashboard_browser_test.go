package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// The dashboard in a real browser (headless Chromium, driven over the DevTools
// protocol by chromedp) against a real 3-node cluster. Screenshots are saved with
// t.ArtifactDir (kept with `go test -artifacts -outputdir DIR`); RINGKV_DASHBOARD_PNG
// names a file to save the overview's screenshot to as well (docs/dashboard.png).

// newBrowser starts headless Chromium. Without one it fails under CI (CI=true, which
// installs Debian's chromium package) and skips elsewhere.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (Debian package chromium): %v", err)
		}
		t.Skipf("chromium is not installed (apt-get install -y chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root (containers)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start it now, so its start-up counts against no step's deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// browse runs steps, each bounded by the deadline.
func browse(t *testing.T, ctx context.Context, deadline time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript condition in the page until it holds or the deadline
// passes.
func waitFor(t *testing.T, ctx context.Context, deadline time.Duration, what, js string) {
	t.Helper()
	poll := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(deadline))
	if _, err := chromedp.Run(ctx, poll); err != nil {
		t.Fatalf("%s: not true within %v: %v", what, deadline, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string, extra ...string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	for _, path := range append([]string{filepath.Join(t.ArtifactDir(), name)}, extra...) {
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
}

func byTestID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf("[data-testid=%q]", id)) }

// allUpAndLed: three node rows, all up; every group row names a leader.
const allUpAndLed = `(() => {
	const rows = [...document.querySelectorAll('[data-testid^="node-row-"]')];
	const leaders = [...document.querySelectorAll('[data-testid^="group-leader-"]')];
	return rows.length === 3 && rows.every(r => r.dataset.state === "up") &&
		leaders.length > 1 && leaders.every(l => /^n[123]$/.test(l.textContent.trim()));
})()`

func TestDashboardBrowser(t *testing.T) {
	ctx := newBrowser(t)
	c := startCluster(t, 3)
	for i := range 12 {
		c.mustPut(i%3, fmt.Sprintf("seed/%02d", i), "some value")
	}

	t.Run("overview shows 3 nodes and a leader for every group", func(t *testing.T) {
		browse(t, ctx, 20*time.Second, "open the overview",
			chromedp.Navigate(c.addr(0)+"/ui/"), chromedp.WaitVisible(byTestID("nodes-table")))
		waitFor(t, ctx, 20*time.Second, "3 nodes up, every group led", allUpAndLed)
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid^="group-row-"]').length`); n != DefaultGroups+1 {
			t.Errorf("%d group rows, want %d (meta and the data groups)", n, DefaultGroups+1)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid^="arc-"][tabindex="0"]').length`); n != DefaultPartitions {
			t.Errorf("%d focusable ring arcs, want %d", n, DefaultPartitions)
		}
		var extra []string
		if p := os.Getenv("RINGKV_DASHBOARD_PNG"); p != "" {
			extra = append(extra, p)
		}
		screenshot(t, ctx, "overview.png", extra...)
	})

	t.Run("the overview renders with JavaScript off", func(t *testing.T) {
		tab, cancel := chromedp.NewContext(ctx) // a second tab of the same browser
		defer cancel()
		if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		browse(t, tab, 20*time.Second, "open the overview without JavaScript",
			chromedp.Navigate(c.addr(1)+"/ui/"), chromedp.WaitReady(byTestID("groups-table")))
		rows, err := chromedp.Run(tab, chromedp.Nodes(chromedp.CSSAll(`[data-testid^="node-row-"]`)))
		if err != nil || len(rows) != 3 {
			t.Fatalf("%d node rows (%v)", len(rows), err)
		}
		// The script would have replaced this text; without it the page says how old it is.
		status, err := chromedp.Run(tab, chromedp.TextContent(byTestID("live-status")))
		if err != nil || !strings.Contains(status, "reload the page") {
			t.Errorf("live status %q (%v)", status, err)
		}
	})

	// The key browser goes first, while every group has its three replicas: what
	// the cluster does after a node stops is not the dashboard's to test.
	t.Run("a key put through the key browser is readable by curl", func(t *testing.T) {
		const key, value = "browser/greeting", "hello from chromium"
		browse(t, ctx, 20*time.Second, "put through the form",
			chromedp.Navigate(c.addr(0)+"/ui/keys"),
			chromedp.SendKeys(byTestID("put-key"), key),
			chromedp.SendKeys(byTestID("put-value"), value),
			chromedp.Click(byTestID("put-submit")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="value-text"], [data-testid="error"]`)))
		if msg := eval[string](t, ctx, `document.querySelector('[data-testid="error"]')?.innerText ?? ""`); msg != "" {
			t.Fatalf("the put failed: %s", strings.Join(strings.Fields(msg), " "))
		}
		if got := eval[string](t, ctx, `document.querySelector('[data-testid="value-text"]').textContent`); got != value {
			t.Errorf("the key's page shows %q", got)
		}
		screenshot(t, ctx, "key.png")
		status, kv := c.get(1, key, "")
		if status != http.StatusOK || kv.Value != value {
			t.Fatalf("GET /kv/%s on n2: %d %q", key, status, kv.Value)
		}

		// And deleted through it, after the confirmation step.
		deleteThroughForm(t, ctx)
		if status, _ := c.get(1, key, ""); status != http.StatusNotFound {
			t.Fatalf("after the delete GET /kv/%s answers %d", key, status)
		}
	})

	// Issue #12: a key that is not UTF-8 used to be listed as U+FFFD, so its link led
	// to a 404 and it could not be deleted from the dashboard.
	t.Run("a key that is not UTF-8 is opened and deleted from the key browser", func(t *testing.T) {
		c.mustPut(0, "raw/a%FE", "binary key")
		browse(t, ctx, 20*time.Second, "open the key from the listing",
			chromedp.Navigate(c.addr(0)+"/ui/keys?prefix=raw/"),
			chromedp.Click(byTestID("key-link")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="value-text"], [data-testid="error"]`)))
		if msg := eval[string](t, ctx, `document.querySelector('[data-testid="error"]')?.innerText ?? ""`); msg != "" {
			t.Fatalf("the key's page shows an error: %s", strings.Join(strings.Fields(msg), " "))
		}
		if got := eval[string](t, ctx, `document.querySelector('[data-testid="value-text"]').textContent`); got != "binary key" {
			t.Errorf("the key's page shows %q", got)
		}
		deleteThroughForm(t, ctx)
		if status, _ := c.get(1, "raw/a%FE", ""); status != http.StatusNotFound {
			t.Fatalf("after the delete GET /kv/raw/a%%FE answers %d", status)
		}
	})

	t.Run("a stopped node is marked down within 10s without a reload", func(t *testing.T) {
		browse(t, ctx, 20*time.Second, "open the overview",
			chromedp.Navigate(c.addr(0)+"/ui/"), chromedp.WaitVisible(byTestID("node-row-n3")))
		// A marker in the page's JavaScript state survives only if the page is not
		// reloaded: the change must come from the live refresh.
		eval[bool](t, ctx, `window.ringkvNoReload = true`)
		stopped := time.Now()
		c.stop(2)
		waitFor(t, ctx, 10*time.Second, "n3 marked down",
			`document.querySelector('[data-testid="node-row-n3"]')?.dataset.state === "down"`)
		t.Logf("n3 marked down %v after it stopped", time.Since(stopped).Round(time.Millisecond))
		if !eval[bool](t, ctx, `window.ringkvNoReload === true`) {
			t.Fatal("the page was reloaded")
		}
		if got := eval[string](t, ctx, `document.querySelector('[data-testid="health-nodes-down"]').textContent`); got != "1" {
			t.Errorf("nodes down tile says %q", got)
		}
		screenshot(t, ctx, "node-down.png")
	})
}

// deleteThroughForm deletes the key the browser shows through the key page's form,
// after its confirmation step, and fails on an error shown.
func deleteThroughForm(t *testing.T, ctx context.Context) {
	t.Helper()
	browse(t, ctx, 20*time.Second, "delete through the form",
		chromedp.Click(byTestID("delete-link")),
		chromedp.WaitVisible(byTestID("delete-confirm")),
		chromedp.Click(byTestID("delete-confirm")),
		chromedp.Click(byTestID("delete-submit")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"], [data-testid="error"]`)))
	if msg := eval[string](t, ctx, `document.querySelector('[data-testid="error"]')?.innerText ?? ""`); msg != "" {
		t.Fatalf("the delete failed: %s", strings.Join(strings.Fields(msg), " "))
	}
}
