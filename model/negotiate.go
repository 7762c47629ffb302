package model

import (
	"strconv"
	"strings"
)

// Compression is Handler.Compression, named as in STATE_MACHINE.md.
type Compression int

// The modes, in the order of websocket.CompressionMode.
const (
	CompressionOff Compression = iota
	CompressionNoContextTakeover
	CompressionContextTakeover
)

// Negotiate decides on the client's Sec-WebSocket-Extensions values as
// STATE_MACHINE.md's "Negotiation" says: the first acceptable
// permessage-deflate offer wins. It returns nil and "" if none is accepted
// (no Sec-WebSocket-Extensions in the 101), else the parameters in use and
// the header's value.
func Negotiate(mode Compression, values []string, threshold int) (*Deflate, string) {
	if mode == CompressionOff {
		return nil, ""
	}
	for _, v := range values {
		for _, offer := range splitQuoted(v, ',') {
			if d, resp, ok := acceptOffer(mode, offer); ok {
				d.Threshold = threshold
				return d, resp
			}
		}
	}
	return nil, ""
}

// acceptOffer decides on one offer: "permessage-deflate" and parameters.
func acceptOffer(mode Compression, offer string) (*Deflate, string, bool) {
	params, ok := deflateElement(offer)
	if !ok {
		return nil, "", false
	}
	var serverNo, clientNo bool
	serverBits, clientBits := 0, 15
	for name, v := range params {
		switch {
		case name == "server_no_context_takeover" && !v.hasValue:
			serverNo = true
		case name == "client_no_context_takeover" && !v.hasValue:
			clientNo = true
		case name == "server_max_window_bits" && v.hasValue && windowBits(v.value) > 0:
			serverBits = windowBits(v.value) // honoured as offered
		case name == "client_max_window_bits" && !v.hasValue:
		case name == "client_max_window_bits" && windowBits(v.value) > 0:
			clientBits = windowBits(v.value) // answered below 15
		default:
			return nil, "", false
		}
	}
	if mode == CompressionNoContextTakeover {
		serverNo, clientNo = true, true
	}
	resp := "permessage-deflate"
	if serverNo {
		resp += "; server_no_context_takeover"
	}
	if clientNo {
		resp += "; client_no_context_takeover"
	}
	if serverBits > 0 {
		resp += "; server_max_window_bits=" + strconv.Itoa(serverBits)
	}
	if clientBits < 15 {
		resp += "; client_max_window_bits=" + strconv.Itoa(clientBits)
	}
	d := &Deflate{ServerContextTakeover: !serverNo, ClientContextTakeover: !clientNo, ServerWindowBits: 15, ClientWindowBits: clientBits}
	if serverBits > 0 {
		d.ServerWindowBits = serverBits
	}
	return d, resp, true
}

// param is an extension parameter's value, quotes removed.
type param struct {
	value    string
	hasValue bool
}

// deflateElement reads one element of Sec-WebSocket-Extensions that must
// be permessage-deflate: its parameters by name. ok is false for another
// extension or a parameter given twice (RFC 7692 §7).
func deflateElement(element string) (params map[string]param, ok bool) {
	parts := splitQuoted(element, ';')
	if strings.Trim(parts[0], " \t") != "permessage-deflate" {
		return nil, false
	}
	params = map[string]param{}
	for _, p := range parts[1:] {
		name, value, hasValue := strings.Cut(p, "=")
		name, value = strings.Trim(name, " \t"), strings.Trim(value, " \t")
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if _, dup := params[name]; dup {
			return nil, false
		}
		params[name] = param{value, hasValue}
	}
	return params, true
}

// windowBits reads a window size of 8 to 15 bits written without leading
// zeros; 0 for anything else.
func windowBits(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 8 || n > 15 || strconv.Itoa(n) != s {
		return 0
	}
	return n
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep rune) []string {
	var parts []string
	quoted, start := false, 0
	for i, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// DialOffer is the Sec-WebSocket-Extensions value a client offers in
// mode (STATE_MACHINE.md's "Roles"): "" for CompressionOff.
func DialOffer(mode Compression) string {
	switch mode {
	case CompressionNoContextTakeover:
		return "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
	case CompressionContextTakeover:
		return "permessage-deflate; client_max_window_bits"
	}
	return ""
}

// AcceptAnswer decides, as a client that offered DialOffer(mode), on the
// server's Sec-WebSocket-Extensions values (none: no compression). ok is
// false if the handshake fails: an extension though none was offered, or
// anything but exactly one permessage-deflate whose parameters are
// server_no_context_takeover and client_no_context_takeover without a
// value, and server_max_window_bits and client_max_window_bits of 8 to
// 15, each at most once, with both no_context_takeover parameters in
// CompressionNoContextTakeover. The window sizes are those of the
// answer: 15 bits where it gives none.
func AcceptAnswer(mode Compression, values []string, threshold int) (d *Deflate, ok bool) {
	if len(values) == 0 {
		return nil, true
	}
	if mode == CompressionOff {
		return nil, false
	}
	var elements []string
	for _, v := range values {
		for _, e := range splitQuoted(v, ',') {
			if strings.Trim(e, " \t") != "" {
				elements = append(elements, e)
			}
		}
	}
	if len(elements) != 1 {
		return nil, false
	}
	params, ok := deflateElement(elements[0])
	if !ok {
		return nil, false
	}
	var serverNo, clientNo bool
	serverBits, clientBits := 15, 15
	for name, v := range params {
		switch {
		case name == "server_no_context_takeover" && !v.hasValue:
			serverNo = true
		case name == "client_no_context_takeover" && !v.hasValue:
			clientNo = true
		case name == "server_max_window_bits" && v.hasValue && windowBits(v.value) > 0:
			serverBits = windowBits(v.value)
		case name == "client_max_window_bits" && v.hasValue && windowBits(v.value) > 0:
			clientBits = windowBits(v.value) // offered without a size: the server sets it
		default:
			return nil, false
		}
	}
	if mode == CompressionNoContextTakeover && !(serverNo && clientNo) {
		return nil, false
	}
	return &Deflate{ServerContextTakeover: !serverNo, ClientContextTakeover: !clientNo,
		ServerWindowBits: serverBits, ClientWindowBits: clientBits, Threshold: threshold}, true
}
