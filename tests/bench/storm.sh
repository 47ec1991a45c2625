#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, issue 13 item 4: an honest client's challenge latency with no
# attack beside the same during a storm of bad requests from one address
# (tests/integration/slowclient storm: 256 connections in flight, each
# sending a bad request as soon as its TLS handshake lets it, opened again
# at once), in the same run, and the attacker's achieved rate. The broker
# runs with its default limits (rate_limit 100/s, rate_burst 200 per
# address); the honest client is curl, one new TLS connection per
# challenge, from another address.
. "$(dirname "$0")/bench-lib.sh"
ROUNDS=${BENCH_ROUNDS:-4}
N=${BENCH_STORM_N:-20}
[ -n "${BENCH_QUICK:-}" ] && ROUNDS=${BENCH_ROUNDS:-2}
SLOW="$top_builddir/tests/integration/slowclient"
[ -x "$SLOW" ] || bail "$SLOW not built"

setup_world
write_broker_conf
start_broker
PORT=$(cat "$T/broker.port")

honest() { # FILE: N challenges, "status seconds" lines appended to FILE
	local i
	for i in $(seq "$N"); do
		curl -s --cacert "$T/pki/broker-ca.pem" --max-time 10 -o /dev/null \
			-w '%{http_code} %{time_total}\n' -H 'Content-Type: application/json' \
			--data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge" >>"$1"
	done
}
quiet() { honest "$T/quiet.r$1"; }
storm() { # from half a second before the honest challenges to their end (60 s at most)
	"$SLOW" storm 127.0.0.7 "$PORT" 60 256 >>"$T/storm.out" 2>&1 &
	local apid=$!
	sleep 0.5
	honest "$T/storm.r$1"
	kill -0 "$apid" 2>/dev/null || echo "storm: round $1's storm ended before its honest challenges" >&2
	kill -TERM "$apid" 2>/dev/null
	wait "$apid"
}
ms() { awk '{ printf "%.1f\n", $2 * 1000 }' "$@" | quantile "$q"; }

rss_before=$(awk '/^VmRSS/ { print $2 }' "/proc/$BROKER_PID/status")
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then quiet "$r"; storm "$r"; else storm "$r"; quiet "$r"; fi
done
rss_after=$(awk '/^VmRSS/ { print $2 }' "/proc/$BROKER_PID/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$BROKER_PID/status")

echo "## Honest challenges during a storm from one address ($(bench_machine), load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "One broker with its default rate limit (100/s, burst 200 per address). Each round: $N challenges"
echo "by curl (a new TLS connection each) with no attack, and $N during \`slowclient storm\` from"
echo "127.0.0.7 (256 connections in flight, from 0.5 s before the first to the last), in alternating"
echo "order; $ROUNDS rounds. Latencies over all rounds; ratio = median of the per-round ratios"
echo "(storm / no attack)."
echo
echo "| | no attack | during the storm | ratio | honest answers not 200 |"
echo "|---|---|---|---|---|"
bad=$(cat "$T"/quiet.r* "$T"/storm.r* | grep -vc '^200 ')
for q in 0.5 0.99; do
	for r in $(seq "$ROUNDS"); do
		awk -v a="$(ms "$T/storm.r$r")" -v b="$(ms "$T/quiet.r$r")" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }'
	done >"$T/ratio"
	a=$(ms "$T"/storm.r*)
	b=$(ms "$T"/quiet.r*)
	ratio=$(quantile 0.5 <"$T/ratio")
	echo "| honest p$(awk -v q="$q" 'BEGIN { print q * 100 }') (ms) | $b | $a | $ratio | $bad |"
	csv_row storm "honest challenge p$(awk -v q="$q" 'BEGIN { print q * 100 }') during a storm from one address" \
		storm "$a" "no attack" "$b" ms "$ratio" "" ""
done
rate=$(sed -n 's/.*(\([0-9]*\)\/s) = .*/\1/p' "$T/storm.out" | quantile 0.5)
echo
echo "The attacker, median over the rounds: $rate bad requests a second from one address (requests"
echo "sent over TLS + connections closed at accept). Each round:"
echo
sed 's/^/    /' "$T/storm.out"
echo
echo "Broker VmRSS: $rss_before KiB before the first round, $rss_after KiB after the last (peak VmHWM $hwm KiB)."
echo
csv_row storm "bad requests a second from one address (attacker's achieved rate)" slowclient "$rate" "" "" \
	"requests/s" "" ">=10000" "$(awk -v r="$rate" 'BEGIN { print (r >= 10000) ? "yes" : "no" }')"
csv_row memory "broker RSS after the storms" attestkey-broker "$rss_after" "before" "$rss_before" KiB "" "" ""
