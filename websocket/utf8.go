package websocket

import "unicode/utf8"

// utf8Validator checks UTF-8 text that arrives in pieces, such as the
// fragments of a text message, and fails on the first byte that can never
// be part of valid UTF-8 there (RFC 6455 §8.1 asks to fail fast). Its zero
// value is ready to validate a new text.
type utf8Validator struct {
	need   uint8 // continuation bytes still expected by the open sequence
	have   uint8 // bytes of the open sequence seen so far
	lo, hi byte  // range allowed for the next continuation byte
}

// complete reports whether the text fed so far ends on a character boundary.
func (v *utf8Validator) complete() bool { return v.need == 0 }

// pending returns how many bytes at the end of the text fed so far belong
// to a character that is not complete yet.
func (v *utf8Validator) pending() int { return int(v.have) }

// feed validates p as the continuation of the text fed so far and reports
// whether it can still be, or become, valid UTF-8.
func (v *utf8Validator) feed(p []byte) bool {
	// Finish the character left open by the previous piece.
	for v.need > 0 && len(p) > 0 {
		if !v.step(p[0]) {
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
	body := len(p) - openTail(p)
	if !utf8.Valid(p[:body]) {
		return false
	}
	for _, b := range p[body:] {
		if !v.step(b) {
			return false
		}
	}
	return true
}

// step advances the validator by one byte (RFC 3629 §4 table).
func (v *utf8Validator) step(b byte) bool {
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
	v.lo, v.hi = 0x80, 0xBF
	switch {
	case b < 0x80:
		return true
	case b >= 0xC2 && b <= 0xDF:
		v.need = 1
	case b == 0xE0:
		v.need, v.lo = 2, 0xA0 // no overlong forms
	case b == 0xED:
		v.need, v.hi = 2, 0x9F // no surrogates
	case b >= 0xE1 && b <= 0xEF:
		v.need = 2
	case b == 0xF0:
		v.need, v.lo = 3, 0x90 // no overlong forms
	case b == 0xF4:
		v.need, v.hi = 3, 0x8F // nothing above U+10FFFF
	case b >= 0xF1 && b <= 0xF3:
		v.need = 3
	default: // 0x80–0xC1, 0xF5–0xFF never start a character
		return false
	}
	v.have = 1
	return true
}

// openTail returns the length of an incomplete character at the end of p,
// which starts on a character boundary; 0 if p ends on one.
func openTail(p []byte) int {
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
