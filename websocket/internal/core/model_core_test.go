package core_test

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/wsmachine/wsmachine/model"
	"github.com/wsmachine/wsmachine/websocket/internal/coretest"
)

// The property test of STATE_MACHINE.md in memory: the protocol, driven by
// coretest's memConn, and the model in model/ are given the same inputs; after each,
// the frames written must be byte for byte the model's, and the calls'
// results, TCP's end, the state and the peer's close code the same. No
// socket or goroutine is involved, so it runs thousands of scenarios a
// second; model_test.go runs the same comparison through a real Conn and
// TCP for what only sockets show.

// TestCoreAgreesWithModel runs random scenarios against the protocol in
// memory, the peer's bytes split at random points.
// Rows: C1, O1–O8, O10, O13, O15, K1–K6, K8–K11, K13, K15, T1–T3, and the frame
// checks and compressed messages' rules (write failures, message writers
// and refused handshakes are model_test.go's).
func TestCoreAgreesWithModel(t *testing.T) {
	rapid.Check(t, coreScenario)
}

// coreScenario is one scenario of TestCoreAgreesWithModel and
// FuzzCoreRapid: a role, permessage-deflate or not, up to 40 steps, and
// the end.
func coreScenario(t *rapid.T) {
	mode, client := rapid.IntRange(0, 2).Draw(t, "deflate"), rapid.Bool().Draw(t, "client")
	h := coretest.NewHarness(t, mode, client)
	for _, ev := range rapid.SliceOfN(genCoreInput(mode > 0, client), 0, 40).Draw(t, "inputs") {
		for _, in := range ev {
			h.Step(in)
		}
	}
	h.End()
}

// genCoreInput draws what a test does next: frames from the peer, split
// into pieces that arrive one by one, or an API call or a timer.
func genCoreInput(deflate, client bool) *rapid.Generator[[]model.Input] {
	return rapid.Custom(func(t *rapid.T) []model.Input {
		return coretest.Inputs(nil, rapidSource{t}, rapid.IntRange(0, coretest.Kinds-1).Draw(t, "kind"), deflate, client)
	})
}

type rapidSource struct{ t *rapid.T }

func (s rapidSource) Intn(label string, n int) int {
	return rapid.IntRange(0, n-1).Draw(s.t, label)
}

func (s rapidSource) Bytes(label string, max int) []byte {
	return rapid.SliceOfN(rapid.Byte(), 0, max).Draw(s.t, label)
}

// FuzzCoreRapid draws the scenario with TestCoreAgreesWithModel's
// generators (rapid.MakeFuzz), so that coverage guides rapid's choices.
// Rows: C1, O1–O8, O10, O13, O15, K1–K6, K8–K11, K13, K15, T1–T3.
func FuzzCoreRapid(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(coreScenario))
}
