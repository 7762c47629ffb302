package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket/internal/core"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

var (
	soakConns    = flag.Int("soak.conns", 2000, "concurrent connections of TestSoak")
	soakDuration = flag.Duration("soak.duration", 5*time.Second, "how long TestSoak's clients keep echoing")
)

// soakStats counts what the soak clients saw.
type soakStats struct {
	mu       sync.Mutex
	echoed   atomic.Int64
	held     atomic.Int64 // connections open at once, at the peak
	open     atomic.Int64
	errors   map[string]int
	mismatch atomic.Int64
	echoing  atomic.Int64 // well-behaved clients still in their echo loop
}

func (s *soakStats) fail(kind string) {
	s.mu.Lock()
	s.errors[kind]++
	s.mu.Unlock()
}

// TestSoak runs many connections at once through the echo handler while
// a fifth of the clients misbehave (drop TCP, stall mid-frame, send
// garbage). Every well-behaved client must get back exactly what it sent.
// At the end the Handler shuts down: every well-behaved client gets 1001
// and answers it, the stalled ones are dropped when the close timeout
// runs out, and afterwards no goroutine of the library may be left.
// Rows: O1, O7, O8, O10, K4, K8.
func TestSoak(t *testing.T) {
	n, d := *soakConns, *soakDuration
	if testing.Short() {
		n, d = min(n, 200), min(d, time.Second)
	}
	before := runtime.NumGoroutine()
	var handlers sync.WaitGroup
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Handle: func(c *Conn) {
		handlers.Add(1)
		defer handlers.Done()
		echoHandler(c)
	}}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	stats := &soakStats{errors: map[string]int{}}
	end := time.Now().Add(d)
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for i := range n {
		clients.Add(1)
		go func() {
			defer clients.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			soakClient(ln.Addr().String(), r, end, stop, stats)
		}()
		if i%100 == 99 {
			time.Sleep(5 * time.Millisecond) // let the accept queue drain
		}
	}
	time.Sleep(time.Until(end))
	for deadline := time.Now().Add(20 * time.Second); stats.echoing.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients still echoing 20 s after the end", stats.echoing.Load())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	shutdownTook := time.Since(start)
	close(stop)
	clients.Wait()
	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("handlers still running 10 s after every client left")
	}
	srv.Close()

	var goroutines int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		goroutines = runtime.NumGoroutine()
		if goroutines <= before+2 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d connections (%d open at the peak), %d messages echoed, errors by kind: %v, peak RSS %s, goroutines %d before, %d after; Shutdown took %v",
		n, stats.held.Load(), stats.echoed.Load(), stats.errorList(), peakRSS(), before, goroutines, shutdownTook.Round(time.Millisecond))
	if goroutines > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left (were %d):\n%s", goroutines, before, buf[:runtime.Stack(buf, true)])
	}
	if m := stats.mismatch.Load(); m > 0 {
		t.Fatalf("%d well-behaved clients did not get back what they sent; errors: %v", m, stats.errorList())
	}
	if stats.echoed.Load() == 0 {
		t.Fatal("no message was echoed")
	}
}

func (s *soakStats) errorList() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for k, v := range s.errors {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

// peakRSS reads VmHWM of this process.
func peakRSS() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.Join(strings.Fields(line)[1:], " ")
		}
	}
	return "?"
}

// soakClient is one client: well-behaved four times in five.
func soakClient(addr string, r *rand.Rand, end time.Time, stop chan struct{}, stats *soakStats) {
	// Counted from the start, handshake included: the shutdown at the
	// end waits for every client to be past its echo loop, so that none
	// is still connecting (it would get 503) or waiting for an echo.
	stats.echoing.Add(1)
	left := false
	leave := func() { // once, whether the loop ends or the client returns before
		if !left {
			left = true
			stats.echoing.Add(-1)
		}
	}
	defer leave()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		stats.fail("dial")
		stats.mismatch.Add(1)
		return
	}
	defer nc.Close()
	nc.SetDeadline(end.Add(20 * time.Second))
	io.WriteString(nc, upgradeRequest("/soak"))
	br := bufio.NewReader(nc)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		stats.fail("handshake")
		stats.mismatch.Add(1)
		return
	}
	if open := stats.open.Add(1); open > stats.held.Load() {
		stats.held.Store(open) // approximate peak; races only lower it
	}
	defer stats.open.Add(-1)

	key := [4]byte{byte(r.Uint32()), 1, 2, 3}
	switch r.IntN(10) {
	case 0: // drop TCP in the middle of a message
		frame := wstest.ClientFrame(true, 0, byte(core.OpBinary), make([]byte, 1000), key)
		nc.Write(frame[:r.IntN(len(frame))])
		stats.fail("misbehaving: dropped")
		return
	case 1: // stall in the middle of a frame until the end
		frame := wstest.ClientFrame(true, 0, byte(core.OpText), []byte("stalled"), key)
		nc.Write(frame[:r.IntN(len(frame))])
		leave() // it waits for the shutdown's close timeout
		<-stop
		stats.fail("misbehaving: stalled")
		return
	}
	if r.IntN(8) == 0 { // garbage: unmasked, reserved bits, whatever
		junk := make([]byte, 2+r.IntN(64))
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		junk[1] &^= 0x80
		nc.Write(junk)
		stats.fail("misbehaving: garbage")
		io.Copy(io.Discard, br) // the server closes
		return
	}
	for time.Now().Before(end) {
		size := r.IntN(200)
		switch r.IntN(20) {
		case 0:
			size = 64 << 10
		case 1, 2:
			size = 1 + r.IntN(8<<10)
		}
		op := byte(core.OpBinary)
		payload := make([]byte, size)
		if r.IntN(2) == 0 {
			op = byte(core.OpText)
			for i := range payload {
				payload[i] = byte('a' + r.IntN(26))
			}
		} else {
			for i := range payload {
				payload[i] = byte(r.Uint32())
			}
		}
		if _, err := nc.Write(wstest.ClientFrame(true, 0, op, payload, key)); err != nil {
			stats.fail("write")
			stats.mismatch.Add(1)
			return
		}
		gotOp, got, err := readServerMessage(br)
		if err != nil || gotOp != op || !bytes.Equal(got, payload) {
			stats.fail(fmt.Sprintf("echo (%v)", errors.Unwrap(err) != nil || err != nil))
			stats.mismatch.Add(1)
			return
		}
		stats.echoed.Add(1)
	}
	// The server shuts down: its close frame, 1001, answered.
	leave()
	op, payload, err := readServerMessage(br)
	if err != nil || op != byte(core.OpClose) || !bytes.Equal(payload, []byte{0x03, 0xE9}) {
		stats.fail("shutdown's close")
		stats.mismatch.Add(1)
		return
	}
	nc.Write(wstest.ClientFrame(true, 0, byte(core.OpClose), payload, key))
}

// readServerMessage reads one whole message (or control frame) from the
// server.
func readServerMessage(br *bufio.Reader) (byte, []byte, error) {
	var msg []byte
	var op byte
	for {
		var hdr [10]byte
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return 0, nil, err
		}
		n := uint64(hdr[1] & 0x7F)
		switch n {
		case 126:
			io.ReadFull(br, hdr[2:4])
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			io.ReadFull(br, hdr[2:10])
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		if n > 1<<20 {
			return 0, nil, errors.New("frame too long")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return 0, nil, err
		}
		if fop := hdr[0] & 0xF; fop != 0 {
			op = fop
		}
		msg = append(msg, payload...)
		if hdr[0]&0x80 != 0 {
			return op, msg, nil
		}
	}
}
