package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

var update = flag.Bool("update", false, "rewrite docs/panel.png from the browser test")

// browser starts Debian's headless Chromium for one test. It accepts the
// box's certificate by its key, as a browser does once the IT person has
// checked the fingerprint, and fails the test at the end if a page broke
// its own Content-Security-Policy.
func browser(t *testing.T, e *env) context.Context {
	t.Helper()
	path := testenv.NeedCommand(t, "chromium")
	spki := sha256.Sum256(e.srv.Cert().TLS.Leaf.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1200, 1000),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	var mu sync.Mutex
	var violations []string
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		if le, ok := ev.(*cdplog.EventEntryAdded); ok && strings.Contains(le.Entry.Text, "Content Security Policy") {
			mu.Lock()
			violations = append(violations, le.Entry.Text)
			mu.Unlock()
		}
	}))
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(violations) > 0 {
			t.Errorf("the pages broke their Content-Security-Policy: got %q; want nothing refused", violations)
		}
	})
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser steps, failing the test at the first error.
func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// value runs one browser step that returns a value.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type css = chromedp.CSS

func TestBrowserPanel(t *testing.T) {
	e := newEnv(t)
	e.staff() // the password is set; the browser logs in with it
	ctx := browser(t, e)
	do(t, ctx, "log in",
		chromedp.Navigate(e.lan.URL+"/"),
		chromedp.WaitVisible(css(`input[name="password"]`)),
		chromedp.SendKeys(css(`input[name="password"]`), "correct horse battery"),
		chromedp.Submit(css(`input[name="password"]`)),
		chromedp.WaitVisible(css(`#panel`)),
	)
	headline := value(t, ctx, chromedp.Text(css(`#headline`)))
	amber := value(t, ctx, chromedp.AttributeValue(css(`.light.amber`), "data-state")).Value
	animation := value(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('.light.amber')).animationName`))
	if !strings.Contains(headline, "Swap the backup drive") || amber != "slow" || animation != "blink" {
		t.Errorf("got headline %q, amber %q blinking %q; want the swap, amber slow, animation blink", headline, amber, animation)
	}
	if *update {
		screenshot(t, ctx)
	}

	// Son is pulled out without ejecting: after the next poll the panel
	// blinks amber fast and the calendar shows today's removal.
	if err := e.box.Unplug("Son"); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "the drive pulled shows",
		chromedp.WaitVisible(css(`.light.amber.fast[data-state="fast"]`)),
		chromedp.WaitVisible(css(`.light.green.off`)),
		chromedp.WaitVisible(css(`#calendar td.today .move.remove`)),
		chromedp.WaitVisible(css(`tr[data-drive="Son"][data-where="offsite"]`)),
		chromedp.WaitVisible(css(`#inbox[data-inbox=""]`)),
	)
	headline = value(t, ctx, chromedp.Text(css(`#headline`)))
	if !strings.Contains(headline, "Put Father in the box") {
		t.Errorf("got headline %q; want it to ask for Father", headline)
	}

	// Acknowledge from the page: the box records it, the buzzer goes
	// silent on the page.
	do(t, ctx, "acknowledge",
		chromedp.Click(css(`#ack`)),
		chromedp.WaitVisible(css(`#notice.done`)),
		chromedp.WaitVisible(css(`[data-buzzer="silent"]`)),
	)
	notice := value(t, ctx, chromedp.Text(css(`#notice`)))
	acts := e.box.Acts()
	if len(acts) != 1 || acts[0].Name != web.ActAcknowledge || acts[0].By.Via != "lan" {
		t.Errorf("got acts %+v; want one acknowledge from the LAN", acts)
	}
	if !strings.Contains(notice, "Acknowledged") {
		t.Errorf("got notice %q; want it to confirm", notice)
	}

	// Plug the expected drive with the page's own control.
	do(t, ctx, "plug Father",
		chromedp.Click(css(`li[data-sim="Father"] button`)),
		chromedp.WaitVisible(css(`.light.green.slow`)),
		chromedp.WaitVisible(css(`#calendar td.today .move.insert`)),
		chromedp.WaitVisible(css(`#inbox[data-inbox="Father"]`)),
	)

	// The month's custody page for printing keeps its inline style: the
	// policy allows exactly that style by its hash.
	do(t, ctx, "custody page to print",
		chromedp.Navigate(e.lan.URL+"/custody/export?month=2026-11&format=html"),
		chromedp.WaitVisible(css(`p.chain`)),
	)
	border := value(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('p.chain')).borderTopStyle`))
	if border != "solid" {
		t.Errorf("custody page: got border %q; want its inline style applied (solid)", border)
	}
}

func TestBrowserSupportRefused(t *testing.T) {
	e := newEnv(t)
	// The browser dials from 127.0.0.1: make that a support laptop.
	e.peers["127.0.0.1"] = web.Caller{Node: "helpdesk-laptop.clinic.ts.net", Tags: []string{"tag:support"}}
	ctx := browser(t, e)
	do(t, ctx, "support asks for a backup",
		chromedp.Navigate(e.tail.URL+"/"),
		chromedp.WaitVisible(css(`#panel`)),
		chromedp.WaitVisible(css(`[data-consent="closed"]`)),
		chromedp.Click(css(`button[data-act="backup"]`)),
		chromedp.WaitVisible(css(`#notice.refused`)),
	)
	notice := value(t, ctx, chromedp.Text(css(`#notice`)))
	if !strings.Contains(notice, "press and hold the button for 3 seconds") {
		t.Errorf("got notice %q; want the reason with what to do", notice)
	}
	if n := len(e.box.Acts()); n != 0 {
		t.Errorf("got %d actions; want none", n)
	}
	recs, err := e.audit.Tail(20)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Action == "backup" && !r.Allowed && r.Role == "support" && strings.Contains(r.Why, "support window") {
			found = true
		}
	}
	if !found {
		t.Errorf("audit: no refused backup by support in %+v", recs)
	}
}

