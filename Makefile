# Short and obvious targets; see README.md.

FUZZTIME ?= 60s

.PHONY: run echo deps test race bench bench-smoke fmt vet rows proptest fuzz soak shutdown-figures broadcast-figures mutation

# Chat example: open http://127.0.0.1:8080/ in a browser.
run:
	go run ./examples/chat -addr 127.0.0.1:8080

# Echo server on any path, accepting any Origin (for conformance suites).
echo:
	go run ./examples/echo -addr 127.0.0.1:9001

# What the interop tests need (Debian packages, Node's ws): see .ci/deps.
deps:
	bash .ci/deps

test: deps
	go vet ./... && go test -race -count=1 ./... && $(MAKE) --no-print-directory bench-smoke

# Repeated runs under the race detector, to shake out rare interleavings.
race:
	go test -race -count=10 ./...

# Frame headers, masking, UTF-8, echo over net.Pipe and loopback, receives,
# handshakes, compression (codec, round trip per mode), the client beside
# gorilla's and gws's; each with allocs/op. Compare runs with benchstat.
bench:
	go test -run '^$$' -bench . -benchmem ./websocket/

# The steady-state echo benchmarks, briefly: fails if a message costs an
# allocation (allocs/op > 0), never on timings. ReceiveText is left out:
# its string is an allocation by design. Then the allocation and stack
# checks that the race detector makes meaningless (its sync.Pool drops
# items, its instrumentation grows frames).
bench-smoke:
	go test -count=1 -run 'TestCopyMessageToPlainWriter|TestIdleConnectionsKeepSmallStacks' ./websocket/
	go test -run '^$$' -bench 'Echo|Receive/ReceiveBinary' -benchtime 2000x -benchmem ./websocket/ | \
		awk '{ print } /allocs\/op/ && $$(NF-1) > 0 { bad = 1 } END { if (bad) print "bench-smoke: allocations per message (allocs/op > 0)"; exit bad }'

fmt:
	gofmt -s -l -w .

vet:
	go vet ./...

# Every row of STATE_MACHINE.md's transition table with the tests that
# name it in their "Rows:" line (websocket/rows_test.go).
rows:
	cd websocket && go test -count=1 -run '^TestEveryRowHasATest$$' -rows.list

# The property tests, long: 20,000 random scenarios against the model and
# every sequence of 5 events.
proptest:
	go test -count=1 ./model/
	go test -count=1 -timeout 60m -run 'Model' ./websocket/ \
		-rapid.checks=20000 -exhaustive.depth=5 -v
	go test -count=1 -timeout 60m -run 'Model|HeaderRoundTrip|HeaderVerdict' ./websocket/internal/core/ \
		-rapid.checks=20000 -v

# Every fuzz target in turn, FUZZTIME each (default 60s): fuzz/'s, through
# a real Conn, and websocket/internal/core's FuzzCore*, on the protocol in memory;
# what the fuzzer finds is kept in testdata/fuzz. See fuzz/campaign.sh for
# the settings (FUZZPARALLEL=1: one worker).
fuzz:
	FUZZTIME=$(FUZZTIME) bash fuzz/campaign.sh

# 10,000 connections echoing for three minutes, a fifth misbehaving.
soak:
	go test -count=1 -timeout 30m -run '^TestSoak$$' -v ./websocket/ -soak.conns=10000 -soak.duration=3m

# How long Handler.Shutdown takes with 1,000 and 10,000 connections, all
# answering, and with a tenth silent (dropped when its context ends).
shutdown-figures:
	for n in 1000 10000; do \
		go test -count=1 -run 'TestShutdown(Closes|Drops)' -v ./websocket/ -shutdown.conns=$$n | grep 'shut down in'; \
	done

# One 1 KiB text message to 1,000 and 10,000 loopback connections, plain
# and compressed (no context takeover): our Broadcast beside gorilla's
# WritePreparedMessage loop and gws's Broadcaster, with the server's CPU,
# allocations and wire bytes per message (the clients run in a child
# process; see websocket/broadcast_bench_test.go). About three minutes on
# two cores.
broadcast-figures:
	go test -run '^$$' -bench '^BenchmarkBroadcast$$' -benchtime 100x -count 1 -timeout 30m ./websocket/

# Mutation testing of the library and the model (go-gremlins, on the short
# test run; the model's mutants are run against every package's tests).
GREMLINS = go run github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
mutation:
	GOFLAGS=-short $(GREMLINS) unleash --workers 2 --timeout-coefficient 3 ./websocket
	GOFLAGS=-short $(GREMLINS) unleash --workers 2 --timeout-coefficient 3 --integration \
		--coverpkg github.com/wsmachine/wsmachine/model ./model
