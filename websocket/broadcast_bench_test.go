//go:build linux || darwin

package websocket

// BenchmarkBroadcast: what it costs a server to send one message to many
// connections, ours beside gorilla/websocket's and gws's, in one run.
//
// The message is 1 KiB of JSON-like chat text (fanPayload: valid UTF-8,
// compressible about fourfold), sent to 1,000 and to 10,000 connections
// over loopback (127.0.0.1), by each server:
//
//   - wsmachine: Broadcast of a PreparedMessage;
//   - gorilla (v1.5.3): a loop over its connections calling
//     WritePreparedMessage with one of its PreparedMessages (its write
//     deadline is set beforehand, a field store: WritePreparedMessage
//     sets the socket's deadline on every write anyway);
//   - gws (v1.8.9): a Broadcaster, Broadcast for each connection, then
//     Close; its writes go through each connection's write queue, on
//     goroutines of their own, after Broadcast has returned.
//
// Each is run uncompressed and with permessage-deflate negotiated without
// context takeover both ways (ours: CompressionNoContextTakeover; gorilla:
// EnableCompression, which is only that; gws: PermessageDeflate with both
// context takeovers off), each library at its fastest level (gorilla's is
// the standard library's flate, ours and gws's klauspost's), with its
// default threshold (ours and gws: 512 bytes; gorilla: none) below the
// message's size. Each broadcast prepares its message afresh
// (NewPreparedMessage, gorilla.NewPreparedMessage, gws.NewBroadcaster), so
// a compressed form is made once per broadcast and counted in it.
//
// The clients are the same for the three servers: our Dial clients, one
// goroutine each reading every message whole and comparing it with the
// message sent, in a child process (the test binary again, with
// fanClientsEnv set, caught by an init function of this file before
// TestMain runs, so TestMain is unchanged). They offer permessage-deflate
// (no context takeover) only in the compressed mode, and check that every
// server's answer accepted it. An iteration is one broadcast: it ends once
// the clients have received the message on every connection, for every
// library alike (gws's Broadcast returns before its writes are done).
//
// What is reported, besides ns/op (wall time per broadcast) and the
// framework's B/op and allocs/op (per broadcast):
//
//   - srv-cpu-ns/msg: the server process's CPU time (getrusage: user and
//     system, every thread) per delivered message: the library, the
//     scheduler, the garbage collector, and the kernel's share of the
//     writes, which on loopback includes TCP's delivery to the receiving
//     socket; the clients' CPU is the child's, not counted;
//   - srv-user-ns/msg: its part in user space (Go code: the library, the
//     runtime), where the libraries differ most; the rest is the kernel's;
//   - ns/msg: wall time per delivered message, the clients' reading
//     included (they share the machine's cores with the server);
//   - allocs/broadcast: heap allocations of the server process per
//     broadcast (runtime.MemStats.Mallocs: the same as allocs/op, named so
//     that it is not read per message), the message's preparation included;
//   - wire-B/msg: what went over TCP per delivered message (frames,
//     headers included), counted by the clients (ConnStats.
//     WireBytesReceived) and, for ours, checked against the Handler's
//     WireBytesSent: 1028 uncompressed (a 4-byte header); less with
//     compression, showing that every connection got the compressed form.
//
// That the message is compressed once per broadcast, not once per
// connection, is by construction for the three (a prepared message or a
// broadcaster compresses once per set of options, and all connections
// share one here); the figures show it as srv-user-ns/msg about the same
// compressed as plain: compressing this message takes 3.5 µs with
// klauspost's flate, 7 µs with the standard library's (BenchmarkDeflate's
// json-1KiB), more than a library's whole user-space share of a message,
// and would show in every message if done for each.
//
// Before the clock starts, each case is set up (dials in the child, 64 at
// a time), broadcasts twice to warm up, and collects garbage. Every wait
// is bounded (fanWait), every connection is closed at the end by its
// client (and the server waits for it to end), and the server stops.
// `make broadcast-figures` runs it; TestBroadcastBenchmarkHarness runs
// its cases briefly with every test run, so that it keeps working.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
)

