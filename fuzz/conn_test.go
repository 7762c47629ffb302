package fuzz

import (
	"encoding/binary"
	"testing"

	gofuzz "github.com/google/gofuzz"
	"pgregory.net/rapid"
)

// FuzzConn is the differential target: the input becomes a scenario (client
// frames with their flags, opcodes, lengths, masks, payloads and split
// points, and the handler's calls) through gofuzz, and the real connection
// must do what the model does, frame for frame and call for call.
// Rows: every row a scenario reaches, checked against the model.
func FuzzConn(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var sc scenario
		gofuzz.NewFromGoFuzz(data).NilChance(0).NumElements(1, 6).Fuzz(&sc)
		sc.run(t)
	})
}

// FuzzConnRapid bridges rapid into the fuzzer: the scenario is drawn by
// rapid's generators, whose choices the fuzzer's coverage guidance steers.
// `go test` replays the corpus as for any target, and rapid's own
// property tests in websocket/ draw at random as before.
// Rows: every row a scenario reaches, checked against the model.
func FuzzConnRapid(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(func(t *rapid.T) {
		genScenario().Draw(t, "scenario").run(t)
	}))
}

// genScenario draws a scenario with rapid's generators: the same raw
// fields gofuzz fills, drawn with the values that matter more often. Every
// draw takes 8 bytes of a fuzz input, so payloads are kept short.
func genScenario() *rapid.Generator[scenario] {
	return rapid.Custom(func(t *rapid.T) scenario {
		steps := rapid.SliceOfN(genAction(), 1, 10).Draw(t, "steps")
		return scenario{Steps: steps, Deflate: rapid.Uint8().Draw(t, "deflate")}
	})
}

func genAction() *rapid.Generator[action] {
	return rapid.Custom(func(t *rapid.T) action {
		a := action{Kind: rapid.Uint8().Draw(t, "kind"), Pick: rapid.Uint8().Draw(t, "pick")}
		switch a.kind() {
		case actFrames:
			a.Frames = rapid.SliceOfN(genFrame(), 1, 4).Draw(t, "frames")
			a.Splits = rapid.SliceOfN(rapid.Uint16(), 0, 3).Draw(t, "splits")
			a.Code = rapid.Uint16().Draw(t, "at") // where doCompressed breaks a message
		case actRawBytes:
			a.Data = rapid.SliceOfN(rapid.Byte(), 0, 24).Draw(t, "data")
			a.Splits = rapid.SliceOfN(rapid.Uint16(), 0, 3).Draw(t, "splits")
		case actSendText, actSendBinary:
			a.Text = rapid.StringN(0, 16, -1).Draw(t, "text")
			a.Data = rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, "data")
		case actSendMessage:
			a.Text = rapid.StringN(0, 16, -1).Draw(t, "text")
			a.Writes = rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 0, 12), 0, 4).Draw(t, "writes")
		case actReceive:
			a.N = rapid.Uint32().Draw(t, "n")
		case actClose:
			a.Text = rapid.StringN(0, 16, -1).Draw(t, "reason")
			a.Data = rapid.SliceOfN(rapid.Byte(), 0, 130).Draw(t, "reasonBytes")
			a.N = rapid.Uint32().Draw(t, "n")
			a.Code = rapid.Uint16().Draw(t, "code")
		}
		return a
	})
}

func genFrame() *rapid.Generator[frameSpec] {
	return rapid.Custom(func(t *rapid.T) frameSpec {
		f := frameSpec{
			Fin:  rapid.IntRange(0, 3).Draw(t, "fin") > 0,
			Rsv:  rapid.Uint8().Draw(t, "rsv"),
			Op:   rapid.Uint8().Draw(t, "op"),
			Mask: rapid.SampledFrom([]uint8{1, 1, 1, 1, 1, 1, 1, 0}).Draw(t, "mask"),
			Form: rapid.Uint8().Draw(t, "form"),
		}
		binary.BigEndian.PutUint32(f.Key[:], rapid.Uint32().Draw(t, "key"))
		if op := frameOps[int(f.Op)%len(frameOps)]; op == 1 || op == 0 {
			f.Text = rapid.StringN(0, 16, -1).Draw(t, "text")
		}
		f.Payload = rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, "payload")
		return f
	})
}
