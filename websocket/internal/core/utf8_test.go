package core

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wsmachine/wsmachine/websocket/internal/wstest"
)

var utf8Samples = []string{
	"", "hello", "héllo wörld", "€", "𝄞 music", "\u007f\u0080\u07ff\u0800\uffff\U00010000\U0010ffff",
	"\xed\x9f\xbf", "\xee\x80\x80", // around the surrogates
	"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", // overlong
	"\xed\xa0\x80", "\xed\xbf\xbf", // surrogates
	"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "\xc2", "\xe2\x82", "\xf0\x9d\x84",
	"a\xc2b", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
	strings.Repeat("κόσμε", 50), strings.Repeat("x", 100) + "\xe2\x82\xac" + strings.Repeat("y", 9),
}

// TestUTF8ValidatorAgreesAtEverySplit feeds each sample in two and three
// pieces at every split and compares with utf8.Valid.
func TestUTF8ValidatorAgreesAtEverySplit(t *testing.T) {
	for _, s := range utf8Samples {
		want := utf8.ValidString(s)
		for i := 0; i <= len(s); i++ {
			for j := i; j <= len(s) && j <= i+8; j++ {
				var v UTF8
				ok := v.Feed([]byte(s[:i])) && v.Feed([]byte(s[i:j])) && v.Feed([]byte(s[j:]))
				if got := ok && v.Complete(); got != want {
					t.Errorf("%q split at %d,%d: valid=%v, utf8.Valid=%v", s, i, j, got, want)
				}
			}
		}
	}
}

// TestUTF8ValidatorFailsFast checks that the verdict comes at the first
// byte that cannot be valid, before the text is complete.
func TestUTF8ValidatorFailsFast(t *testing.T) {
	tests := []struct {
		prefix string // valid so far
		bad    string // makes it invalid at once
	}{
		{"abc", "\xff"},
		{"\xe0", "\x80"},       // overlong
		{"\xed", "\xa0"},       // surrogate
		{"\xf4", "\x90"},       // above U+10FFFF
		{"\xf0", "\x8f"},       // overlong
		{"\xce", "a"},          // missing continuation
		{"κόσμε\xe2\x82", "x"}, // broken inside a character
		{"ok", "\xc1"},
		{"ok", "\xf5"},
	}
	for _, tt := range tests {
		var v UTF8
		if !v.Feed([]byte(tt.prefix)) {
			t.Errorf("%q refused", tt.prefix)
			continue
		}
		if v.Feed([]byte(tt.bad)) {
			t.Errorf("%q + %q accepted", tt.prefix, tt.bad)
		}
	}
}

func TestOpenTail(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{{"", 0}, {"a", 0}, {"\xe2\x82\xac", 0}, {"a\xe2", 1}, {"a\xe2\x82", 2}, {"\xf0\x9d\x84", 3}, {"é", 0}}
	for _, tt := range tests {
		if got := OpenTail([]byte(tt.s)); got != tt.want {
			t.Errorf("OpenTail(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

// BenchmarkUTF8Validator measures the incremental validator, whole and fed
// in 100-byte fragments (characters cut in two), against utf8.Valid on the
// same text in the same run.
func BenchmarkUTF8Validator(b *testing.B) {
	for _, tt := range []struct{ name, text string }{
		{"ascii", strings.Repeat("a", 1024)},
		{"greek", strings.Repeat("κόσμε", 100)},
		{"mixed", strings.Repeat("aé€𝄞", 100)},
	} {
		p := []byte(tt.text)
		b.Run(tt.name+"-"+wstest.SizeName(len(p)), func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				var v UTF8
				v.Feed(p)
			}
		})
		b.Run(tt.name+"-"+wstest.SizeName(len(p))+"-fragments", func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				var v UTF8
				for q := p; len(q) > 0; q = q[min(100, len(q)):] {
					v.Feed(q[:min(100, len(q))])
				}
			}
		})
		b.Run(tt.name+"-"+wstest.SizeName(len(p))+"-fragments-utf8.Valid", func(b *testing.B) {
			// The reference for fragments: utf8.Valid on each piece
			// (which, unlike the validator, fails on a character cut
			// at the end of a piece; the work is the same).
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				for q := p; len(q) > 0; q = q[min(100, len(q)):] {
					utf8.Valid(q[:min(100, len(q))])
				}
			}
		})
		b.Run(tt.name+"-"+wstest.SizeName(len(p))+"-utf8.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				utf8.Valid(p)
			}
		})
	}
}

// TestUTF8StepAgreesWithValid checks the byte-by-byte path alone, which
// the text writer uses to find how much of a Write is valid.
func TestUTF8StepAgreesWithValid(t *testing.T) {
	for _, s := range utf8Samples {
		var v UTF8
		ok := true
		for i := 0; i < len(s) && ok; i++ {
			ok = v.Step(s[i])
		}
		if got := ok && v.Complete(); got != utf8.ValidString(s) {
			t.Errorf("%q: step says %v", s, got)
		}
	}
}
