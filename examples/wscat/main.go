// Command wscat connects to a WebSocket server, sends each line of its
// standard input as a text message, and prints every message it receives:
// the way to poke at a WebSocket server by hand.
//
//	go run ./examples/wscat ws://127.0.0.1:8080/ws
//	go run ./examples/wscat -H 'Authorization: Bearer x' -subprotocol chat wss://example.com/ws
//
// Received text is printed as it is, one message per line; binary as
// "binary: " and hex. At the end of the input wscat closes the connection
// (code 1000) and waits for the server's answer; messages still on their
// way then are not printed (they arrive after our close). When the server
// closes, wscat prints its code and reason and exits.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wsmachine/wsmachine/websocket"
)

// headerFlags collects repeated -H flags.
type headerFlags http.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok {
		return errors.New(`a header is "Name: value"`)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

func main() {
	header := headerFlags{}
	flag.Var(header, "H", "extra request header `Name: value` (repeatable)")
	subprotocol := flag.String("subprotocol", "", "subprotocols to offer, comma-separated")
	origin := flag.String("origin", "", "Origin header to send")
	compress := flag.Bool("compress", false, "offer permessage-deflate")
	insecure := flag.Bool("insecure", false, "do not verify the server's TLS certificate (wss)")
	timeout := flag.Duration("timeout", 10*time.Second, "bound on connecting and the opening handshake")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: wscat [flags] ws://host[:port]/path\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	opts := &websocket.DialOptions{Header: http.Header(header), Origin: *origin}
	if *subprotocol != "" {
		opts.Subprotocols = strings.Split(*subprotocol, ",")
	}
	if *compress {
		opts.Compression = websocket.CompressionContextTakeover
	}
	if *insecure {
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	os.Exit(run(flag.Arg(0), opts, *timeout, os.Stdin, os.Stdout, os.Stderr))
}

// run is wscat: it returns the exit status (0 after a clean close).
func run(url string, opts *websocket.DialOptions, timeout time.Duration, in io.Reader, out, errOut io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	conn, resp, err := websocket.Dial(ctx, url, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(errOut, "wscat: %v\n", err)
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(resp.Body)
			fmt.Fprintf(errOut, "wscat: the server answered %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		}
		return 1
	}
	if conn.Protocol != "" {
		fmt.Fprintf(errOut, "wscat: connected, subprotocol %s\n", conn.Protocol)
	} else {
		fmt.Fprintf(errOut, "wscat: connected\n")
	}

	received := make(chan struct{})
	go func() {
		defer close(received)
		for {
			tp, r, err := conn.ReceiveMessage()
			if err != nil {
				return
			}
			msg, err := io.ReadAll(r)
			if err != nil {
				return
			}
			if tp == websocket.Text {
				fmt.Fprintf(out, "%s\n", msg)
			} else {
				fmt.Fprintf(out, "binary: %s\n", hex.EncodeToString(msg))
			}
		}
	}()

	// Lines are read on a goroutine of their own, so that a close by the
	// server ends wscat while it waits for input.
	lines := make(chan string)
	var inputErr error
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		inputErr = sc.Err()
	}()
sending:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				if inputErr != nil {
					fmt.Fprintf(errOut, "wscat: reading input: %v\n", inputErr)
				}
				break sending
			}
			if conn.SendText(line) != nil {
				break sending // the connection has ended: reported below
			}
		case <-received:
			break sending
		}
	}
	err = conn.Close(websocket.StatusOK, "")
	<-received
	code, reason := conn.GetStatus()
	if reason != "" {
		reason = " " + reason
	}
	switch {
	case code == websocket.StatusDropped:
		fmt.Fprintf(errOut, "wscat: connection dropped: %v\n", err)
		return 1
	case errors.Is(err, websocket.ErrConnClosed):
		fmt.Fprintf(errOut, "wscat: closed by the server: %d%s\n", code, reason)
	default:
		fmt.Fprintf(errOut, "wscat: closed: %d%s\n", code, reason)
	}
	return 0
}
