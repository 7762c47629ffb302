#!/usr/bin/env bash
# Runs every fuzz target in turn, FUZZTIME each: this package's, which go
# through a real Conn and TCP, then the websocket package's, which drive
# its protocol in memory (FuzzCore, FuzzCoreRapid: the protocol is
# unexported). Keeps what the fuzzer found in testdata/fuzz, and prints
# per target: executions, executions per second, new corpus entries and
# the result.
#
#   FUZZTIME=60s          time per target (go test -fuzztime)
#   FUZZMINIMIZETIME=5s   time spent minimizing each new input: the
#                         connection targets are slow, and Go's default of
#                         60 s per input would leave little time to fuzz
#   TARGETS="FuzzA ..."   the targets to run (default: all)
#   FUZZPARALLEL=n        fuzzing workers (go test -parallel; default: one
#                         per core)
#   FUZZ_GOTOOLCHAIN      the Go that fuzzes (default go1.27.3, fetched from
#                         the module proxy once): Go 1.26's fuzzing
#                         coordinator can fail a campaign that found nothing
#                         with "context deadline exceeded" when the time is
#                         up (golang/go#75804, fixed in Go 1.27)
set -uo pipefail

cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-60s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}
export GOTOOLCHAIN=${FUZZ_GOTOOLCHAIN:-go1.27.3}
MODULE=github.com/wsmachine/wsmachine
PACKAGES="fuzz websocket/internal/core websocket/internal/coretest"
PARALLEL=${FUZZPARALLEL:+-parallel $FUZZPARALLEL}
LOGS=$(mktemp -d)

# packageOf names the package (fuzz or websocket/internal/core) that holds
# target t.
packageOf() {
	for p in $PACKAGES; do
		if go test -list "^$1\$" "./$p" | grep "^$1\$" >/dev/null; then
			echo "$p"
			return
		fi
	done
}

if [ -z "${TARGETS:-}" ]; then
	TARGETS=$(for p in $PACKAGES; do go test -list '^Fuzz' "./$p" | grep '^Fuzz'; done)
fi

# seconds turns the fuzzer's elapsed time (3s, 1m0s, 1h2m3s) into seconds.
seconds() {
	local h=0 m=0 s=0
	[[ $1 =~ ([0-9]+)h ]] && h=${BASH_REMATCH[1]}
	[[ $1 =~ ([0-9]+)m ]] && m=${BASH_REMATCH[1]}
	[[ $1 =~ ([0-9]+)s ]] && s=${BASH_REMATCH[1]}
	echo $((h * 3600 + m * 60 + s))
}

summary=()
failed=0
for t in $TARGETS; do
	pkg=$(packageOf "$t")
	CACHE="$(go env GOCACHE)/fuzz/$MODULE/$pkg"
	corpus=testdata/fuzz/$t
	mkdir -p "$corpus"
	before=$(ls "$corpus" | wc -l)
	echo "=== $t for $FUZZTIME (log: $LOGS/$t.log)"
	go test "./$pkg" -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" $PARALLEL \
		-fuzzminimizetime "$FUZZMINIMIZETIME" -timeout 0 2>&1 | tee "$LOGS/$t.log" |
		grep -v '^fuzz: elapsed: .*, execs: ' || true
	# The last progress line has the totals.
	last=$(grep '^fuzz: elapsed: .*, execs: ' "$LOGS/$t.log" | tail -1)
	elapsed=$(sed -E 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/' <<<"$last")
	execs=$(sed -E 's/.*execs: ([0-9]+) .*/\1/' <<<"$last")
	newfound=$(sed -E 's/.*new interesting: ([0-9]+) .*/\1/' <<<"$last")
	secs=$(seconds "$elapsed")
	rate=0
	if [ "${secs:-0}" -gt 0 ] && [ -n "$execs" ]; then rate=$((execs / secs)); fi
	# Keep what the fuzzer found: its cache holds the inputs that reached
	# new code, testdata/fuzz/<target> the failures (it writes those there
	# itself). Only inputs up to 8 KiB are kept, so that the corpus stays
	# small enough to replay in every test run; the big ones are mostly
	# variations of the big hand-made seeds, and the cache keeps them all
	# for the next campaign.
	if [ -d "$CACHE/$t" ]; then
		find "$CACHE/$t" -type f -size -8193c -exec cp -n {} "$corpus"/ \;
		# The cache outlives a change of the target's arguments: drop
		# the inputs the target can no longer read.
		go test "./$pkg" -run "^$t\$" -count=1 2>&1 |
			grep -ao "\"$corpus/[^\"]*\": wrong number of values\|\"$corpus/[^\"]*\": unsupported" |
			cut -d'"' -f2 | xargs -r rm -f
	fi
	after=$(ls "$corpus" | wc -l)
	if grep -q '^--- FAIL' "$LOGS/$t.log"; then
		result="FAIL: $(grep -m1 'Failing input written to' "$LOGS/$t.log" | sed 's/.*written to //')"
		failed=1
	else
		result=PASS
	fi
	summary+=("$(printf '%-20s %10s %12s %9s %8s %8s  %s' "$t" "$elapsed" "${execs:-0}" "$rate" "${newfound:-0}" "$((after - before))" "$result")")
done

echo
printf '%-20s %10s %12s %9s %8s %8s  %s\n' target time execs execs/s "new" kept result
printf '%s\n' "${summary[@]}"
echo "corpus: $(find testdata/fuzz -type f | wc -l) files in testdata/fuzz"
exit $failed
