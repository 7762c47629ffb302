package coretest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wsmachine/wsmachine/model"
)

// The whole-connection fuzz targets in memory: the protocol, driven by
// memConn, against the model, as TestCoreAgreesWithModel does, with the
// scenario drawn from the fuzzer's bytes. They sit in this package
// because the protocol is unexported; fuzz/ holds the targets that go
// through a real Conn and TCP. Their corpus is in the repository's
// testdata/fuzz (websocket/testdata/fuzz links to it); make fuzz runs
// them with the others.

// FuzzCore decodes a scenario from the bytes: the first chooses the role
// (server or client) and permessage-deflate (none, without or with the
// peer's context takeover), then each step is a kind byte and the choices
// it needs (byteSource).
// Rows: C1, O1–O8, O10, O13, O15, K1–K6, K8–K11, K13, K15, T1–T3.
func FuzzCore(f *testing.F) {
	for _, seed := range coreSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script []byte) { runCoreScript(t, script) })
}

// runCoreScript runs the scenario script encodes (see FuzzCore).
func runCoreScript(t TB, script []byte) {
	src := &byteSource{b: script}
	setup := src.Intn("setup", 6)
	mode, client := setup%3, setup >= 3
	h := NewHarness(t, mode, client)
	var step []model.Input
	for steps := 0; len(src.b) > 0 && steps < 40; steps++ {
		step = Inputs(step[:0], src, src.Intn("kind", Kinds), mode > 0, client)
		for _, in := range step {
			h.Step(in)
		}
	}
	h.End()
}

// byteSource draws a scenario's choices from a fuzzer's bytes; once they
// run out, every choice is 0.
type byteSource struct{ b []byte }

func (s *byteSource) Intn(_ string, n int) int {
	if len(s.b) == 0 || n <= 1 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	if n > 256 && len(s.b) > 0 {
		v = v<<8 | int(s.b[0])
		s.b = s.b[1:]
	}
	return v % n
}

func (s *byteSource) Bytes(label string, max int) []byte {
	n := s.Intn(label, max+1)
	n = min(n, len(s.b))
	b := s.b[:n:n]
	s.b = s.b[n:]
	return b
}

// coreSeeds start FuzzCore off with scenarios that reach the closing
// handshake both ways, a fragmented text, a ping while closing, and a
// violation.
var coreSeeds = [][]byte{
	{0, 0, 2, 0, 0, 12},                      // a text frame, then a receive
	{0, 16, 0, 0, 0, 3, 0, 4, 0, 8, 0, 0, 0}, // Close, then the peer's close frame
	{0, 1, 1, 1, 1, 0, 0, 12, 2, 0, 2, 0, 0}, // fragments and a receive
	{0, 16, 1, 0, 0, 5, 0, 0},                // Close, then a ping
	{0, 7, 0, 6, 0, 0},                       // an unmasked frame
	{0, 9, 19, 18},                           // the end of TCP, a ping tick, the close timer
	{1, 0, 0, 2, 1, 0, 0, 1, 2, 0, 12},       // a compressed text frame, then a receive
	{2, 0, 0, 3, 1, 1, 12},                   // a compressed message past the limit
	{3, 0, 0, 2, 0, 0, 12, 10, 0},            // a client: a server's text frame, a receive, a send
	{5, 16, 4, 0, 0, 4, 0, 3, 0, 8, 0, 0, 0}, // a client with context takeover: Close, the server's close frame
}

// BenchmarkFuzzCoreCorpus replays FuzzCore's corpus, one scenario per
// iteration: the work of one fuzzing execution, without the engine's.
func BenchmarkFuzzCoreCorpus(b *testing.B) {
	files, err := filepath.Glob("testdata/fuzz/FuzzCore/*")
	if err != nil || len(files) == 0 {
		b.Fatalf("no corpus: %v", err)
	}
	var scripts [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		// go test fuzz v1, then one []byte("...") line.
		lines := strings.Split(string(data), "\n")
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			b.Fatalf("%s: %v", f, err)
		}
		scripts = append(scripts, []byte(s))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		runCoreScript(b, scripts[i%len(scripts)])
		i++
	}
}
