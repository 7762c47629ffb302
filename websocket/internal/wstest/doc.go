// Package wstest holds the test helpers shared by the test files of
// package websocket, in-package and black-box alike: client and server
// frames encoded by hand, close payloads, and the opening handshake's keys.
//
// It imports nothing of package websocket, so that the in-package tests
// can use it as well as the black-box ones, and everything here is
// computed independently of the library (RFC 6455 as written), so that
// a test built on it checks the library rather than repeats it.
//
// The fuzz targets in fuzz/ cannot import it: Go's internal rule limits it
// to the packages under websocket/.
package wstest