// fanClientsEnv, set, makes the test binary the clients' process of
// BenchmarkBroadcast (see init).
const fanClientsEnv = "WSMACHINE_BROADCAST_CLIENTS"

const (
	// fanWait bounds each wait: a message's delivery, the accepting of a
	// case's connections, their ends.
	fanWait = time.Minute
	// fanSetupWait bounds the child's dialing or closing of a case's
	// connections.
	fanSetupWait = 5 * time.Minute
	// fanParallel is how many dials or closes the child runs at once.
	fanParallel = 64
	// fanWriteTimeout is gorilla's write deadline, as our WriteTimeout's
	// default (gws has none).
	fanWriteTimeout = 30 * time.Second
)

// fanPayload is the message broadcast: 1 KiB of chat events as JSON.
func fanPayload() []byte {
	r := rand.New(rand.NewPCG(41, 1))
	words := []string{"hello", "world", "message", "room", "user", "typing", "online", "the", "a", "quick"}
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<10; i++ {
		fmt.Fprintf(&b, `{"type":"message","id":%d,"user":"user%d","room":"lobby","text":"%s %s %s"}`,
			i, r.IntN(50), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))])
	}
	return b.Bytes()[:1<<10]
}

// fanLibs are the servers compared.
var fanLibs = []struct {
	name  string
	start func(n int, deflate bool) (fanServer, http.Handler)
}{
	{"wsmachine", startOurFan},
	{"gorilla", startGorillaFan},
	{"gws", startGWSFan},
}

// BenchmarkBroadcast: sub-benchmarks conns=N/deflate=B/lib=L; see the
// comment at the top of the file.
func BenchmarkBroadcast(b *testing.B) {
	kids := startFanClients(b)
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			if err := raiseOpenFiles(uint64(n) + 512); err != nil {
				b.Skipf("%d connections: %v", n, err)
			}
			for _, deflate := range []bool{false, true} {
				b.Run(fmt.Sprintf("deflate=%t", deflate), func(b *testing.B) {
					for _, lib := range fanLibs {
						b.Run("lib="+lib.name, func(b *testing.B) {
							benchFan(b, kids, n, deflate, lib.start)
						})
					}
				})
			}
		})
	}
}

// benchFan measures one case: it runs once (b.Loop), so the connections
// are set up once.
func benchFan(b *testing.B, kids *fanClients, n int, deflate bool, start func(int, bool) (fanServer, http.Handler)) {
	fc := startFanCase(b, kids, n, deflate, start)
	for range 2 {
		if err := fc.broadcast(); err != nil {
			b.Fatal(err)
		}
	}
	before, err := fc.counters()
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	user0, sys0 := processCPU()

	b.ReportAllocs()
	for b.Loop() {
		if err := fc.broadcast(); err != nil {
			b.Fatal(err)
		}
	}

	user1, sys1 := processCPU()
	user, cpu := user1-user0, user1+sys1-user0-sys0
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs - mallocs0
	after, err := fc.counters()
	if err != nil {
		b.Fatal(err)
	}
	wire, err := fc.check(b.N, before, after)
	if err != nil {
		b.Fatal(err)
	}
	msgs := float64(b.N) * float64(n)
	b.ReportMetric(float64(cpu.Nanoseconds())/msgs, "srv-cpu-ns/msg")
	b.ReportMetric(float64(user.Nanoseconds())/msgs, "srv-user-ns/msg")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/msgs, "ns/msg")
	b.ReportMetric(float64(mallocs)/float64(b.N), "allocs/broadcast")
	b.ReportMetric(float64(wire)/msgs, "wire-B/msg")
}

