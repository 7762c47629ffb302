package websocket

import (
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/wsmachine/wsmachine/model"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
)

var eventNames = map[string]event{
	"Accepted": evAccepted, "Refused": evRefused, "RecvData": evRecvData, "RecvPing": evRecvPing,
	"RecvPong": evRecvPong, "RecvClose": evRecvClose, "ProtocolError": evProtocolError,
	"ReadFailed": evReadFailed, "WriteFailed": evWriteFailed, "Send": evSend, "Receive": evReceive,
	"Close": evClose, "CloseTimeout": evCloseTimeout, "PingTimer": evPingTimer, "Abandon": evAbandon,
}

func parseState(t *testing.T, name string) state {
	for s, n := range stateNames {
		if n == name {
			return state(s)
		}
	}
	t.Fatalf("unknown state %q", name)
	return 0
}

// TestStepImplementsTransitionTable checks every row of STATE_MACHINE.md
// against step, and that every (state, event) pair has exactly one row.
func TestStepImplementsTransitionTable(t *testing.T) {
	rows, err := model.ReadTable("../STATE_MACHINE.md")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[[2]int]string{}
	for _, row := range rows {
		from, to := parseState(t, string(row.From)), parseState(t, string(row.To))
		var events []event
		if row.Events == nil {
			for _, ev := range eventNames {
				events = append(events, ev)
			}
		}
		for _, name := range row.Events {
			ev, ok := eventNames[string(name)]
			if !ok {
				t.Fatalf("%s: unknown event %q", row.ID, name)
			}
			events = append(events, ev)
		}
		for _, ev := range events {
			key := [2]int{int(from), int(ev)}
			if prev, dup := covered[key]; dup {
				t.Errorf("%s and %s both cover %s × %s", prev, row.ID, row.From, row.Events)
			}
			covered[key] = row.ID

			for _, client := range []bool{false, true} { // the rows hold for both ends
				c := newConn()
				c.p.state, c.p.client = from, client
				// How a connection ends is recorded on the way in: a clean
				// close ends with ErrConnClosed itself, a failure with an
				// error that says why.
				endErr := fmt.Errorf("%w: why", ErrConnClosed)
				switch from {
				case stateClosed:
					c.p.cause = ErrConnClosed
				case stateDropped:
					c.p.cause = endErr
				}
				fx := c.p.step(ev, StatusGoingAway, "bye")
				if c.p.state != to {
					t.Errorf("%s: %s × %v → %s, table says %s", row.ID, row.From, row.Events, c.p.state, row.To)
				}
				frames := map[model.FramesCell]effects{
					"—": {}, "data": {}, "pong": {pong: true}, "ping": {ping: true},
					"close(echo)":         {sendClose: true, closeCode: c.p.replyCode(StatusGoingAway)},
					"close(error)":        {sendClose: true, closeCode: StatusGoingAway, closeReason: "bye"},
					"close(code, reason)": {sendClose: true, closeCode: StatusGoingAway, closeReason: "bye"},
					"close(abandoned)":    {sendClose: true, closeCode: StatusInternalServerError, closeReason: reasonAbandoned},
				}
				want, ok := frames[row.Frames]
				if !ok {
					t.Fatalf("%s: unknown Frames cell %q", row.ID, row.Frames)
				}
				if fx.pong != want.pong || fx.ping != want.ping || fx.sendClose != want.sendClose ||
					fx.closeCode != want.closeCode || fx.closeReason != want.closeReason {
					t.Errorf("%s: effects %+v, table says frames %q", row.ID, fx, row.Frames)
				}
				tcpCells := map[model.TCPCell]tcpEffect{
					"—": tcpNone, "close": tcpClose, model.TCPCloseAfterServer: tcpCloseAfterServer,
					"close after ours": tcpCloseAfterOurs, "end": tcpEnd,
				}
				wantTCP, ok := tcpCells[row.TCP]
				if !ok {
					t.Fatalf("%s: unknown TCP cell %q", row.ID, row.TCP)
				}
				if fx.tcp != wantTCP {
					t.Errorf("%s: tcp=%v, table says %q", row.ID, fx.tcp, row.TCP)
				}
				// The client leaves it to the server to close TCP first.
				if c.p.awaitsServerFIN(fx.tcp) != (row.TCP == model.TCPCloseAfterServer && client) {
					t.Errorf("%s (client %v): awaitsServerFIN=%v, table says %q", row.ID, client, c.p.awaitsServerFIN(fx.tcp), row.TCP)
				}
				// step refuses API calls; what a receiver gets for a network
				// event is the reader's business (read.go).
				apiCall := ev == evSend || ev == evReceive || ev == evClose || ev == evAbandon || from.terminal()
				switch {
				case row.Caller == "end error":
					if fx.err != endErr {
						t.Errorf("%s: err=%v, table says the caller gets the end error %v", row.ID, fx.err, endErr)
					}
				case apiCall && (fx.err == ErrConnClosed) != (row.Caller == "ErrConnClosed"),
					ev == evAbandon && from != stateConnecting && (fx.err == nil) != (row.Caller == "wraps ErrConnClosed"):
					t.Errorf("%s: err=%v, table says caller gets %q", row.ID, fx.err, row.Caller)
				}
			}
		}
	}
	for s := range stateNames {
		for name, ev := range eventNames {
			if _, ok := covered[[2]int{s, int(ev)}]; !ok {
				t.Errorf("no row for %s × %s", stateNames[s], name)
			}
		}
	}
}

