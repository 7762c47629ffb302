package websocket

import (
	"strconv"
	"strings"
)

// Negotiation of permessage-deflate (RFC 7692 §5, §7.1): the client offers
// the extension in Sec-WebSocket-Extensions, possibly several times with
// different parameters, in its order of preference; the server accepts
// the first offer it can honour and answers with the parameters in use.

// CompressionMode says whether a Handler compresses messages with
// permessage-deflate (RFC 7692), and how. Compression is used only with
// clients that offer it, as browsers do.
type CompressionMode int

const (
	// CompressionOff declines permessage-deflate: nothing is compressed.
	// The default. An idle connection costs the same as without it.
	CompressionOff CompressionMode = iota

	// CompressionNoContextTakeover compresses every message on its own:
	// both sides reset their compressor after each message (the server
	// asks the client to, RFC 7692 §7.1.1). The compressor and
	// decompressor come from a pool for the time of a message, so an
	// idle connection costs nothing more than without compression.
	// Small repetitive messages (chat, JSON events) shrink less than
	// with context takeover.
	CompressionNoContextTakeover

	// CompressionContextTakeover lets each message refer back to the
	// ones before it in the same direction (up to 32 KiB back), as far
	// as the client agrees: it may ask for no context takeover in
	// either direction, or for smaller windows. Small repetitive
	// messages shrink the most. Each connection keeps the last 32 KiB
	// sent and the last 32 KiB received (40 KiB buffers each, allocated
	// with the first compressed message in that direction), about
	// 80 KiB per connection, less where the client limits a window
	// (server_max_window_bits, client_max_window_bits); the compressor
	// and decompressor are still pooled, and start each message from
	// that history.
	CompressionContextTakeover
)

// deflateParams are the parameters of an accepted permessage-deflate.
type deflateParams struct {
	serverNoContextTakeover bool // we reset our compressor after each message
	clientNoContextTakeover bool // the client resets its compressor after each message
	serverMaxWindowBits     int  // the server's LZ77 window, 8–15, as offered and answered; 0 if not mentioned (15)
	clientMaxWindowBits     int  // the client's LZ77 window, 8–15; 15 if not limited
}

// serverBits is the server's LZ77 window in bits.
func (p deflateParams) serverBits() int { return orFull(p.serverMaxWindowBits) }

// clientBits is the client's LZ77 window in bits.
func (p deflateParams) clientBits() int { return orFull(p.clientMaxWindowBits) }

// orFull is a window in bits, 0 meaning DEFLATE's whole window.
func orFull(bits int) int {
	if bits == 0 {
		return 15
	}
	return bits
}

// extensionOffer is one element of Sec-WebSocket-Extensions.
type extensionOffer struct {
	name   string
	params []extensionParam
}

type extensionParam struct {
	name, value string
	hasValue    bool
}

// parseExtensions splits Sec-WebSocket-Extensions values into offers
// (RFC 6455 §9.1). An element that does not parse is returned with ok
// false in its place, so that a malformed offer is declined rather than
// the whole header refused.
func parseExtensions(values []string) (offers []extensionOffer, oks []bool) {
	for _, v := range values {
		for _, element := range splitOutsideQuotes(v, ',') {
			if strings.Trim(element, " \t") == "" {
				continue
			}
			o, ok := parseOffer(element)
			offers, oks = append(offers, o), append(oks, ok)
		}
	}
	return offers, oks
}

// parseOffer parses `name *( ";" param )`, param = token [ "=" (token |
// quoted-string) ].
func parseOffer(s string) (extensionOffer, bool) {
	parts := splitOutsideQuotes(s, ';')
	o := extensionOffer{name: strings.Trim(parts[0], " \t")}
	if !isToken(o.name) {
		return o, false
	}
	for _, p := range parts[1:] {
		name, value, hasValue := strings.Cut(p, "=")
		name = strings.Trim(name, " \t")
		if !isToken(name) {
			return o, false
		}
		if hasValue {
			value = strings.Trim(value, " \t")
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = unquote(value[1 : len(value)-1])
			}
			if !isToken(value) { // §9.1: a quoted value must still be a token
				return o, false
			}
		}
		o.params = append(o.params, extensionParam{name, value, hasValue})
	}
	return o, true
}

// negotiateDeflate returns the parameters of the first permessage-deflate
// offer in the Sec-WebSocket-Extensions values that can be accepted, as
// the server in mode uses them.
func negotiateDeflate(values []string, mode CompressionMode) (deflateParams, bool) {
	if mode == CompressionOff {
		return deflateParams{}, false
	}
	offers, oks := parseExtensions(values)
	for i, o := range offers {
		if !oks[i] || o.name != "permessage-deflate" {
			continue
		}
		if p, ok := acceptDeflate(o); ok {
			if mode != CompressionContextTakeover {
				// §7.1.1: the server may ask for these unasked.
				p.serverNoContextTakeover, p.clientNoContextTakeover = true, true
			}
			return p, true
		}
	}
	return deflateParams{}, false
}