// TestBroadcastBenchmarkHarness runs BenchmarkBroadcast's cases briefly:
// 8 connections, 3 broadcasts, each checked as the benchmark checks them.
func TestBroadcastBenchmarkHarness(t *testing.T) {
	kids := startFanClients(t)
	for _, deflate := range []bool{false, true} {
		for _, lib := range fanLibs {
			t.Run(fmt.Sprintf("deflate=%t/lib=%s", deflate, lib.name), func(t *testing.T) {
				fc := startFanCase(t, kids, 8, deflate, lib.start)
				before, err := fc.counters()
				if err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if err := fc.broadcast(); err != nil {
						t.Fatal(err)
					}
				}
				after, err := fc.counters()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fc.check(3, before, after); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// fanCase is a case's server with its n clients connected.
type fanCase struct {
	kids      *fanClients
	srv       fanServer
	n         int
	deflate   bool
	payload   []byte
	delivered uint64 // messages received by the clients, as counted by them
}

// startFanCase starts a library's server, has the child dial n clients
// to it, and has them closed and the server stopped at the end of tb.
func startFanCase(tb testing.TB, kids *fanClients, n int, deflate bool, start func(int, bool) (fanServer, http.Handler)) *fanCase {
	tb.Helper()
	srv, h := start(n, deflate)
	url, stop, err := fanListen(h)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := kids.closeAll(); err != nil {
			tb.Errorf("closing the clients: %v", err)
		}
		if err := srv.end(); err != nil {
			tb.Errorf("the server's connections: %v", err)
		}
		stop()
	})
	if err := kids.dial(url, n, deflate); err != nil {
		tb.Fatal(err)
	}
	if err := srv.accept(n); err != nil {
		tb.Fatal(err)
	}
	return &fanCase{kids: kids, srv: srv, n: n, deflate: deflate, payload: fanPayload()}
}

// broadcast sends the message to every connection and waits until every
// client has it.
func (fc *fanCase) broadcast() error {
	if err := fc.srv.broadcast(fc.payload); err != nil {
		return err
	}
	fc.delivered += uint64(fc.n)
	return fc.kids.wait(fc.delivered)
}

// fanCounters are the bytes and messages so far.
type fanCounters struct {
	wire, msgs uint64 // received, all clients together
	sent       uint64 // sent, as the server counts it
	counts     bool   // whether it does (ours)
}

func (fc *fanCase) counters() (fanCounters, error) {
	wire, msgs, err := fc.kids.stats()
	sent, counts := fc.srv.wireSent()
	return fanCounters{wire, msgs, sent, counts}, err
}

// check checks the counters over some broadcasts: every client got every
// message, ours counted the bytes that the clients did, and the bytes on
// the wire were the plain frames or fewer (compressed); it returns the
// bytes on the wire.
func (fc *fanCase) check(broadcasts int, before, after fanCounters) (wire uint64, err error) {
	msgs := uint64(broadcasts) * uint64(fc.n)
	wire = after.wire - before.wire
	sent := after.sent - before.sent
	size := uint64(len(fc.payload))
	switch {
	case after.msgs-before.msgs != msgs:
		return 0, fmt.Errorf("the clients received %d messages, want %d", after.msgs-before.msgs, msgs)
	case after.counts && sent != wire:
		return 0, fmt.Errorf("the server sent %d bytes, the clients received %d", sent, wire)
	case !fc.deflate && wire != msgs*(size+4):
		return 0, fmt.Errorf("uncompressed: %d bytes on the wire, want %d", wire, msgs*(size+4))
	case fc.deflate && wire >= msgs*size:
		return 0, fmt.Errorf("compressed: %d bytes on the wire for %d messages of %d bytes: not compressed", wire, msgs, size)
	}
	return wire, nil
}

// processCPU is the CPU time this process has used, in user space and
// in the kernel.
func processCPU() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// raiseOpenFiles raises the soft limit on open files to the hard one if
// it is below need (Go raises it at start on Linux: this is for the
// others), and fails if the hard limit is below need.
func raiseOpenFiles(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("%d open files needed, the hard limit is %d", need, lim.Max)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the limit on open files to %d: %w", lim.Max, err)
	}
	return nil
}

// fanListen serves h on a loopback port; stop closes the listener and
// waits for Serve to return.
func fanListen(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		hs.Serve(ln)
		close(done)
	}()
	return "ws://" + ln.Addr().String() + "/", func() { hs.Close(); <-done }, nil
}

