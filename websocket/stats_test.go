package websocket_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

// statsEcho echoes each message whole, closes the connection with 1000 on
// the text "bye", and on "flood" sends 64 KiB messages until a send fails.
func statsEcho(c *websocket.Conn) {
	for {
		tp, r, err := c.ReceiveMessage()
		if err != nil {
			return
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(r); err != nil {
			return
		}
		if tp == websocket.Text && b.String() == "bye" {
			c.Close(websocket.StatusOK, "")
			return
		}
		if tp == websocket.Text && b.String() == "flood" {
			for c.SendBinary(make([]byte, 64<<10)) == nil {
			}
			return
		}
		if tp == websocket.Text {
			err = c.SendText(b.String())
		} else {
			err = c.SendBinary(b.Bytes())
		}
		if err != nil {
			return
		}
	}
}

// echoed sends msg on c and waits for its echo.
func echoed(t *testing.T, c *websocket.Conn, tp websocket.MessageType, msg []byte) {
	t.Helper()
	var err error
	if tp == websocket.Text {
		err = c.SendText(string(msg))
	} else {
		err = c.SendBinary(msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	gotTp, r, err := c.ReceiveMessage()
	var got bytes.Buffer
	if err == nil {
		_, err = got.ReadFrom(r)
	}
	if err != nil || gotTp != tp || !bytes.Equal(got.Bytes(), msg) {
		t.Fatalf("echo: %v %v, %d bytes", gotTp, err, got.Len())
	}
}

// Statistics add up: a known mix of messages (compressed and not),
// refusals of every kind, and endings of every kind, counted exactly; the
// wire bytes of each side match the other's.
// Rows: C2, O1, O3, O6, O7, O8, O10, K4.
func TestHandlerStatsAddUp(t *testing.T) {
	h := &websocket.Handler{
		Compression:          websocket.CompressionNoContextTakeover,
		CompressionThreshold: 100,
		MaxConnections:       3,
		AccessOk: func(c *websocket.Conn, _ []string) bool {
			return c.ResourceName.Path != "/deny"
		},
	}
	url, served := shutdownServer(t, h, statsEcho)
	addr := strings.TrimPrefix(url, "ws://")

	// A: plain; two messages echoed, then the client closes (O6 here).
	a, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	aSrv := <-served
	echoed(t, a, websocket.Text, []byte("hello"))
	echoed(t, a, websocket.Binary, make([]byte, 1000))
	// B: compressed both ways; then "bye", and the server closes (K4).
	b, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{Compression: websocket.CompressionNoContextTakeover, CompressionThreshold: 100})
	if err != nil {
		t.Fatal(err)
	}
	bSrv := <-served
	long := bytes.Repeat([]byte("abcdefgh"), 1250) // 10,000 bytes
	echoed(t, b, websocket.Text, long)
	// C: a third client fills MaxConnections: a fourth is refused.
	c := dialSilent(t, url)
	<-served
	if _, resp, err := websocket.Dial(context.Background(), url, nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a fourth client: %v, want 503", err)
	}
	// Live counters, before anything ends. A send is counted once it has
	// returned, which may be a moment after the client has the echo.
	live := h.Stats()
	for deadline := time.Now().Add(2 * time.Second); live.MessagesSent < 3 && time.Now().Before(deadline); live = h.Stats() {
		time.Sleep(time.Millisecond)
	}
	if live.Open != 3 || live.MessagesReceived != 3 || live.MessagesSent != 3 ||
		live.PayloadBytesReceived != 11005 || live.PayloadBytesSent != 11005 {
		t.Errorf("while open: %+v", live)
	}
	aWire, bWire := a.Stats(), b.Stats()
	if got := aSrv.Stats(); got.WireBytesReceived != aWire.WireBytesSent || got.WireBytesSent != aWire.WireBytesReceived {
		t.Errorf("A's wire bytes: server %+v, client %+v", got, aWire)
	}
	if got := bSrv.Stats(); got.WireBytesReceived != bWire.WireBytesSent || got.WireBytesSent != bWire.WireBytesReceived ||
		got.WireBytesReceived >= got.PayloadBytesReceived/10 {
		t.Errorf("B's wire bytes: server %+v, client %+v (10,000 repeated bytes compress tenfold at least)", got, bWire)
	}

	// The endings: each client in turn, each waited for on the server.
	if err := a.Close(websocket.StatusOK, ""); err != nil {
		t.Fatal(err)
	}
	aSrv.GetStatus()
	if err := b.SendText("bye"); err != nil {
		t.Fatal(err)
	}
	bSrv.GetStatus()
	c.Close() // TCP dropped: O8
	for _, junk := range [][]byte{
		{0x82, 0x01, 'x'}, // unmasked: 1002 (O7)
		wstest.ClientFrame(true, 0, 0x1, []byte{0xff}, [4]byte{1, 2, 3, 4}), // invalid UTF-8: 1007
	} {
		rc := dialSilent(t, url)
		srv := <-served
		rc.Write(junk)
		srv.GetStatus()
		rc.Close()
	}

	// The refusals, one of each kind.
	if ex := doRawHTTP(t, addr, "GET", "GET / HTTP/1.1", "Host: "+addr); ex.Resp.StatusCode/100 != 4 {
		t.Fatalf("a plain GET: %d", ex.Resp.StatusCode)
	}
	if ex := doRawHTTP(t, addr, "GET", handshakeRequest(addr, "/", wstest.NewKey(), "Origin: %zz")...); ex.Resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed Origin: %d", ex.Resp.StatusCode)
	}
	if _, _, err := websocket.Dial(context.Background(), url+"/deny", nil); err == nil {
		t.Fatal("AccessOk's refusal was accepted")
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := websocket.Dial(context.Background(), url, nil); err == nil {
		t.Fatal("a client was accepted after Shutdown")
	}

	st := h.Stats()
	want := websocket.HandlerStats{Open: 0, Accepted: 5}
	want.Refused.NotWebSocket, want.Refused.Origin, want.Refused.AccessOk, want.Refused.Limit, want.Refused.ShuttingDown = 1, 1, 1, 1, 1
	want.Ended.ClosedByPeer, want.Ended.ClosedByUs, want.Ended.ReadError = 1, 1, 1
	want.Ended.ProtocolError = map[websocket.Status]uint64{1002: 1, 1007: 1}
	want.MessagesReceived, want.MessagesSent = 5, 3 // and "bye", and the invalid text's start
	want.PayloadBytesReceived, want.PayloadBytesSent = 11008, 11005
	want.ConnStats.WireBytesReceived, want.ConnStats.WireBytesSent = st.WireBytesReceived, st.WireBytesSent
	if !statsEqual(st, want) {
		t.Errorf("Stats\n got %+v\nwant %+v", st, want)
	}
	if st.WireBytesReceived <= aWire.WireBytesSent+bWire.WireBytesSent || st.WireBytesSent <= aWire.WireBytesReceived+bWire.WireBytesReceived {
		t.Errorf("wire bytes %d in, %d out: less than A's and B's", st.WireBytesReceived, st.WireBytesSent)
	}
}

// statsEqual compares two snapshots, their maps by content.
func statsEqual(a, b websocket.HandlerStats) bool {
	if len(a.Ended.ProtocolError) != len(b.Ended.ProtocolError) {
		return false
	}
	for code, n := range a.Ended.ProtocolError {
		if b.Ended.ProtocolError[code] != n {
			return false
		}
	}
	a.Ended.ProtocolError, b.Ended.ProtocolError = nil, nil
	return reflect.DeepEqual(a, b)
}

// The timers' counts: keepalive pings and their pongs, an idle client
// dropped, a client that stops reading dropped by the write timeout, a
// close not answered in time, and a client dropped by Shutdown's deadline;
// each gives its place under MaxConnections back.
// Rows: O2, O13, O8, O9, K8, K15.
func TestHandlerStatsTimers(t *testing.T) {
	h := &websocket.Handler{PingInterval: 50 * time.Millisecond, IdleTimeout: 500 * time.Millisecond,
		CloseTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond,
		// Two places: the live client's, and one that each of the others
		// takes in turn, once the one before has given it back.
		MaxConnections: 2}
	url, served := shutdownServer(t, h, statsEcho)

	// A client that answers pings stays; one that does not is dropped.
	alive, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	aliveSrv := <-served
	silent := dialSilent(t, url)
	silentSrv := <-served
	silentSrv.GetStatus()
	silent.Close()
	if st := aliveSrv.Stats(); st.PingsSent < 2 || st.PongsReceived+1 < st.PingsSent {
		t.Errorf("the live client: %d pings sent, %d pongs back", st.PingsSent, st.PongsReceived)
	}
	// A client that asks for a flood of messages and does not read them.
	flood := dialSilent(t, url)
	srv := <-served
	flood.Write(wstest.ClientFrame(true, 0, 0x1, []byte("flood"), [4]byte{7, 7, 7, 7}))
	srv.GetStatus()
	flood.Close()
	// A client that asks the server to close and then does not answer.
	rc := dialSilent(t, url)
	srv = <-served
	rc.Write(wstest.ClientFrame(true, 0, 0x1, []byte("bye"), [4]byte{9, 9, 9, 9}))
	srv.GetStatus()
	rc.Close()
	// Shutdown with a deadline before the close timeout would end it:
	// the live client answers, so a silent one is needed.
	h.CloseTimeout = time.Minute
	last := dialSilent(t, url)
	defer last.Close()
	<-served
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	h.Shutdown(ctx)
	alive.GetStatus()

	st := h.Stats()
	e := st.Ended
	if e.IdleTimeout != 1 || e.WriteError != 1 || e.CloseTimeout != 1 || e.Shutdown != 1 || e.ClosedByUs != 1 || st.Accepted != 5 || st.Open != 0 {
		t.Errorf("Stats: %+v", st)
	}
	if st.PingsSent < 2 || st.PongsReceived < 1 || st.MessagesSent < 10 {
		t.Errorf("%d pings sent, %d pongs received", st.PingsSent, st.PongsReceived)
	}
}

// The Logger gets one Debug record for each refused handshake, protocol
// error, drop and shutdown, and none for messages or clean closes.
// Rows: C2, O6, O7, O8, O10, K4.
func TestHandlerLogs(t *testing.T) {
	var buf syncBuffer
	h := &websocket.Handler{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	url, served := shutdownServer(t, h, statsEcho)
	addr := strings.TrimPrefix(url, "ws://")

	c, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := <-served
	for range 10 {
		echoed(t, c, websocket.Text, []byte("hello"))
	}
	c.Close(websocket.StatusOK, "") // clean: not logged
	srv.GetStatus()
	doRawHTTP(t, addr, "GET", "GET / HTTP/1.1", "Host: "+addr) // refused
	rc := dialSilent(t, url)
	srv = <-served
	rc.Write([]byte{0x82, 0x01, 'x'}) // unmasked: 1002
	srv.GetStatus()
	rc.Close()
	rc = dialSilent(t, url)
	srv = <-served
	rc.Close() // dropped
	srv.GetStatus()
	h.Shutdown(context.Background())

	logs := buf.String()
	for _, want := range []string{
		`msg="websocket: handshake refused" status=400`,
		`msg="websocket: protocol error" code=1002`,
		`msg="websocket: connection dropped"`,
		`msg="websocket: shutting down" open=0`,
		`msg="websocket: shut down"`,
	} {
		if strings.Count(logs, want) != 1 {
			t.Errorf("want one record with %s, got:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "\n"); n != 5 {
		t.Errorf("%d records, want 5 (nothing per message, nothing for a clean close):\n%s", n, logs)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
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
