package main

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// syncBuffer is a bytes.Buffer safe for wscat's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until s contains want, for at most 5 s.
func waitFor(t *testing.T, s *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("output %q lacks %q", s.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wsServer(t *testing.T, handle func(*websocket.Conn)) string {
	srv := httptest.NewServer(&websocket.Handler{Handle: handle})
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

// Lines go out as text messages and what comes back is printed; at the
// end of the input wscat closes with 1000.
func TestWscatEcho(t *testing.T) {
	status := make(chan websocket.Status, 1)
	url := wsServer(t, func(c *websocket.Conn) {
		for {
			msg, err := c.ReceiveText(1 << 20)
			if err != nil {
				break
			}
			c.SendText("echo: " + msg)
			c.SendBinary([]byte{0xca, 0xfe})
		}
		code, _ := c.GetStatus()
		status <- code
	})
	in, input := io.Pipe()
	var out, errOut syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(url, &websocket.DialOptions{Compression: websocket.CompressionContextTakeover}, 5*time.Second, in, &out, &errOut)
	}()
	io.WriteString(input, "hello\n")
	waitFor(t, &out, "echo: hello\nbinary: cafe\n")
	io.WriteString(input, "κόσμε\n")
	waitFor(t, &out, "echo: κόσμε\n")
	input.Close()
	if code := <-exit; code != 0 {
		t.Errorf("exit status %d; stderr %q", code, errOut.String())
	}
	if code := <-status; code != websocket.StatusOK {
		t.Errorf("the server saw close %d, want 1000", code)
	}
}

// When the server closes, wscat says so and exits, without waiting for
// input.
func TestWscatServerCloses(t *testing.T) {
	url := wsServer(t, func(c *websocket.Conn) {
		c.SendText("bye")
		c.Close(4000, "maintenance")
	})
	in, input := io.Pipe()
	defer input.Close()
	var out, errOut syncBuffer
	if code := run(url, nil, 5*time.Second, in, &out, &errOut); code != 0 {
		t.Errorf("exit status %d; stderr %q", code, errOut.String())
	}
	if out.String() != "bye\n" || !strings.Contains(errOut.String(), "closed by the server: 4000 maintenance") {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
}

// A refused handshake is reported with the server's status and body.
func TestWscatRefused(t *testing.T) {
	url := wsServer(t, func(c *websocket.Conn) {})
	var out, errOut syncBuffer
	code := run(url, &websocket.DialOptions{Origin: "http://elsewhere.example"}, 5*time.Second, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "403 Forbidden") {
		t.Errorf("exit %d, stderr %q; want 1 and the 403", code, errOut.String())
	}
}
