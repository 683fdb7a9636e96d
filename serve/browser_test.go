package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/serve"
)

// browser returns a headless-capable Chromium or Chrome: $ANOMNET_BROWSER,
// or the first of the usual names on $PATH. Without one the test skips,
// unless $ANOMNET_REQUIRE_BROWSER is set (CI sets it), where it fails.
func browser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ANOMNET_BROWSER"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ANOMNET_REQUIRE_BROWSER") != "" {
		t.Fatal("$ANOMNET_REQUIRE_BROWSER is set and no browser was found (apt-get install chromium, or set $ANOMNET_BROWSER)")
	}
	t.Skip("no Chromium or Chrome found: install chromium (Debian) or set $ANOMNET_BROWSER to run the page's test")
	return ""
}

// TestPageInBrowser loads the operator's page in a real headless
// Chromium, uploads a defective part's image through the page's file
// input, waits for its result, and checks the score shown against the
// API's for the same image, the decision, the heatmap and overlay drawn
// and the strip of recent results. The screenshot is saved to
// $ANOMNET_ARTIFACTS (or the test's temporary folder) as serve-page.png.
func TestPageInBrowser(t *testing.T) {
	exe := browser(t)
	f := needFixture(t)
	_, ts := start(t, f, f.pathA, serve.Options{})
	dir := t.TempDir()
	part := filepath.Join(dir, "part-with-hole.png")
	require.NoError(t, os.WriteFile(part, f.bad, 0o644))
	want := predictOK(t, ts.URL, f.bad) // the API's answer for the same image

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(ts.URL),
		chromedp.WaitVisible(css(`#status.ready`)),
		chromedp.WaitVisible(css(`#recent .item`)), // the API call above is listed
		chromedp.SetUploadFiles(css(`#file`), []string{part}),
		chromedp.WaitVisible(css(`.result img.overlay`)),
	))
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		require.NoError(t, err, sel)
		return v
	}
	score, decision, model := text(`.result .score`), text(`.result .decision`), text(`#model-name`)
	drawn, err := chromedp.Run(ctx, chromedp.Poll[bool](`[...document.querySelectorAll(".result img")].every(i => i.complete && i.naturalWidth > 0)`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll("#recent .item").length >= 2`, chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the strip lists the page's image too")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%.4f", want.Score), score, "the page shows the API's score")
	require.True(t, strings.EqualFold(want.Decision, decision), "decision %q, the API says %q", decision, want.Decision)
	require.Equal(t, "modelA.anm", model)
	require.True(t, drawn, "the image, heatmap and overlay are drawn")

	out := os.Getenv("ANOMNET_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(out, 0o755))
	path := filepath.Join(out, "serve-page.png")
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	pic, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err)
	require.Equal(t, 1280, pic.Bounds().Dx())
	t.Logf("screenshot: %s", path)
}
