package websocket

import "testing"

// Rows: "Compressed messages": the answer to each offer.
func TestNegotiateDeflate(t *testing.T) {
	full := deflateParams{clientMaxWindowBits: 15}
	for _, tt := range []struct {
		name   string
		values []string
		want   deflateParams
		ok     bool
	}{
		{"none", nil, deflateParams{}, false},
		{"plain", []string{"permessage-deflate"}, full, true},
		{"what browsers send", []string{"permessage-deflate; client_max_window_bits"}, full, true},
		{"both no context takeover", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
			deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, clientMaxWindowBits: 15}, true},
		{"client window limited", []string{"permessage-deflate; client_max_window_bits=10"}, deflateParams{clientMaxWindowBits: 10}, true},
		{"quoted value", []string{`permessage-deflate; client_max_window_bits="10"`}, deflateParams{clientMaxWindowBits: 10}, true},
		{"server window 15", []string{"permessage-deflate; server_max_window_bits=15"}, deflateParams{serverMaxWindowBits: 15, clientMaxWindowBits: 15}, true},
		{"server window limited", []string{"permessage-deflate; server_max_window_bits=10"}, deflateParams{serverMaxWindowBits: 10, clientMaxWindowBits: 15}, true},
		{"server window 8", []string{"permessage-deflate; server_max_window_bits=8"}, deflateParams{serverMaxWindowBits: 8, clientMaxWindowBits: 15}, true},
		{"both windows limited", []string{"permessage-deflate; server_max_window_bits=9; client_max_window_bits=12"}, deflateParams{serverMaxWindowBits: 9, clientMaxWindowBits: 12}, true},
		{"declined, then the next offer", []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate"}, full, true},
		{"second header field", []string{"x-unknown", "permessage-deflate; client_no_context_takeover"},
			deflateParams{clientNoContextTakeover: true, clientMaxWindowBits: 15}, true},
		{"duplicate parameter", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, deflateParams{}, false},
		{"unknown parameter", []string{"permessage-deflate; foo"}, deflateParams{}, false},
		{"value on a flag", []string{"permessage-deflate; server_no_context_takeover=1"}, deflateParams{}, false},
		{"server window without value", []string{"permessage-deflate; server_max_window_bits"}, deflateParams{}, false},
		{"window 7", []string{"permessage-deflate; client_max_window_bits=7"}, deflateParams{}, false},
		{"window 16", []string{"permessage-deflate; client_max_window_bits=16"}, deflateParams{}, false},
		{"window with a leading zero", []string{"permessage-deflate; client_max_window_bits=010"}, deflateParams{}, false},
		{"window not a number", []string{"permessage-deflate; client_max_window_bits=ten"}, deflateParams{}, false},
		{"malformed element skipped", []string{"permessage-deflate; =x, permessage-deflate"}, full, true},
		{"comma inside quotes", []string{`permessage-deflate; client_max_window_bits="1,0"`}, deflateParams{}, false},
		{"other extension only", []string{"x-webkit-deflate-frame"}, deflateParams{}, false},
		{"case matters for the name", []string{"Permessage-Deflate"}, deflateParams{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := negotiateDeflate(tt.values, CompressionContextTakeover)
			if ok != tt.ok || ok && got != tt.want {
				t.Errorf("negotiateDeflate(%q) = %+v, %v; want %+v, %v", tt.values, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// The mode decides what is accepted: off declines every offer, no context
// takeover asks the client for it too (RFC 7692 §7.1.1), context takeover
// takes what the client offered.
// Rows: "Compressed messages": the answer to each offer.
func TestNegotiateDeflateModes(t *testing.T) {
	offer := []string{"permessage-deflate; client_max_window_bits"}
	for _, tt := range []struct {
		mode CompressionMode
		ok   bool
		want string
	}{
		{CompressionOff, false, ""},
		{CompressionNoContextTakeover, true, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{CompressionContextTakeover, true, "permessage-deflate"},
	} {
		p, ok := negotiateDeflate(offer, tt.mode)
		if ok != tt.ok || ok && string(appendDeflateResponse(nil, p)) != tt.want {
			t.Errorf("mode %d: accepted %v with %q, want %v with %q", tt.mode, ok, appendDeflateResponse(nil, p), tt.ok, tt.want)
		}
	}
}

// Rows: "Compressed messages": the answer.
func TestDeflateResponse(t *testing.T) {
	for _, tt := range []struct {
		p    deflateParams
		want string
	}{
		{deflateParams{}, "permessage-deflate"},
		{deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{deflateParams{serverMaxWindowBits: 15}, "permessage-deflate; server_max_window_bits=15"},
		{deflateParams{serverMaxWindowBits: 8, clientMaxWindowBits: 15}, "permessage-deflate; server_max_window_bits=8"},
		{deflateParams{serverNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 9},
			"permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"},
	} {
		if got := string(appendDeflateResponse(nil, tt.p)); got != tt.want {
			t.Errorf("response for %+v = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// The client accepts only an answer to what it offered (RFC 7692 §7.1).
// Rows: "Opening handshake, client": an acceptable answer.
func TestAcceptDeflateResponse(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mode   CompressionMode
		values []string
		want   deflateParams
		ok     bool
	}{
		{"plain", CompressionContextTakeover, []string{"permessage-deflate"}, deflateParams{clientMaxWindowBits: 15}, true},
		{"server resets", CompressionContextTakeover, []string{"permessage-deflate; server_no_context_takeover"},
			deflateParams{serverNoContextTakeover: true, clientMaxWindowBits: 15}, true},
		{"both reset", CompressionNoContextTakeover, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
			deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, clientMaxWindowBits: 15}, true},
		{"server window limited", CompressionContextTakeover, []string{"permessage-deflate; server_max_window_bits=10"}, deflateParams{serverMaxWindowBits: 10, clientMaxWindowBits: 15}, true},
		{"no-context mode, answer without it", CompressionNoContextTakeover, []string{"permessage-deflate"}, deflateParams{}, false},
		{"client window limited", CompressionContextTakeover, []string{"permessage-deflate; client_max_window_bits=9"}, deflateParams{clientMaxWindowBits: 9}, true},
		{"client window 15", CompressionNoContextTakeover, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"},
			deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, clientMaxWindowBits: 15}, true},
		{"client window without a size", CompressionContextTakeover, []string{"permessage-deflate; client_max_window_bits"}, deflateParams{}, false},
		{"client window 7", CompressionContextTakeover, []string{"permessage-deflate; client_max_window_bits=7"}, deflateParams{}, false},
		{"two extensions", CompressionContextTakeover, []string{"permessage-deflate, permessage-deflate"}, deflateParams{}, false},
		{"other extension", CompressionContextTakeover, []string{"x-webkit-deflate-frame"}, deflateParams{}, false},
		{"duplicate parameter", CompressionContextTakeover, []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, deflateParams{}, false},
		{"flag with a value", CompressionContextTakeover, []string{"permessage-deflate; server_no_context_takeover=1"}, deflateParams{}, false},
		{"bad window", CompressionContextTakeover, []string{"permessage-deflate; server_max_window_bits=16"}, deflateParams{}, false},
		{"not offered at all", CompressionOff, []string{"permessage-deflate"}, deflateParams{}, false},
	} {
		got, ok := acceptDeflateResponse(tt.values, tt.mode)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
