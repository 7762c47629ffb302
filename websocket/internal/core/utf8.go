package core

import "unicode/utf8"

// UTF8 checks UTF-8 text that arrives in pieces, such as the
// fragments of a text message, and fails on the first byte that can never
// be part of valid UTF-8 there (RFC 6455 §8.1 asks to fail fast). Its zero
// value is ready to validate a new text.
type UTF8 struct {
	need   uint8 // continuation bytes still expected by the open sequence
	have   uint8 // bytes of the open sequence seen so far
	lo, hi byte  // range allowed for the next continuation byte
}

// Complete reports whether the text fed so far ends on a character boundary.
func (v *UTF8) Complete() bool { return v.need == 0 }

// Pending returns how many bytes at the end of the text fed so far belong
// to a character that is not complete yet.
func (v *UTF8) Pending() int { return int(v.have) }

// Feed validates p as the continuation of the text fed so far and reports
// whether it can still be, or become, valid UTF-8.
func (v *UTF8) Feed(p []byte) bool {
	// The common case first: no character left open, and the piece ends
	// in ASCII, so none is left open after it either.
	if v.need == 0 && len(p) > 0 && p[len(p)-1] < utf8.RuneSelf {
		return utf8.Valid(p)
	}
	// Finish the character left open by the previous piece.
	for v.need > 0 && len(p) > 0 {
		if !v.Step(p[0]) {
			return false
		}
		p = p[1:]
	}
	if len(p) == 0 {
		return true
	}
	// p starts on a character boundary. The bulk is checked by the
	// standard library; only an incomplete character at the end is left
	// to the byte-wise state machine.
	body := len(p) - OpenTail(p)
	if !utf8.Valid(p[:body]) {
		return false
	}
	for _, b := range p[body:] {
		if !v.Step(b) {
			return false
		}
	}
	return true
}

// leadBytes is the table of RFC 3629 §4: for the first byte of a
// multi-byte character, how many bytes follow and the range of the second
// (the others are always 0x80–0xBF). 0x80–0xC1 and 0xF5–0xFF start none.
var leadBytes = [...]struct {
	first, last byte  // the lead bytes of this row
	need        uint8 // continuation bytes that follow
	lo, hi      byte  // range of the second byte
}{
	{0xC2, 0xDF, 1, 0x80, 0xBF},
	{0xE0, 0xE0, 2, 0xA0, 0xBF}, // no overlong forms
	{0xE1, 0xEC, 2, 0x80, 0xBF},
	{0xED, 0xED, 2, 0x80, 0x9F}, // no surrogates
	{0xEE, 0xEF, 2, 0x80, 0xBF},
	{0xF0, 0xF0, 3, 0x90, 0xBF}, // no overlong forms
	{0xF1, 0xF3, 3, 0x80, 0xBF},
	{0xF4, 0xF4, 3, 0x80, 0x8F}, // nothing above U+10FFFF
}

// Step advances the validator by one byte.
func (v *UTF8) Step(b byte) bool {
	if v.need > 0 {
		if b < v.lo || b > v.hi {
			return false
		}
		v.lo, v.hi = 0x80, 0xBF
		v.need--
		v.have++
		if v.need == 0 {
			v.have = 0
		}
		return true
	}
	if b < 0x80 {
		return true
	}
	for _, l := range leadBytes {
		if b >= l.first && b <= l.last {
			v.need, v.have, v.lo, v.hi = l.need, 1, l.lo, l.hi
			return true
		}
	}
	return false
}

// OpenTail returns the length of an incomplete character at the end of p,
// which starts on a character boundary; 0 if p ends on one.
func OpenTail(p []byte) int {
	for k := len(p) - 1; k >= 0 && k >= len(p)-3; k-- {
		b := p[k]
		if b < 0x80 {
			return 0
		}
		if b >= 0xC0 {
			size := 2
			if b >= 0xF0 {
				size = 4
			} else if b >= 0xE0 {
				size = 3
			}
			if k+size > len(p) {
				return len(p) - k
			}
			return 0
		}
	}
	return 0
}