// acceptDeflate decides on one permessage-deflate offer (RFC 7692 §7.1):
// unknown or duplicate parameters, or values out of range, decline it.
// A limit on our window is honoured as offered: the answer repeats it
// (§7.1.2.1), and our compressor uses a window that size, down to 8 bits.
// A limit the client declares on its own window is answered too
// (§7.1.2.2), which binds the client to it: the history we keep of what
// it sends is then that size.
func acceptDeflate(o extensionOffer) (deflateParams, bool) {
	p, serverBits, clientBits, ok := readDeflateParams(o)
	if !ok {
		return p, false
	}
	p.serverMaxWindowBits = serverBits
	if clientBits > 0 {
		p.clientMaxWindowBits = clientBits
	}
	return p, true
}

// readDeflateParams reads the parameters of a permessage-deflate offer or
// answer (RFC 7692 §7): each at most once, the no_context_takeover flags
// without a value, window sizes valid (server_max_window_bits with one,
// client_max_window_bits with or without). serverBits and clientBits are
// their values: 0 if absent, and clientBits -1 without a value. Unknown
// parameters make it fail.
func readDeflateParams(o extensionOffer) (p deflateParams, serverBits, clientBits int, ok bool) {
	p.clientMaxWindowBits = 15
	seen := map[string]bool{}
	for _, x := range o.params {
		if seen[x.name] {
			return p, 0, 0, false // §7: a parameter must not appear twice
		}
		seen[x.name] = true
		switch x.name {
		case "server_no_context_takeover":
			p.serverNoContextTakeover = true
			ok = !x.hasValue
		case "client_no_context_takeover":
			p.clientNoContextTakeover = true
			ok = !x.hasValue
		case "server_max_window_bits":
			serverBits, ok = windowBits(x)
		case "client_max_window_bits":
			clientBits, ok = -1, true
			if x.hasValue {
				clientBits, ok = windowBits(x)
			}
		default:
			ok = false
		}
		if !ok {
			return p, 0, 0, false
		}
	}
	return p, serverBits, clientBits, true
}

// deflateOffer is the client's Sec-WebSocket-Extensions offer in mode.
// It offers client_max_window_bits, as browsers do, so that a server that
// wants to limit our window can answer with the size rather than decline
// compression altogether (RFC 7692 §7.1.2.2).
func deflateOffer(mode CompressionMode) string {
	if mode == CompressionNoContextTakeover {
		return "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
	}
	return "permessage-deflate; client_max_window_bits"
}

// acceptDeflateResponse checks the server's Sec-WebSocket-Extensions
// answer to deflateOffer(mode) (RFC 7692 §7.1): exactly one
// permessage-deflate, with valid parameters, none twice, and in
// no-context-takeover mode both no_context_takeover parameters, as asked.
// client_max_window_bits needs a value in an answer (§7.1.2.2): we then
// compress with that window. server_max_window_bits of any valid value is
// fine: the history of what we receive is then kept at that size.
func acceptDeflateResponse(values []string, mode CompressionMode) (deflateParams, bool) {
	offers, oks := parseExtensions(values)
	if mode == CompressionOff || len(offers) != 1 || !oks[0] || offers[0].name != "permessage-deflate" {
		return deflateParams{}, false
	}
	p, serverBits, clientBits, ok := readDeflateParams(offers[0])
	if !ok || clientBits < 0 { // the size of our window, if any, must be given
		return p, false
	}
	p.serverMaxWindowBits = serverBits
	if clientBits > 0 {
		p.clientMaxWindowBits = clientBits
	}
	if mode == CompressionNoContextTakeover && !(p.serverNoContextTakeover && p.clientNoContextTakeover) {
		return p, false
	}
	return p, true
}

// windowBits reads a window-bits value: 8 to 15, digits only, no leading
// zero (RFC 7692 §7.1.2).
func windowBits(x extensionParam) (int, bool) {
	if !x.hasValue || x.value == "" || x.value[0] == '0' || strings.Trim(x.value, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(x.value)
	return n, err == nil && n >= 8 && n <= 15
}

// appendDeflateResponse appends the Sec-WebSocket-Extensions value that
// accepts p.
func appendDeflateResponse(b []byte, p deflateParams) []byte {
	b = append(b, "permessage-deflate"...)
	if p.serverNoContextTakeover {
		b = append(b, "; server_no_context_takeover"...)
	}
	if p.clientNoContextTakeover {
		b = append(b, "; client_no_context_takeover"...)
	}
	if p.serverMaxWindowBits != 0 { // §7.1.2.1: accepted by answering it
		b = append(b, "; server_max_window_bits="...)
		b = strconv.AppendInt(b, int64(p.serverMaxWindowBits), 10)
	}
	if p.clientMaxWindowBits != 0 && p.clientMaxWindowBits < 15 { // §7.1.2.2: the client then keeps to it
		b = append(b, "; client_max_window_bits="...)
		b = strconv.AppendInt(b, int64(p.clientMaxWindowBits), 10)
	}
	return b
}
