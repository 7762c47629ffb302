package fuzz

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsmachine/wsmachine/model"
)

// The hand-made seeds of the connection targets: every edge of RFC 6455 a
// frame can sit on. They are written as files into testdata/fuzz (Go's
// corpus format), where the fuzzer also keeps what it finds; this test
// checks that the files still hold what is built here, and
// `go test ./fuzz -run TestSeedCorpus -seeds.write` writes them anew.
var writeSeeds = flag.Bool("seeds.write", false, "write the hand-made seed corpus into testdata/fuzz")

type seed struct {
	name string
	args []any // the fuzz function's arguments: []byte, bool, byte or uint16
}

func TestSeedCorpus(t *testing.T) {
	for target, seeds := range map[string][]seed{
		"FuzzFrameReader":   frameReaderSeeds(),
		"FuzzUTF8Fragments": utf8Seeds(),
		"FuzzClosePayload":  closeSeeds(),
		"FuzzDeflate":       deflateSeeds(),
		"FuzzClient":        clientSeeds(),
		"FuzzConn":          randomSeeds("conn", 12, 16),
		"FuzzConnRapid":     randomSeeds("rapid", 12, 4096),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			path := filepath.Join(dir, s.name)
			want := corpusFile(s.args)
			if *writeSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is missing or differs from its seed (%v): run go test ./fuzz -run TestSeedCorpus -seeds.write", path, err)
			}
		}
	}
}

// corpusFile encodes arguments as Go's fuzzing engine stores them.
func corpusFile(args []any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case uint16:
			fmt.Fprintf(&b, "uint16(%d)\n", v)
		default:
			panic(fmt.Sprintf("no corpus encoding for %T", a))
		}
	}
	return []byte(b.String())
}

var seedKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func masked(fin bool, op byte, payload []byte) []byte {
	return clientFrame(fin, 0, op, payload, seedKey)
}

// header builds a masked frame header with a length written as given
// (lenField 0-125, 126 or 127, followed by ext), and no payload.
func header(b0, lenField byte, ext uint64) []byte {
	h := []byte{b0, 0x80 | lenField}
	switch lenField {
	case 126:
		h = binary.BigEndian.AppendUint16(h, uint16(ext))
	case 127:
		h = binary.BigEndian.AppendUint64(h, ext)
	}
	return append(h, seedKey[:]...)
}

