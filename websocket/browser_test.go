package websocket_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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
	return pageResultsWithin(t, ctx, url, 90*time.Second)
}

// pageResultsWithin is pageResults waiting up to timeout for window.done.
func pageResultsWithin(t *testing.T, ctx context.Context, url string, timeout time.Duration) []string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s in Chromium: %v", url, err)
	}
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.done === true", chromedp.WithPollingTimeout(timeout)))
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

// The browser's own WebSocket against echo servers in each compression
// mode (peerServerModes), through a wire proxy: Chromium offers
// permessage-deflate and compresses every message. In each mode: the
// extensions negotiated, as the browser sees them and as the server
// answered on the wire; text and binary echoes up to 16 MiB (hashes
// compared; the 16 MiB ones not in no-context-takeover, to save time); what messages cost on the wire (checkWire, checkTakeover);
// clean closes with 1000 and 4000-range codes and reasons both ways; the
// subprotocol; and the default origin policy both ways.
// Rows: C1, O1, O3, O6, O10, K4.
func TestPeerChromium(t *testing.T) {
	ctx := browser(t)
	wire := newWireProxy(t)
	var defaultHandles atomic.Int32
	echo := peerHandler(websocket.CompressionOff, wire)
	defaultPolicy := &websocket.Handler{Handle: func(c *websocket.Conn) {
		defaultHandles.Add(1)
		echo.Handle(c)
	}}
	modes := map[string]websocket.CompressionMode{"/default": websocket.CompressionOff}
	mux := http.NewServeMux()
	for _, mode := range peerServerModes {
		mux.Handle("/ws/"+mode.name, peerHandler(mode.compression, wire))
		modes["/ws/"+mode.name] = mode.compression
	}
	mux.Handle("/default", defaultPolicy)
	mux.Handle("/", servePage("browser.html"))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	wire.start(srv.Listener.Addr().String())
	page := "http://" + wire.addr()

	runs := map[string]*peerRun{}
	for _, mode := range peerServerModes {
		t.Run(mode.name, func(t *testing.T) {
			start := time.Now()
			results := pageResults(t, ctx, page+"/?mode="+mode.name)
			run := &peerRun{wire: map[string]wireFigure{}}
			want := 26
			if mode.compression == websocket.CompressionNoContextTakeover {
				want-- // no 16 MiB binary echo
			}
			if checks := parsePeerLines(t, results, run); checks != want {
				t.Errorf("the page ran %d checks, want %d: %q", checks, want, results)
			}
			t.Logf("the page ran in %v", time.Since(start).Round(time.Millisecond))
			checkWire(t, mode.compression, run, []string{"text-400", "text-600", "json-1MiB", "events-default"})
			runs[mode.name] = run
		})
	}
	checkTakeover(t, runs)

	// A page from another origin (another port) is refused.
	other := httptest.NewServer(servePage("cross_origin.html"))
	defer other.Close()
	before := defaultHandles.Load()
	target := "ws://" + wire.addr() + "/default"
	got := pageResults(t, ctx, other.URL+"/?target="+target)
	if calls := defaultHandles.Load() - before; len(got) != 1 || got[0] != "closed 1006 clean=false" || calls != 0 {
		t.Errorf("a cross-origin page got %q (Handle called %d times); want it refused: closed 1006 clean=false", got, calls)
	} else {
		t.Log("ok cross-origin page refused under the default origin policy")
	}

	wire.checkHandshakes(t, func(path string) websocket.CompressionMode {
		mode, ok := modes[path]
		if !ok {
			t.Errorf("a WebSocket handshake for %s", path)
		}
		return mode
	})
}