// fanServer is a library's server in a case.
type fanServer interface {
	// accept waits for n connections.
	accept(n int) error
	// broadcast sends payload, as text, to every connection accepted.
	broadcast(payload []byte) error
	// wireSent is what the server counts as sent on the wire, if it
	// counts (ours).
	wireSent() (n uint64, counts bool)
	// end waits for every connection to end once the clients have
	// closed them, and closes those left after fanWait.
	end() error
}

// fanCollect receives n connections from served within fanWait.
func fanCollect[C any](served <-chan C, n int) ([]C, error) {
	conns := make([]C, 0, n)
	timer := time.NewTimer(fanWait)
	defer timer.Stop()
	for len(conns) < n {
		select {
		case c := <-served:
			conns = append(conns, c)
		case <-timer.C:
			return conns, fmt.Errorf("%d of %d connections accepted within %v", len(conns), n, fanWait)
		}
	}
	return conns, nil
}

// waitGroupWithin waits for wg for at most d.
func waitGroupWithin(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// ourFan is our server: a Handler whose Handle hands the connection over
// and returns (the library reads in the background).
type ourFan struct {
	h      *Handler
	served chan *Conn
	conns  []*Conn
}

func startOurFan(n int, deflate bool) (fanServer, http.Handler) {
	s := &ourFan{served: make(chan *Conn, n)}
	s.h = &Handler{Handle: func(c *Conn) { s.served <- c }}
	if deflate {
		s.h.Compression = CompressionNoContextTakeover
	}
	return s, s.h
}

func (s *ourFan) accept(n int) (err error) {
	s.conns, err = fanCollect(s.served, n)
	return err
}

func (s *ourFan) broadcast(payload []byte) error {
	m, err := NewPreparedMessage(Text, payload)
	if err != nil {
		return err
	}
	if sent, err := Broadcast(context.Background(), s.conns, m); err != nil || sent != len(s.conns) {
		return fmt.Errorf("Broadcast reached %d of %d connections: %v", sent, len(s.conns), err)
	}
	return nil
}

func (s *ourFan) wireSent() (uint64, bool) { return s.h.Stats().WireBytesSent, true }

// end: Shutdown returns once every connection has ended, and drops those
// left when its context ends.
func (s *ourFan) end() error {
	ctx, cancel := context.WithTimeout(context.Background(), fanWait)
	defer cancel()
	return s.h.Shutdown(ctx)
}

// gorillaFan is gorilla's server: each connection's handler goroutine
// reads (answering the client's close) until the connection ends.
type gorillaFan struct {
	up      gorilla.Upgrader
	served  chan *gorilla.Conn
	conns   []*gorilla.Conn
	mu      sync.Mutex
	all     []*gorilla.Conn
	readers sync.WaitGroup
}

func startGorillaFan(n int, deflate bool) (fanServer, http.Handler) {
	s := &gorillaFan{up: gorilla.Upgrader{EnableCompression: deflate}, served: make(chan *gorilla.Conn, n)}
	return s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered
		}
		s.mu.Lock()
		s.all = append(s.all, c)
		s.readers.Add(1)
		s.mu.Unlock()
		defer s.readers.Done()
		s.served <- c
		for {
			if _, _, err := c.NextReader(); err != nil {
				break
			}
		}
		c.Close()
	})
}

func (s *gorillaFan) accept(n int) (err error) {
	s.conns, err = fanCollect(s.served, n)
	return err
}