func closeFrame(code uint16, reason string) []byte {
	return masked(true, 8, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// oneByOne cuts a stream into single bytes.
var oneByOne = bytes.Repeat([]byte{0}, 64)

func frameReaderSeeds() []seed {
	var seeds []seed
	add := func(name string, stream []byte, cuts ...byte) {
		seeds = append(seeds, seed{name, []any{stream, cuts}})
	}
	// Length encodings on both sides of each form's limit.
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536} {
		add(fmt.Sprintf("length-%d", n), masked(true, 2, bytes.Repeat([]byte{'a'}, n)))
	}
	add("length-16bit-form-for-125", append(header(0x82, 126, 125), make([]byte, 125)...))
	add("length-64bit-form-for-65535", header(0x82, 127, 65535))
	add("length-64bit-form-for-0", header(0x82, 127, 0))
	add("length-2^16-declared-none-sent", header(0x82, 127, 1<<16))
	add("length-2^63-top-bit", header(0x82, 127, 1<<63))
	add("length-2^63-1-declared", header(0x82, 127, 1<<63-1))
	add("length-2^64-1-declared", header(0x82, 127, 1<<64-1))
	add("length-7bit-header-cut", []byte{0x82, 0xfe, 0x00}, 1, 1)
	// Every opcode, alone and inside a fragmented message.
	for op := byte(0); op < 16; op++ {
		add(fmt.Sprintf("opcode-%x", op), masked(true, op, []byte("x")))
		add(fmt.Sprintf("opcode-%x-inside-message", op),
			append(append(masked(false, 1, []byte("a")), masked(true, op, []byte("b"))...), masked(true, 0, []byte("c"))...))
	}
	// Every RSV combination, on a data and on a control frame.
	for rsv := byte(1); rsv < 8; rsv++ {
		add(fmt.Sprintf("rsv-%d-text", rsv), clientFrame(true, rsv, 1, []byte("r"), seedKey))
		add(fmt.Sprintf("rsv-%d-ping", rsv), clientFrame(true, rsv, 9, nil, seedKey))
		add(fmt.Sprintf("rsv-%d-continuation", rsv), append(masked(false, 2, []byte{1}), clientFrame(true, rsv, 0, []byte{2}, seedKey)...))
	}
	add("unmasked-text", []byte{0x81, 0x02, 'h', 'i'})
	add("unmasked-close", []byte{0x88, 0x02, 0x03, 0xe8})
	add("ping-125", masked(true, 9, bytes.Repeat([]byte{'p'}, 125)))
	add("ping-126", masked(true, 9, bytes.Repeat([]byte{'p'}, 126)))
	add("ping-fragmented", masked(false, 9, []byte("p")))
	add("pong-unsolicited", masked(true, 10, []byte("u")))
	add("close-fragmented", append(masked(false, 8, []byte{3, 0xe8}), masked(true, 0, nil)...))
	add("stray-continuation", masked(true, 0, []byte("c")))
	add("text-inside-text", append(masked(false, 1, []byte("a")), masked(true, 1, []byte("b"))...))
	add("fragments-with-pings", bytes.Join([][]byte{
		masked(false, 1, []byte("fr")), masked(true, 9, []byte("1")), masked(false, 0, []byte("ag")),
		masked(true, 9, nil), masked(true, 0, []byte("ments")), closeFrame(1000, "done")}, nil), 3, 7, 11)
	add("fragments-with-close", bytes.Join([][]byte{
		masked(false, 2, []byte{1, 2}), closeFrame(1001, ""), masked(true, 0, []byte{3})}, nil))
	add("empty-fragments", bytes.Join([][]byte{masked(false, 1, nil), masked(false, 0, nil), masked(true, 0, nil)}, nil))
	add("messages-byte-by-byte", bytes.Join([][]byte{masked(true, 1, []byte("one")), masked(true, 2, []byte{2}),
		masked(true, 9, []byte("p")), closeFrame(1000, "")}, nil), oneByOne...)
	add("data-after-close", append(closeFrame(1000, ""), masked(true, 1, []byte("late"))...))
	// Close codes at every range boundary, and broken close payloads.
	for _, code := range []uint16{0, 999, 1000, 1001, 1003, 1004, 1005, 1006, 1007, 1010, 1011, 1012, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535} {
		add(fmt.Sprintf("close-%d", code), closeFrame(code, "why"))
	}
	add("close-empty", masked(true, 8, nil))
	add("close-1-byte", masked(true, 8, []byte{0x03}))
	add("close-reason-invalid-utf8", closeFrame(1000, "\xff"))
	add("close-reason-123", closeFrame(1000, strings.Repeat("r", 123)))
	// Text at the UTF-8 boundaries, valid and invalid, whole and split.
	for name, text := range utf8Cases {
		add("text-"+name, masked(true, 1, []byte(text)))
		if len(text) > 1 {
			add("text-split-"+name, append(masked(false, 1, []byte(text[:1])), masked(true, 0, []byte(text[1:]))...))
		}
	}
	add("garbage", []byte("GET / HTTP/1.1\r\n\r\n"))
	return seeds
}

// utf8Cases are the code points at the edges of each UTF-8 length and
// every class of invalid sequence (Unicode 15, table 3-7).
var utf8Cases = map[string]string{
	"ascii-7f":                 "a\u007f",
	"2byte-first-0080":         "\u0080",
	"2byte-last-07ff":          "\u07ff",
	"3byte-first-0800":         "\u0800",
	"before-surrogates":        "\ud7ff",
	"after-surrogates":         "\ue000",
	"3byte-last-ffff":          "\uffff",
	"4byte-first-10000":        "\U00010000",
	"last-10ffff":              "\U0010ffff",
	"mixed":                    "κόσμε €𝄞",
	"bad-lone-continuation":    "a\x80b",
	"bad-ff":                   "\xff",
	"bad-fe":                   "\xfe",
	"bad-overlong-c0":          "\xc0\x80",
	"bad-overlong-c1":          "\xc1\xbf",
	"bad-overlong-e0":          "\xe0\x80\x80",
	"bad-overlong-e0-9f":       "\xe0\x9f\xbf",
	"bad-overlong-f0":          "\xf0\x8f\xbf\xbf",
	"bad-surrogate-high":       "\xed\xa0\x80",
	"bad-surrogate-low":        "\xed\xbf\xbf",
	"bad-above-10ffff":         "\xf4\x90\x80\x80",
	"bad-f5":                   "\xf5\x80\x80\x80",
	"bad-truncated-2":          "\xce",
	"bad-truncated-3":          "\xe2\x82",
	"bad-truncated-4":          "\xf0\x9f\x98",
	"bad-truncated-then-ascii": "\xe2\x82a",
	"bad-after-valid":          "€\xff€",
}

func utf8Seeds() []seed {
	var seeds []seed
	for name, text := range utf8Cases {
		seeds = append(seeds, seed{name, []any{[]byte(text), []byte{}}})
		// Cut after every byte: each character spans fragments.
		seeds = append(seeds, seed{name + "-byte-by-byte", []any{[]byte(text), bytes.Repeat([]byte{1}, len(text))}})
	}
	seeds = append(seeds, seed{"empty", []any{[]byte{}, []byte{}}},
		seed{"empty-fragments", []any{[]byte("€"), []byte{0, 0, 1, 0, 2, 0}}},
		seed{"long-text", []any{bytes.Repeat([]byte("aé€𝄞"), 5000), []byte{200, 3, 255}}})
	return seeds
}

func closeSeeds() []seed {
	var seeds []seed
	for _, first := range []bool{false, true} {
		add := func(name string, p []byte) {
			if first {
				name = "after-server-close-" + name
			}
			seeds = append(seeds, seed{name, []any{p, first}})
		}
		for _, code := range []uint16{0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011,
			1012, 1013, 1014, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000, 65535} {
			add(fmt.Sprintf("code-%d", code), binary.BigEndian.AppendUint16(nil, code))
		}
		add("empty", nil)
		add("one-byte", []byte{0x03})
		add("reason", append([]byte{0x03, 0xe8}, "bye, €"...))
		add("reason-123", append([]byte{0x0f, 0xa0}, strings.Repeat("r", 123)...))
		add("reason-invalid-utf8", []byte{0x03, 0xe8, 'a', 0xff})
		add("reason-truncated-utf8", []byte{0x03, 0xe8, 0xe2, 0x82})
		add("reason-surrogate", []byte{0x03, 0xe8, 0xed, 0xa0, 0x80})
	}
	return seeds
}

// randomSeeds gives the structured targets some starting points: their
// inputs are random numbers for gofuzz or rapid, so any bytes will do, as
// long as there are enough: gofuzz goes on with a generator seeded by the
// input, rapid gives up (skips) when the input runs out.
func randomSeeds(prefix string, n, minSize int) []seed {
	r := rand.New(rand.NewPCG(6455, 1))
	var seeds []seed
	for i := range n {
		b := make([]byte, minSize<<(i%3))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		seeds = append(seeds, seed{fmt.Sprintf("%s-random-%d", prefix, i), []any{b}})
	}
	return seeds
}

// clientSeeds are server streams to a client Conn: unmasked frames, the
// rules that differ from a server's (masked frames; close code 1010, a
// client's, taken from a server too), the
// closing handshake, and RSV1 without compression.
func clientSeeds() []seed {
	var seeds []seed
	add := func(name string, stream []byte, cuts ...byte) {
		seeds = append(seeds, seed{name, []any{stream, cuts}})
	}
	plain := func(fin bool, op byte, payload []byte) []byte { return serverFrame(fin, 0, op, payload) }
	closing := func(code uint16, reason string) []byte {
		return plain(true, 8, append(binary.BigEndian.AppendUint16(nil, code), reason...))
	}
	add("text", plain(true, 1, []byte("hello")))
	add("fragments-with-pings-then-close", bytes.Join([][]byte{plain(false, 1, []byte("fr")), plain(true, 9, []byte("1")),
		plain(true, 0, []byte("agments")), closing(1000, "done")}, nil), 3, 7)
	add("masked-text", masked(true, 1, []byte("hi")))
	add("masked-close", closeFrame(1000, ""))
	add("close-empty", plain(true, 8, nil))
	add("data-after-close", append(closing(1001, "bye"), plain(true, 1, []byte("late"))...))
	for _, code := range []uint16{999, 1000, 1005, 1009, 1010, 1011, 1014, 1015, 2999, 3000, 4999, 5000} {
		add(fmt.Sprintf("close-%d", code), closing(code, "why"))
	}
	add("close-reason-invalid-utf8", closing(1000, "\xff"))
	add("ping-126", plain(true, 9, bytes.Repeat([]byte{'p'}, 126)))
	add("reserved-opcode", plain(true, 3, nil))
	add("length-64bit-form-for-0", []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0})
	add("messages-byte-by-byte", bytes.Join([][]byte{plain(true, 1, []byte("one")), plain(true, 9, []byte("p")),
		closing(1000, "")}, nil), oneByOne...)
	add("text-invalid-utf8", plain(true, 1, []byte("a\xffb")))
	add("too-large", []byte{0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x86, 0xa1}) // 100,001 bytes declared
	add("rsv1-without-deflate", serverFrame(true, 4, 1, model.Compress([]byte("compressed"), nil, false)))
	return seeds
}