// TestStepRecordsClientStatus checks what GetStatus will report after the
// transitions into closed and dropped.
func TestStepRecordsClientStatus(t *testing.T) {
	tests := []struct {
		name       string
		from       state
		ev         event
		code       Status
		wantStatus Status
		wantReply  Status
	}{
		{"O6 echoes the code", stateOpen, evRecvClose, 4001, 4001, 4001},
		{"O6 empty close", stateOpen, evRecvClose, StatusNotSent, StatusNotSent, StatusNotSent},
		{"O6 answers 1010 with 1000", stateOpen, evRecvClose, 1010, 1010, StatusOK},
		{"K4 records the code", stateClosing, evRecvClose, 1001, 1001, 0},
		{"O7 leaves dropped", stateOpen, evProtocolError, StatusProtocolError, StatusDropped, StatusProtocolError},
		{"O8 leaves dropped", stateOpen, evReadFailed, 0, StatusDropped, 0},
		{"K8 leaves dropped", stateClosing, evCloseTimeout, 0, StatusDropped, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn()
			c.p.state = tt.from
			fx := c.p.step(tt.ev, tt.code, "why")
			if c.p.status != tt.wantStatus {
				t.Errorf("status %d, want %d", c.p.status, tt.wantStatus)
			}
			if fx.sendClose && fx.closeCode != tt.wantReply {
				t.Errorf("close frame code %d, want %d", fx.closeCode, tt.wantReply)
			}
		})
	}
}

// The model frames streamed messages as the library does.
func TestModelConstantsMatch(t *testing.T) {
	if writeBufferSize != model.WriteBufferSize {
		t.Errorf("writeBufferSize %d, model.WriteBufferSize %d", writeBufferSize, model.WriteBufferSize)
	}
	if defaultMaxMessageSize != model.DefaultMaxMessageSize {
		t.Errorf("defaultMaxMessageSize %d, model.DefaultMaxMessageSize %d", defaultMaxMessageSize, model.DefaultMaxMessageSize)
	}
}

// TestOnlyStateGoTouchesState walks the package's syntax trees: no file
// but state.go reads or writes a Conn's state, and in state.go only step
// writes it. Every decision that depends on the state is then step's, or
// a question state.go answers, so that a row of STATE_MACHINE.md has one
// place in the code.
// Rows: the transition table as a whole.
func TestOnlyStateGoTouchesState(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	for _, f := range pkgs["websocket"].Files {
		name := filepath.Base(fset.Position(f.Pos()).Filename)
		for _, decl := range f.Decls {
			fn, _ := decl.(*ast.FuncDecl)
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if n.Sel.Name == "state" && name != "state.go" {
						t.Errorf("%s: the state is touched outside state.go", fset.Position(n.Pos()))
					}
				case *ast.AssignStmt:
					for _, lhs := range n.Lhs {
						if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "state" {
							writes++
							if fn == nil || fn.Name.Name != "step" {
								t.Errorf("%s: the state is written outside step", fset.Position(n.Pos()))
							}
						}
					}
				}
				return true
			})
		}
	}
	if writes == 0 {
		t.Errorf("step writes no state: the walk looks in the wrong place")
	}
}

// Close's result is what step decided when the connection left closing:
// nil after the peer's close frame, an error wrapping ErrConnClosed after
// anything else.
// Rows: K4, K5, K6, K7, K8.
func TestCloseResultIsStepsDecision(t *testing.T) {
	for _, tt := range []struct {
		ev   event
		want bool // Close returns nil
	}{
		{evRecvClose, true}, {evProtocolError, false}, {evReadFailed, false}, {evWriteFailed, false}, {evCloseTimeout, false},
	} {
		c := newConn()
		c.p.state = stateClosing
		c.p.step(tt.ev, StatusOK, "")
		if err := c.closeResult(); (err == nil) != tt.want || err != nil && !errors.Is(err, ErrConnClosed) {
			t.Errorf("event %d from closing: Close returns %v", tt.ev, err)
		}
	}
}

// A Conn is allocated once per connection, and idle connections are what
// a server holds most of: it must stay within Go's 576-byte size class.
// An object over 512 bytes that holds pointers carries an 8-byte header
// in front, so Conn itself may be at most 568 bytes; at 576 it takes the
// 640-byte class and every idle connection costs 64 bytes more.
func TestConnFitsItsSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(Conn{}); size > 568 {
		t.Errorf("Conn is %d bytes: with its allocation header it leaves the 576-byte size class (reorder fields into padding, or make room)", size)
	}
}