func (s *gorillaFan) broadcast(payload []byte) error {
	m, err := gorilla.NewPreparedMessage(gorilla.TextMessage, payload)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(fanWriteTimeout)
	for _, c := range s.conns {
		c.SetWriteDeadline(deadline)
		if err := c.WritePreparedMessage(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *gorillaFan) wireSent() (uint64, bool) { return 0, false }

func (s *gorillaFan) end() error { return endPeerFan(&s.readers, &s.mu, &s.all) }

// gwsFan is gws's server: each connection's handler goroutine runs its
// ReadLoop (answering the client's close) until the connection ends.
type gwsFan struct {
	up      *gws.Upgrader
	served  chan *gws.Conn
	conns   []*gws.Conn
	mu      sync.Mutex
	all     []*gws.Conn
	readers sync.WaitGroup
}

func startGWSFan(n int, deflate bool) (fanServer, http.Handler) {
	s := &gwsFan{served: make(chan *gws.Conn, n)}
	s.up = gws.NewUpgrader(gws.BuiltinEventHandler{}, &gws.ServerOption{
		PermessageDeflate: gws.PermessageDeflate{Enabled: deflate, ServerContextTakeover: false, ClientContextTakeover: false},
	})
	return s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.up.Upgrade(w, r)
		if err != nil {
			return // Upgrade answered
		}
		s.mu.Lock()
		s.all = append(s.all, c)
		s.readers.Add(1)
		s.mu.Unlock()
		defer s.readers.Done()
		s.served <- c
		c.ReadLoop()
	})
}

func (s *gwsFan) accept(n int) (err error) {
	s.conns, err = fanCollect(s.served, n)
	return err
}

func (s *gwsFan) broadcast(payload []byte) error {
	b := gws.NewBroadcaster(gws.OpcodeText, payload)
	for _, c := range s.conns {
		if err := b.Broadcast(c); err != nil {
			b.Close()
			return err
		}
	}
	return b.Close()
}

func (s *gwsFan) wireSent() (uint64, bool) { return 0, false }

func (s *gwsFan) end() error { return endPeerFan(&s.readers, &s.mu, &s.all) }

// endPeerFan waits for a peer server's connections to end once the
// clients have closed theirs, and closes those left after fanWait.
func endPeerFan[C interface{ NetConn() net.Conn }](readers *sync.WaitGroup, mu *sync.Mutex, all *[]C) error {
	if waitGroupWithin(readers, fanWait) {
		return nil
	}
	mu.Lock()
	for _, c := range *all {
		c.NetConn().Close()
	}
	mu.Unlock()
	waitGroupWithin(readers, fanWait)
	return fmt.Errorf("connections still open %v after the clients closed theirs", fanWait)
}

// fanClients is the parent's end of the clients' process. It asks, on the
// child's stdin, with a command byte: 'd' and a line "url n deflate" (dial
// n clients, answered "ok"), 'w' and 8 bytes (wait until that many
// messages have arrived in all since the dial; answered in 16 bytes: how
// many arrived, how many failures), 's' (answered "ok wireBytes messages",
// the clients' ConnStats added up) and 'c' (close every client, answered
// "ok"). An answer that is not "ok…" is the error. The binary wait
// allocates nothing on either side of the pipe.
type fanClients struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *os.File
	br   *bufio.Reader
	ask  [9]byte
	told [16]byte
}

