package wstest

import (
	"fmt"
	"strings"

	"github.com/wsmachine/wsmachine/model"
)

// Result is what a call of a connection returned, as the drivers under
// test report it, to compare with the model's model.Result.
type Result struct {
	Call model.Kind
	Err  error
	Type byte // a received message's type
	Data []byte
	N    int // bytes a receive into a buffer or a writer's Write took
}

// IndexOfResult returns the index of the model's result for call with
// the error err, or else for call, or -1: two calls of one kind may
// return in one step in either order (Pings, when the connection ends),
// and each is matched with what the model predicts for one of them.
func IndexOfResult(rs []model.Result, call model.Kind, err model.Err) int {
	for i, r := range rs {
		if r.Call == call && r.Err == err {
			return i
		}
	}
	return IndexOfCall(rs, call)
}

// IndexOfCall returns the index of the model's result for call, or -1.
func IndexOfCall(rs []model.Result, call model.Kind) int {
	for i, r := range rs {
		if r.Call == call {
			return i
		}
	}
	return -1
}

// Clip shortens b for a failure message.
func Clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + fmt.Sprintf("…(%d bytes)", len(b))
	}
	return strings.ToValidUTF8(string(b), "?")
}

// Describe shows a frame (an unmasked one) for a failure message.
func Describe(frame []byte) string {
	if len(frame) < 2 {
		return fmt.Sprintf("% x", frame)
	}
	return fmt.Sprintf("[fin=%v op=%d len=%d payload %q]", frame[0]&0x80 != 0, frame[0]&0xF, len(frame), Clip(frame[2:]))
}
