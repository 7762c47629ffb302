package websocket

import (
	"net/http"
	"strings"
)

// HTTP's lists and tokens (RFC 9110 §5.6), as the opening handshake reads
// them at either end: header fields that list tokens, and the parameters
// of Sec-WebSocket-Extensions.

// headerTokens returns the comma-separated values of all fields named name,
// trimmed, in order, without empty ones.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for v != "" {
			var t string
			t, v = nextToken(v)
			if t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// hasToken reports whether a field named name lists token, ignoring case.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for v != "" {
			var t string
			t, v = nextToken(v)
			if strings.EqualFold(t, token) {
				return true
			}
		}
	}
	return false
}

// nextToken splits the first element off a comma-separated list, trimmed.
// Only space and tab separate list elements (RFC 9110 §5.6.1); other
// Unicode spaces are part of a token.
func nextToken(list string) (token, rest string) {
	token, rest, _ = strings.Cut(list, ",")
	return strings.Trim(token, " \t"), rest
}

// splitOutsideQuotes splits s at sep, except inside quoted strings.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote removes quoted-pair escapes (RFC 9110 §5.6.4).
func unquote(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7F || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
