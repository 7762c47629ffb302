# Short and obvious targets; see README.md.

.PHONY: run echo test race bench fmt vet

# Chat example: open http://127.0.0.1:8080/ in a browser.
run:
	go run ./examples/chat -addr 127.0.0.1:8080

# Echo server on any path, accepting any Origin (for conformance suites).
echo:
	go run ./examples/echo -addr 127.0.0.1:9001

test:
	go vet ./... && go test -race -count=1 ./...

# Repeated runs under the race detector, to shake out rare interleavings.
race:
	go test -race -count=10 ./...

bench:
	go test -run '^$$' -bench . -benchmem ./websocket/

fmt:
	gofmt -s -l -w .

vet:
	go vet ./...
