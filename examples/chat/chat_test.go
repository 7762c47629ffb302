package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wsmachine/wsmachine/websocket"
)

// chromium is Debian's Chromium (make deps installs it).
const chromium = "/usr/bin/chromium"

// The chat in a real browser: two pages join, a message typed in one
// appears in the other, and a page that closes leaves cleanly. A
// screenshot of both pages is left in testdata/screenshots (not
// committed) for a person to look at.
func TestChatInBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Debian's Chromium is not at %s (%v): apt-get install chromium (make deps)", chromium, err)
	}
	h := newHub()
	srv := httptest.NewServer(newMux(h))
	defer srv.Close()
	defer h.ws.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("headless", true),
		chromedp.WindowSize(640, 480))
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	root, closeBrowser := chromedp.NewContext(ctx) // the browser, and its first tab
	defer closeBrowser()
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	alice, closeAlice := chromedp.NewContext(root) // a tab of its own
	defer closeAlice()
	bob, closeBob := chromedp.NewContext(root)
	defer closeBob()

	join := func(page context.Context, name string) {
		t.Helper()
		err := chromedp.Do(page,
			chromedp.Navigate(srv.URL+"/"),
			chromedp.WaitEnabled(chromedp.ID("send")),
			chromedp.SetValue(chromedp.ID("name"), name),
		)
		if err != nil {
			t.Fatalf("%s could not join: %v", name, err)
		}
	}
	// waitLog waits until the page's log shows text.
	waitLog := func(page context.Context, who, text string) {
		t.Helper()
		expr := `document.getElementById("log").textContent.includes(` + jsString(text) + `)`
		wait, cancel := context.WithTimeout(page, 10*time.Second)
		defer cancel()
		if _, err := chromedp.Run(wait, chromedp.Poll[bool](expr)); err != nil {
			log, _ := chromedp.Run(page, chromedp.Evaluate[string](`document.getElementById("log").textContent`))
			t.Fatalf("%s's page never showed %q (%v); its log: %q", who, text, err, log)
		}
	}

	join(alice, "alice")
	join(bob, "bob")
	waitLog(alice, "alice", "joined, 2 online")

	err := chromedp.Do(alice,
		chromedp.SendKeys(chromedp.ID("text"), "hello from alice"),
		chromedp.Click(chromedp.ID("send")), // Submit would skip the page's submit handler
	)
	if err != nil {
		t.Fatalf("alice could not send: %v", err)
	}
	waitLog(bob, "bob", "alice")
	waitLog(bob, "bob", "hello from alice")
	waitLog(alice, "alice", "hello from alice") // everyone gets every message
	t.Log("ok a message typed in one page appears in the other")

	screenshot(t, alice, "alice")
	screenshot(t, bob, "bob")

	closeAlice() // the tab closes: its WebSocket goes with it
	waitLog(bob, "bob", "left, 1 online")
	t.Log("ok a closed page leaves, and the other is told")
}

// screenshot saves the page to testdata/screenshots/chat-<who>.png.
func screenshot(t *testing.T, page context.Context, who string) {
	t.Helper()
	png, err := chromedp.Run(page, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot of %s's page: %v", who, err)
	}
	dir := filepath.Join("testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "chat-"+who+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of %s's page: examples/chat/%s", who, path)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		switch r {
		case '"', '\\':
			b = append(b, '\\', byte(r))
		default:
			b = append(b, string(r)...)
		}
	}
	return string(append(b, '"'))
}

// The handler's statistics are served at /debug/vars through expvar, as
// an operator reads them: a client that joined and posted shows.
func TestStatsAtDebugVars(t *testing.T) {
	h := newHub()
	publishStats(h)
	srv := httptest.NewServer(newMux(h))
	defer srv.Close()
	defer h.ws.Shutdown(context.Background())

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(websocket.StatusOK, "")
	if _, err := c.ReceiveText(maxMessage); err != nil { // the welcome
		t.Fatal(err)
	}
	if err := c.SendText(`{"name":"op","text":"hi"}`); err != nil {
		t.Fatal(err)
	}
	for { // the join, then the message, back
		msg, err := c.ReceiveText(maxMessage)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(msg, `"text":"hi"`) {
			break
		}
	}

	resp, err := http.Get(srv.URL + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vars struct{ Websocket websocket.HandlerStats }
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		t.Fatal(err)
	}
	st := vars.Websocket
	if st.Open != 1 || st.Accepted != 1 || st.MessagesReceived != 1 || st.MessagesSent != 3 {
		t.Errorf("/debug/vars websocket = %+v, want 1 open, 1 accepted, 1 message in, 3 out (welcome, join, message)", st)
	}
}
