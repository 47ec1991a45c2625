#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, items 4 and 5 of issue 4: complete releases per second of one
# broker (its default 2 threads, HTTPS on loopback, sim SNP evidence, file
# store) with 1, 8 and 64 keep-alive clients, beside the crypto floor of a
# release measured by `openssl speed` in the same run (one ECDSA P-384
# verify plus one ECDH P-384, on one core); and the broker's resident
# memory with 64 clients.
. "$(dirname "$0")/bench-lib.sh"
ROUNDS=${BENCH_ROUNDS:-3}
SLICE_MS=${BENCH_SLICE_MS:-4000}
[ -n "${BENCH_QUICK:-}" ] && { ROUNDS=${BENCH_ROUNDS:-2}; SLICE_MS=${BENCH_SLICE_MS:-1500}; }
LOAD="$top_builddir/tests/bench/brokerload"
[ -x "$LOAD" ] || bail "$LOAD not built"

setup_world
# token "one": a single P-256 key with its certificate, what a TLS server holds
mkdir -p "$T/keys/one"
cp "$T/keys/web/ec.key" "$T/keys/web/ec.crt" "$T/keys/one/"
write_broker_conf "" "[token one]" "measurements = $MEASUREMENT"
start_broker

# floor: releases/s one core could make if a release cost only its two
# unavoidable P-384 operations
floor() {
	openssl speed -seconds 1 ecdsap384 ecdhp384 2>/dev/null | awk '
		/ecdsa \(nistp384\)/ { v = $NF }
		/ecdh \(nistp384\)/ { e = $NF }
		END { if (v > 0 && e > 0) printf "%.1f %.1f %.1f\n", 1 / (1 / v + 1 / e), v, e }'
}

echo "## Broker throughput ($(bench_machine))"
echo
echo "Releases/s of one broker (threads = 2) over keep-alive HTTPS on loopback, sim SNP"
echo "evidence, file store; the load generator runs on the same 2 cores. Floor = 1 / (1/verify + 1/ECDH)"
echo "from \`openssl speed ecdsap384 ecdhp384\` (one core), alternating with the load in each round."
echo "$ROUNDS rounds of ${SLICE_MS} ms; medians, and the median of the per-round ratios."
echo
echo "| token (keys) | clients | releases/s | floor releases/s | releases/floor | errors |"
echo "|---|---|---|---|---|---|"
rss_line=""
for tok in one web; do
	nkeys=$(ls "$T/keys/$tok"/*.key | wc -l)
	for clients in 1 8 64; do
		: >"$T/rates"; : >"$T/floors"; : >"$T/ratios"
		errs=0
		for r in $(seq "$ROUNDS"); do
			read -r fl v e < <(floor)
			[ -n "$fl" ] || bail "openssl speed gave no P-384 figures"
			if [ "$clients" = 64 ] && [ "$tok" = web ] && [ "$r" = 1 ]; then
				( sleep "$((SLICE_MS / 2000)).5"; grep -E '^Vm(RSS|HWM)' "/proc/$BROKER_PID/status" >"$T/rss64" ) &
				SAMPLER=$!
			fi
			out=$("$LOAD" "$BROKER_URL" "$T/pki/broker-ca.pem" "$T/sim" "$MEASUREMENT" "$tok" \
				"$clients" "$SLICE_MS" 2>"$T/load.err") || { cat "$T/load.err" >&2; bail "brokerload failed"; }
			rate=$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$out")
			errs=$((errs + $(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$out")))
			[ -s "$T/load.err" ] && head -n 3 "$T/load.err" >&2
			echo "$rate" >>"$T/rates"
			echo "$fl" >>"$T/floors"
			awk -v a="$rate" -v b="$fl" 'BEGIN { printf "%.3f\n", a / b }' >>"$T/ratios"
		done
		mr=$(quantile 0.5 <"$T/rates")
		mf=$(quantile 0.5 <"$T/floors")
		mq=$(quantile 0.5 <"$T/ratios")
		echo "| $tok ($nkeys) | $clients | $mr | $mf | $mq | $errs |"
		met=$(awk -v q="$mq" 'BEGIN { print (q >= 0.7) ? "yes" : "no" }')
		csv_row broker "$tok ($nkeys keys) $clients clients" attestkey-broker "$mr" floor "$mf" releases/s "$mq" ">=0.7" "$met"
	done
done
[ -n "${SAMPLER:-}" ] && wait "$SAMPLER"
echo
if [ -s "$T/rss64" ]; then
	rss=$(awk '/VmRSS/ {print $2}' "$T/rss64")
	hwm=$(grep VmHWM "/proc/$BROKER_PID/status" | awk '{print $2}')
	echo "Broker resident memory with 64 clients (token web): VmRSS $rss KiB during the load, peak (VmHWM) $hwm KiB after all runs."
	csv_row memory "broker RSS at 64 clients" attestkey-broker "$rss" "peak" "$hwm" KiB "" "" ""
fi
echo
