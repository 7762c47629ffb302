package websocket_test

// The public constants have the values RFC 6455 gives them.

import (
	"errors"
	"testing"

	"github.com/wsmachine/wsmachine/websocket"
)

func TestMessageTypeAndStatusValues(t *testing.T) {
	if websocket.Text != 1 || websocket.Binary != 2 {
		t.Errorf("Text=%d Binary=%d, want 1 and 2", websocket.Text, websocket.Binary)
	}
	if websocket.Text.String() != "Text" || websocket.Binary.String() != "Binary" {
		t.Errorf("String() = %q, %q", websocket.Text.String(), websocket.Binary.String())
	}
	want := map[websocket.Status]uint16{
		websocket.StatusOK: 1000, websocket.StatusGoingAway: 1001, websocket.StatusProtocolError: 1002,
		websocket.StatusUnsupportedType: 1003, websocket.StatusNotSent: 1005, websocket.StatusDropped: 1006,
		websocket.StatusInvalidData: 1007, websocket.StatusPolicyViolation: 1008, websocket.StatusTooLarge: 1009,
		websocket.StatusInternalServerError: 1011,
	}
	if len(want) != 10 {
		t.Errorf("status constants are not distinct")
	}
	for s, v := range want {
		if uint16(s) != v {
			t.Errorf("status %d, want %d", s, v)
		}
	}
	sentinels := []error{websocket.ErrConnClosed, websocket.ErrMessageType, websocket.ErrStatusCode, websocket.ErrTooLarge}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if a == nil || (i != j && errors.Is(a, b)) {
				t.Errorf("sentinel errors %v and %v are not distinct", a, b)
			}
		}
	}
}

func TestMessageTypeString(t *testing.T) {
	if websocket.Text.String() != "Text" || websocket.Binary.String() != "Binary" || websocket.MessageType(9).String() != "MessageType(9)" {
		t.Errorf("got %s %s %s", websocket.Text, websocket.Binary, websocket.MessageType(9))
	}
}