// startFanClients starts the clients' process, stopped at the end of tb.
func startFanClients(tb testing.TB) *fanClients {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fanClientsEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	f, ok := out.(*os.File)
	if !ok {
		tb.Fatalf("the child's stdout is a %T", out)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	k := &fanClients{cmd: cmd, in: in, out: f, br: bufio.NewReader(f)}
	tb.Cleanup(k.stop)
	return k
}

// stop closes the child's stdin, which ends it, and waits for it to
// exit (killing it after fanWait).
func (k *fanClients) stop() {
	k.in.Close()
	done := make(chan error, 1)
	go func() { done <- k.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(fanWait):
		k.cmd.Process.Kill()
		<-done
	}
}

// answer reads the child's answer line.
func (k *fanClients) answer(within time.Duration) (string, error) {
	k.out.SetReadDeadline(time.Now().Add(within))
	line, err := k.br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("the clients' process: %v", err)
	}
	line = strings.TrimSuffix(line, "\n")
	if rest, ok := strings.CutPrefix(line, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("the clients' process: %s", line)
}

func (k *fanClients) dial(url string, n int, deflate bool) error {
	if _, err := fmt.Fprintf(k.in, "d%s %d %t\n", url, n, deflate); err != nil {
		return err
	}
	_, err := k.answer(fanSetupWait)
	return err
}

// wait returns once the clients have received target messages since the
// dial, all of them the message sent.
func (k *fanClients) wait(target uint64) error {
	k.ask[0] = 'w'
	binary.BigEndian.PutUint64(k.ask[1:], target)
	if _, err := k.in.Write(k.ask[:]); err != nil {
		return err
	}
	k.out.SetReadDeadline(time.Now().Add(fanWait + 10*time.Second))
	if _, err := io.ReadFull(k.br, k.told[:]); err != nil {
		return fmt.Errorf("the clients' process: %v", err)
	}
	got, failed := binary.BigEndian.Uint64(k.told[:8]), binary.BigEndian.Uint64(k.told[8:])
	if got != target || failed != 0 {
		return fmt.Errorf("the clients received %d messages, want %d; %d failures (on the child's stderr)", got, target, failed)
	}
	return nil
}

// stats returns the clients' wire bytes and messages received.
func (k *fanClients) stats() (wire, msgs uint64, err error) {
	if _, err := k.in.Write([]byte{'s'}); err != nil {
		return 0, 0, err
	}
	line, err := k.answer(fanWait)
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(line, &wire, &msgs); err != nil {
		return 0, 0, fmt.Errorf("the clients' stats %q: %v", line, err)
	}
	return wire, msgs, nil
}

func (k *fanClients) closeAll() error {
	if _, err := k.in.Write([]byte{'c'}); err != nil {
		return err
	}
	_, err := k.answer(fanSetupWait)
	return err
}

// The child's side.

func init() {
	if os.Getenv(fanClientsEnv) != "" {
		os.Exit(fanClientProcess(os.Stdin, os.Stdout))
	}
}

// fanClientProcess serves fanClients' commands until stdin ends.
func fanClientProcess(stdin io.Reader, out io.Writer) int {
	in := bufio.NewReader(stdin)
	var set *fanClientSet
	defer func() {
		if set != nil {
			set.close()
		}
	}()
	reply := func(err error, format string, args ...any) {
		if err != nil {
			fmt.Fprintf(out, "error %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		}
		fmt.Fprintf(out, "ok "+format+"\n", args...)
	}
	errNoClients := errors.New("no clients dialed")
	for {
		op, err := in.ReadByte()
		if err != nil {
			return 0 // the parent is done
		}
		switch op {
		case 'd':
			line, err := in.ReadString('\n')
			var url string
			var n int
			var deflate bool
			if err == nil {
				_, err = fmt.Sscan(line, &url, &n, &deflate)
			}
			if err == nil {
				err = raiseOpenFiles(uint64(n) + 512)
			}
			if set != nil {
				set.close()
			}
			if err == nil {
				set, err = dialFanClients(url, n, deflate)
			}
			reply(err, "")
		case 'w':
			var ask [8]byte
			if _, err := io.ReadFull(in, ask[:]); err != nil {
				return 1
			}
			var told [16]byte
			if set == nil {
				binary.BigEndian.PutUint64(told[8:], 1)
			} else {
				got, failed := set.wait(binary.BigEndian.Uint64(ask[:]))
				binary.BigEndian.PutUint64(told[:8], got)
				binary.BigEndian.PutUint64(told[8:], failed)
			}
			out.Write(told[:])
		case 's':
			if set == nil {
				reply(errNoClients, "")
				break
			}
			var wire, msgs uint64
			for _, c := range set.conns {
				s := c.Stats()
				wire += s.WireBytesReceived
				msgs += s.MessagesReceived
			}
			reply(nil, "%d %d", wire, msgs)
		case 'c':
			var err error
			if set != nil { // nil after a failed dial, closed then
				err = set.close()
				set = nil
			}
			reply(err, "")
		default:
			fmt.Fprintf(os.Stderr, "broadcast clients: unknown command %q\n", op)
			return 1
		}
	}
}

// fanClientSet is a case's clients in the child.
type fanClientSet struct {
	want      []byte
	conns     []*Conn
	delivered atomic.Uint64 // messages received whole and as sent
	target    atomic.Uint64 // what wait waits for
	reached   chan struct{} // a message arrived at or past target, or a failure
	failures  atomic.Uint64
	closing   atomic.Bool
	readers   sync.WaitGroup
}

// dialFanClients dials n clients, fanParallel at a time, and starts their
// readers. With deflate they offer permessage-deflate without context
// takeover, and every answer must accept it; without, they offer nothing.
func dialFanClients(url string, n int, deflate bool) (*fanClientSet, error) {
	s := &fanClientSet{want: fanPayload(), conns: make([]*Conn, n), reached: make(chan struct{}, 1)}
	s.target.Store(math.MaxUint64)
	opts := &DialOptions{}
	if deflate {
		opts.Compression = CompressionNoContextTakeover
	}
	var next atomic.Int64
	var dialers sync.WaitGroup
	errs := make(chan error, fanParallel)
	for range fanParallel {
		dialers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, resp, err := Dial(ctx, url, opts)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				s.conns[i] = c
				s.readers.Add(1)
				go s.read(c)
				ext := resp.Header.Get("Sec-WebSocket-Extensions")
				if deflate && !(strings.Contains(ext, "permessage-deflate") && strings.Contains(ext, "server_no_context_takeover")) ||
					!deflate && ext != "" {
					errs <- fmt.Errorf("the server answered Sec-WebSocket-Extensions %q (compression offered: %t)", ext, deflate)
					return
				}
			}
		})
	}
	dialers.Wait()
	select {
	case err := <-errs:
		s.close()
		return nil, err
	default:
	}
	return s, nil
}

