package websocket_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsmachine/wsmachine/websocket"
)

// chromium is Debian's Chromium, which the browser tests drive through
// the DevTools protocol; nothing is downloaded.
const chromium = "/usr/bin/chromium"

// browser starts a headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Debian's Chromium is not at %s (%v): apt-get install chromium (make deps)", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("headless", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	t.Cleanup(cancelBrowser)
	return ctx
}

// pageResults opens url and returns window.results once window.done.
func pageResults(t *testing.T, ctx context.Context, url string) []string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s in Chromium: %v", url, err)
	}
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.done === true", chromedp.WithPollingTimeout(90*time.Second)))
	results, rerr := chromedp.Run(ctx, chromedp.Evaluate[[]string]("window.results"))
	if err != nil || rerr != nil {
		t.Fatalf("%s in Chromium: %v, %v (results so far: %q)", url, err, rerr, results)
	}
	return results
}

// servePage serves a file of testdata/peers at /.
func servePage(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("testdata", "peers", name))
	}
}

// The browser's own WebSocket against the echo server: text and binary
// echoes up to 16 MiB, clean closes with 1000 and a 4000-range code and
// reason, the subprotocol, and the default origin policy both ways.
func TestPeerChromium(t *testing.T) {
	ctx := browser(t)
	var defaultHandles atomic.Int32
	defaultPolicy := &websocket.Handler{Handle: func(c *websocket.Conn) {
		defaultHandles.Add(1)
		peerEchoHandler.Handle(c)
	}}
	mux := http.NewServeMux()
	mux.Handle("/echo", peerEchoHandler)
	mux.Handle("/default", defaultPolicy)
	mux.Handle("/", servePage("browser.html"))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	results := pageResults(t, ctx, srv.URL+"/")
	checks := 0
	for _, line := range results {
		checks++
		if strings.HasPrefix(line, "FAIL") {
			t.Error(line)
		} else {
			t.Log(line)
		}
	}
	if checks < 16 {
		t.Errorf("the page ran %d checks, want 16: %q", checks, results)
	}

	// A page from another origin (another port) is refused.
	other := httptest.NewServer(servePage("cross_origin.html"))
	defer other.Close()
	before := defaultHandles.Load()
	target := "ws" + strings.TrimPrefix(srv.URL, "http") + "/default"
	got := pageResults(t, ctx, other.URL+"/?target="+target)
	if calls := defaultHandles.Load() - before; len(got) != 1 || got[0] != "closed 1006 clean=false" || calls != 0 {
		t.Errorf("a cross-origin page got %q (Handle called %d times); want it refused: closed 1006 clean=false", got, calls)
	} else {
		t.Log("ok cross-origin page refused under the default origin policy")
	}
}
