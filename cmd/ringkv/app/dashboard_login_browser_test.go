package app

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardLoginBrowser: with auth on, the dashboard in a real browser asks for a
// token, refuses a bad one, keeps a good one where the page's scripts cannot read it,
// acts with that token's rights (a read token's put is refused, and the overview's
// admin calls too), and logs out.
func TestDashboardLoginBrowser(t *testing.T) {
	ctx := newBrowser(t)
	c := startCluster(t, 1, func(cfg *Config) { cfg.Auth = true }, goClientIsPeer)
	b, err := os.ReadFile(filepath.Join(c.nodes[0].cfg.DataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(b))
	status, _, resp := c.do(0, "POST", "/admin/tokens", `{"role":"read","name":"browser"}`, bearer(admin)...)
	var reader tokenJSON
	if status != http.StatusCreated || json.Unmarshal(resp, &reader) != nil {
		t.Fatalf("create a read token: %d %s", status, resp)
	}

	browse(t, ctx, 20*time.Second, "open the dashboard",
		chromedp.Navigate(c.addr(0)+"/ui/"), chromedp.WaitVisible(byTestID("login-form")))
	if p := eval[string](t, ctx, `location.pathname`); p != "/ui/login" {
		t.Fatalf("the dashboard without a session is at %s, not the login page", p)
	}
	browse(t, ctx, 20*time.Second, "log in with a bad token",
		chromedp.SendKeys(byTestID("login-token"), "rkv_0000000000000000_"+strings.Repeat("A", 43)),
		chromedp.Click(byTestID("login-submit")),
		chromedp.WaitVisible(byTestID("login-error")))
	browse(t, ctx, 20*time.Second, "log in with a read token",
		chromedp.SendKeys(byTestID("login-token"), reader.Token),
		chromedp.Click(byTestID("login-submit")),
		chromedp.WaitVisible(byTestID("health-summary")), // the overview's
		chromedp.WaitVisible(byTestID("logout")))
	if cookies := eval[string](t, ctx, `document.cookie`); strings.Contains(cookies, "ringkv_session") || strings.Contains(cookies, reader.Token) {
		t.Fatalf("the page's scripts can read the session: %q", cookies)
	}
	screenshot(t, ctx, "logged-in.png")
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="error-status"]').length`); n == 0 {
		t.Error("the overview of a read token shows no refused admin call")
	}

	browse(t, ctx, 20*time.Second, "put with a read token",
		chromedp.Navigate(c.addr(0)+"/ui/keys"),
		chromedp.SendKeys(byTestID("put-key"), "browser/denied"),
		chromedp.SendKeys(byTestID("put-value"), "v"),
		chromedp.Click(byTestID("put-submit")),
		chromedp.WaitVisible(byTestID("error")))
	if got := eval[string](t, ctx, `document.querySelector('[data-testid="error-status"]').textContent`); !strings.Contains(got, "403") {
		t.Fatalf("a read token's put shows %q, want a 403", got)
	}
	if status, _, _ := c.do(0, "GET", "/kv/browser/denied", "", bearer(admin)...); status != http.StatusNotFound {
		t.Fatalf("the refused put wrote the key: GET answers %d", status)
	}

	browse(t, ctx, 20*time.Second, "log out",
		chromedp.Click(byTestID("logout")),
		chromedp.WaitVisible(byTestID("login-form")))
	browse(t, ctx, 20*time.Second, "the dashboard after logging out",
		chromedp.Navigate(c.addr(0)+"/ui/"), chromedp.WaitVisible(byTestID("login-form")))
}