// read receives every message on c until it ends, and counts those that
// are the message sent.
func (s *fanClientSet) read(c *Conn) {
	defer s.readers.Done()
	buf := make([]byte, len(s.want)+1)
	for {
		tp, r, err := c.ReceiveMessage()
		if err != nil {
			if !s.closing.Load() {
				s.fail(fmt.Errorf("receive: %w", err))
			}
			return
		}
		n, err := io.ReadFull(r, buf)
		switch {
		case tp != Text:
			s.fail(fmt.Errorf("a message of type %v", tp))
		case err != io.ErrUnexpectedEOF || !bytes.Equal(buf[:n], s.want):
			s.fail(fmt.Errorf("a message of %d bytes (or more: %v) is not the one sent", n, err))
		default:
			if s.delivered.Add(1) >= s.target.Load() {
				s.wake()
			}
		}
	}
}

func (s *fanClientSet) wake() {
	select {
	case s.reached <- struct{}{}:
	default:
	}
}

// fail counts a failure, says the first on stderr, and ends a wait.
func (s *fanClientSet) fail(err error) {
	if s.failures.Add(1) == 1 {
		fmt.Fprintln(os.Stderr, "broadcast clients:", err)
	}
	s.wake()
}

// wait waits until target messages have arrived, a failure, or fanWait,
// and returns how many arrived and the failures.
func (s *fanClientSet) wait(target uint64) (got, failed uint64) {
	s.target.Store(target)
	timer := time.NewTimer(fanWait)
	defer timer.Stop()
	for s.delivered.Load() < target && s.failures.Load() == 0 {
		select {
		case <-s.reached:
		case <-timer.C:
			return s.delivered.Load(), s.failures.Load() + 1
		}
	}
	return s.delivered.Load(), s.failures.Load()
}

// close closes every client, fanParallel at a time (each waits for the
// server's close frame), and waits for the readers to end.
func (s *fanClientSet) close() error {
	s.closing.Store(true)
	var next atomic.Int64
	var closers sync.WaitGroup
	var failed atomic.Int64
	for range fanParallel {
		closers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(s.conns) {
					return
				}
				if c := s.conns[i]; c != nil && c.Close(StatusOK, "") != nil {
					failed.Add(1)
				}
			}
		})
	}
	closers.Wait()
	if !waitGroupWithin(&s.readers, fanWait) {
		return fmt.Errorf("readers still running %v after the clients closed", fanWait)
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d clients' closing handshakes failed", f, len(s.conns))
	}
	return nil
}
