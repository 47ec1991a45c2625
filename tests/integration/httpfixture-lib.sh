# SPDX-License-Identifier: Apache-2.0
# start_httpfixture NAME DIR [httpfixture options...]: start the static HTTP
# fixture (httpfixture.c) serving DIR on a free loopback port; sets
# FIXTURE_URL (http://127.0.0.1:PORT), FIXTURE_LOG ($T/NAME.log, one line per
# request) and FIXTURE_PID. Source after lib.sh; the fixture stops with the
# test (lib.sh's cleanup) or after its own lifetime.
AK_HTTPFIXTURE="$top_builddir/tests/integration/httpfixture"
FIXTURE_URL=""
FIXTURE_LOG=""
FIXTURE_PID=""
start_httpfixture() {
	local name=$1 dir=$2
	shift 2
	[ -x "$AK_HTTPFIXTURE" ] || bail "$AK_HTTPFIXTURE not built"
	rm -f "$T/$name.port"
	FIXTURE_LOG="$T/$name.log"
	: >"$FIXTURE_LOG"
	"$AK_HTTPFIXTURE" --dir "$dir" --port-file "$T/$name.port" --log "$FIXTURE_LOG" "$@" \
		2>>"$T/$name.err" &
	FIXTURE_PID=$!
	AK_PIDS="$AK_PIDS $FIXTURE_PID"
	for _ in $(seq 100); do
		[ -s "$T/$name.port" ] && break
		kill -0 "$FIXTURE_PID" 2>/dev/null || bail "httpfixture $name exited: $(cat "$T/$name.err")"
		sleep 0.1
	done
	[ -s "$T/$name.port" ] || bail "httpfixture $name did not start listening"
	FIXTURE_URL="http://127.0.0.1:$(cat "$T/$name.port")"
}
stop_httpfixture() {
	[ -n "$FIXTURE_PID" ] && kill "$FIXTURE_PID" 2>/dev/null && wait "$FIXTURE_PID" 2>/dev/null
	FIXTURE_PID=""
}
# fixture_fetches PATTERN: how many logged requests match the grep pattern
fixture_fetches() { grep -c -- "$1" "$FIXTURE_LOG" 2>/dev/null || true; }