// screenshot writes docs/panel.png from the page as it stands, with
// blinking paused so the lights show lit.
func screenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	value(t, ctx, chromedp.Evaluate[bool](`(function(){document.styleSheets[0].insertRule('*{animation:none!important}');return true})()`))
	do(t, ctx, "tall viewport", chromedp.EmulateViewport(1200, 1250))
	png := value(t, ctx, chromedp.CaptureScreenshot())
	do(t, ctx, "viewport back", chromedp.EmulateReset())
	path, err := filepath.Abs(filepath.Join("..", "..", "docs", "panel.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

// The drill button sends the moment typed beside it, which survives the
// page redrawing its sections on a change of status, and the audit log
// records the drill with its moment.
func TestBrowserDrillToMoment(t *testing.T) {
	e := newEnv(t)
	e.staff()
	ctx := browser(t, e)
	const at = "2026-11-30T14:00:00Z"
	do(t, ctx, "log in and type a moment",
		chromedp.Navigate(e.lan.URL+"/"),
		chromedp.WaitVisible(css(`input[name="password"]`)),
		chromedp.SendKeys(css(`input[name="password"]`), "correct horse battery"),
		chromedp.Submit(css(`input[name="password"]`)),
		chromedp.WaitVisible(css(`#drill-at`)),
		chromedp.SendKeys(css(`#drill-at`), at),
	)
	if err := e.box.Unplug("Son"); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "the page redrawn; ask for the drill",
		chromedp.WaitVisible(css(`#inbox[data-inbox=""]`)),
		chromedp.Click(css(`button[data-act="drill"]`)),
		chromedp.WaitVisible(css(`#notice.done`)),
	)
	acts := e.box.Acts()
	if len(acts) != 1 || acts[0].Name != web.ActDrill || acts[0].Arg != at {
		t.Errorf("got acts %+v; want one drill to %s", acts, at)
	}
	recs, err := e.audit.Tail(20)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(recs, func(r audit.Record) bool {
		return r.Action == web.ActDrill && r.Allowed && strings.Contains(r.Why, `with "`+at+`"`)
	}) {
		t.Errorf("audit: no drill with %s in %+v", at, recs)
	}
}
