// Package fuzz holds the native Go fuzz targets of the websocket package.
// Every byte a server reads comes from an untrusted peer, so every entry
// point that parses such bytes is fuzzed, with the reference model in
// model/ as the oracle wherever it has one:
//
//   - FuzzHandshake: raw HTTP request bytes against Handler.ServeHTTP;
//   - FuzzFrameReader: arbitrary bytes as a client's stream, receiving
//     throughout;
//   - FuzzClient: arbitrary bytes as a server's stream to a client Conn
//     from Dial, receiving throughout, against model.NewClient();
//   - FuzzConn: a whole connection, client frames and server calls drawn
//     from the input with gofuzz, differential against the model;
//   - FuzzConnRapid: the same, with the scenario drawn by rapid
//     generators (rapid.MakeFuzz), so coverage guides rapid's choices;
//   - FuzzUTF8Fragments: text split at arbitrary points, read and written,
//     against unicode/utf8.Valid;
//   - FuzzClosePayload: the client's close frame payload (code + reason).
//
// Every target here goes through a real Conn and loopback TCP. Two more,
// FuzzCore (websocket/internal/coretest) and FuzzCoreRapid
// (websocket/internal/core), drive the protocol core in memory against
// the model, at a hundred times the speed; make fuzz runs them all. (Go's
// internal rule keeps this package from importing the core.)
//
// The corpus lives in testdata/fuzz at the top of the repository
// (fuzz/testdata links to it): `go test ./fuzz` replays it, `make fuzz`
// runs every target in turn. The package has test files only, besides
// this comment.
package fuzz
