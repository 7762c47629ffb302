package core

import (
	"errors"
	"fmt"
	"testing"

	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/wsmachine/wsmachine/model"
)

var eventNames = map[string]Event{
	"Accepted": EvAccepted, "Refused": EvRefused, "RecvData": EvRecvData, "RecvPing": EvRecvPing,
	"RecvPong": EvRecvPong, "RecvClose": EvRecvClose, "ProtocolError": EvProtocolError,
	"ReadFailed": EvReadFailed, "WriteFailed": EvWriteFailed, "Send": EvSend, "Receive": EvReceive,
	"Close": EvClose, "CloseTimeout": EvCloseTimeout, "PingTimer": EvPingTimer, "Abandon": EvAbandon,
	"Drop":   EvDrop,
	"Cancel": EvCancel,
	"Ping":   EvPing,
}

func parseState(t *testing.T, name string) State {
	for s, n := range stateNames {
		if n == name {
			return State(s)
		}
	}
	t.Fatalf("unknown state %q", name)
	return 0
}

// TestStepImplementsTransitionTable checks every row of STATE_MACHINE.md
// against step, and that every (state, event) pair has exactly one row.
func TestStepImplementsTransitionTable(t *testing.T) {
	rows, err := model.ReadTable("../../../STATE_MACHINE.md")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[[2]int]string{}
	for _, row := range rows {
		from, to := parseState(t, string(row.From)), parseState(t, string(row.To))
		var events []Event
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
				p := &Protocol{}
				p.state, p.Client = from, client
				// How a connection ends is recorded on the way in: a clean
				// close ends with ErrConnClosed itself, a failure with an
				// error that says why.
				endErr := fmt.Errorf("%w: why", ErrConnClosed)
				switch from {
				case StateClosed:
					p.cause = ErrConnClosed
				case StateDropped:
					p.cause = endErr
				}
				fx := p.Step(ev, Status(1001), "bye")
				if p.state != to {
					t.Errorf("%s: %s × %v → %s, table says %s", row.ID, row.From, row.Events, p.state, row.To)
				}
				frames := map[model.FramesCell]Effects{
					"—": {}, "data": {}, "pong": {Pong: true}, "ping": {Ping: true},
					"close(echo)":         {SendClose: true, CloseCode: p.replyCode(Status(1001))},
					"close(error)":        {SendClose: true, CloseCode: Status(1001), CloseReason: "bye"},
					"close(code, reason)": {SendClose: true, CloseCode: Status(1001), CloseReason: "bye"},
					"close(abandoned)":    {SendClose: true, CloseCode: StatusInternalServerError, CloseReason: ReasonAbandoned},
				}
				want, ok := frames[row.Frames]
				if !ok {
					t.Fatalf("%s: unknown Frames cell %q", row.ID, row.Frames)
				}
				if fx.Pong != want.Pong || fx.Ping != want.Ping || fx.SendClose != want.SendClose ||
					fx.CloseCode != want.CloseCode || fx.CloseReason != want.CloseReason {
					t.Errorf("%s: effects %+v, table says frames %q", row.ID, fx, row.Frames)
				}
				tcpCells := map[model.TCPCell]TCPEffect{
					"—": TCPNone, "close": TCPClose, model.TCPCloseAfterServer: TCPCloseAfterServer,
					"close after ours": TCPCloseAfterOurs, "end": TCPEnd,
				}
				wantTCP, ok := tcpCells[row.TCP]
				if !ok {
					t.Fatalf("%s: unknown TCP cell %q", row.ID, row.TCP)
				}
				if fx.TCP != wantTCP {
					t.Errorf("%s: tcp=%v, table says %q", row.ID, fx.TCP, row.TCP)
				}
				// The client leaves it to the server to close TCP first.
				if p.AwaitsServerFIN(fx.TCP) != (row.TCP == model.TCPCloseAfterServer && client) {
					t.Errorf("%s (client %v): awaitsServerFIN=%v, table says %q", row.ID, client, p.AwaitsServerFIN(fx.TCP), row.TCP)
				}
				// step refuses API calls; what a receiver gets for a network
				// event is the reader's business (read.go).
				apiCall := ev == EvSend || ev == EvReceive || ev == EvClose || ev == EvAbandon ||
					ev == EvCancel || ev == EvPing || from.terminal()
				switch {
				case row.Caller == "ctx error" || row.Caller == "waits":
					// The driver returns the context's error (O16) or
					// waits for the pong (O17): step refuses nothing.
					if fx.Err != nil {
						t.Errorf("%s: err=%v, table says the caller gets %q", row.ID, fx.Err, row.Caller)
					}
				case row.Caller == "end error":
					if fx.Err != endErr {
						t.Errorf("%s: err=%v, table says the caller gets the end error %v", row.ID, fx.Err, endErr)
					}
				case apiCall && (fx.Err == ErrConnClosed) != (row.Caller == "ErrConnClosed"),
					ev == EvAbandon && from != StateConnecting && (fx.Err == nil) != (row.Caller == "wraps ErrConnClosed"):
					t.Errorf("%s: err=%v, table says caller gets %q", row.ID, fx.Err, row.Caller)
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
		from       State
		ev         Event
		code       Status
		wantStatus Status
		wantReply  Status
	}{
		{"O6 echoes the code", StateOpen, EvRecvClose, 4001, 4001, 4001},
		{"O6 empty close", StateOpen, EvRecvClose, StatusNotSent, StatusNotSent, StatusNotSent},
		{"O6 answers 1010 with 1000", StateOpen, EvRecvClose, 1010, 1010, StatusOK},
		{"K4 records the code", StateClosing, EvRecvClose, 1001, 1001, 0},
		{"O7 leaves dropped", StateOpen, EvProtocolError, StatusProtocolError, StatusDropped, StatusProtocolError},
		{"O8 leaves dropped", StateOpen, EvReadFailed, 0, StatusDropped, 0},
		{"K8 leaves dropped", StateClosing, EvCloseTimeout, 0, StatusDropped, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Protocol{}
			p.state = tt.from
			fx := p.Step(tt.ev, tt.code, "why")
			if status, _ := p.PeerClose(); status != tt.wantStatus {
				t.Errorf("status %d, want %d", status, tt.wantStatus)
			}
			if fx.SendClose && fx.CloseCode != tt.wantReply {
				t.Errorf("close frame code %d, want %d", fx.CloseCode, tt.wantReply)
			}
		})
	}
}

// TestOnlyStateGoTouchesState walks the package's syntax trees: no file
// but state.go reads or writes a Protocol's state, and in state.go only Step
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
	for _, f := range pkgs["core"].Files {
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
							if fn == nil || fn.Name.Name != "Step" {
								t.Errorf("%s: the state is written outside Step", fset.Position(n.Pos()))
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
		ev   Event
		want bool // Close returns nil
	}{
		{EvRecvClose, true}, {EvProtocolError, false}, {EvReadFailed, false}, {EvWriteFailed, false}, {EvCloseTimeout, false},
	} {
		p := &Protocol{}
		p.state = StateClosing
		p.Step(tt.ev, StatusOK, "")
		if err := p.CloseResult(); (err == nil) != tt.want || err != nil && !errors.Is(err, ErrConnClosed) {
			t.Errorf("event %d from closing: Close returns %v", tt.ev, err)
		}
	}
}
