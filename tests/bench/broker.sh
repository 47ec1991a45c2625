#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, item 4 of issue 4 and item 3 of issue 10: complete releases
# per second of one broker (its default threads, HTTPS on loopback, sim
# SNP evidence, file store) for tokens of 1, 2 and 10 keys, protocol v2
# (one envelope per release, P-256) beside v1 (a JWE per key, P-384) and
# beside the crypto floor of a release measured by `openssl speed` in the
# same rounds: one ECDSA P-384 verify (the report) plus one key agreement,
# ECDH P-256 for v2, ECDH P-384 for v1, on one core; and the broker's
# resident memory with 64 clients.
. "$(dirname "$0")/bench-lib.sh"
ROUNDS=${BENCH_ROUNDS:-3}
SLICE_MS=${BENCH_SLICE_MS:-4000}
[ -n "${BENCH_QUICK:-}" ] && { ROUNDS=${BENCH_ROUNDS:-2}; SLICE_MS=${BENCH_SLICE_MS:-1500}; }
LOAD="$top_builddir/tests/bench/brokerload"
[ -x "$LOAD" ] || bail "$LOAD not built"

setup_world
# token "one": a single P-256 key with its certificate, what a TLS server
# holds; "web": RSA-2048 + P-256; "ten": 5 RSA-2048 + 5 P-256, with
# certificates
mkdir -p "$T/keys/one"
cp "$T/keys/web/ec.key" "$T/keys/web/ec.crt" "$T/keys/one/"
make_keys "$T/keys/ten" 10 || bail "cannot make the keys of token ten"
write_broker_conf "" "[token one]" "measurements = $MEASUREMENT" "" "[token ten]" \
	"measurements = $MEASUREMENT"
# the 64 clients all come from 127.0.0.1: no per-address ceiling, no rate limit
sed -i '/^\[broker\]/a max_connections_per_ip = 0' "$T/broker.conf"
sed -i '/^\[broker\]/a rate_limit = 0' "$T/broker.conf"
start_broker

# floors: releases/s one core could make if a release cost only its
# unavoidable operations: "v2 v1 verify/s ecdh256/s ecdh384/s"
floor() {
	openssl speed -seconds 1 ecdsap384 ecdhp256 ecdhp384 2>/dev/null | awk '
		/ecdsa \(nistp384\)/ { v = $NF }
		/ecdh \(nistp256\)/ { e2 = $NF }
		/ecdh \(nistp384\)/ { e3 = $NF }
		END { if (v > 0 && e2 > 0 && e3 > 0)
			printf "%.1f %.1f %.1f %.1f %.1f\n", 1 / (1 / v + 1 / e2), 1 / (1 / v + 1 / e3), v, e2, e3 }'
}
# the broker's CPU time so far, in clock ticks (utime + stime)
broker_ticks() { awk '{ print $14 + $15 }' "/proc/$BROKER_PID/stat"; }
load() { # TOKEN CLIENTS PROTO -> "rate cpu_ms_per_release", errors added to $T/errs.PROTO
	local out t0 t1 n m
	t0=$(broker_ticks)
	out=$("$LOAD" "$BROKER_URL" "$T/pki/broker-ca.pem" "$T/sim" "$MEASUREMENT" "$1" "$2" \
		"$SLICE_MS" "$3" 2>"$T/load.err") || { cat "$T/load.err" >&2; bail "brokerload $3 failed"; }
	t1=$(broker_ticks)
	[ -s "$T/load.err" ] && head -n 3 "$T/load.err" >&2
	m=$(sed -n 's/.* presign_misses=\([0-9]*\).*/\1/p' <<<"$out")
	[ "${m:-0}" = 0 ] || echo "brokerload $3: $m reports signed in full (its pool of precomputed nonces ran out)" >&2
	echo $(($(cat "$T/errs.$3") + $(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$out"))) >"$T/errs.$3"
	n=$(sed -n 's/^releases=\([0-9]*\).*/\1/p' <<<"$out")
	echo "$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$out")" \
		"$(awk -v d="$((t1 - t0))" -v n="$n" -v hz="$(getconf CLK_TCK)" \
			'BEGIN { printf "%.3f", (n > 0 ? d * 1000 / hz / n : 0) }')"
}

echo "## Broker throughput ($(bench_machine))"
echo
echo "Releases/s of one broker (default threads: $(( $(nproc) * 4 > 64 ? 64 : $(nproc) * 4 ))) over keep-alive HTTPS on loopback, sim SNP"
echo "evidence, file store; the load generator runs on the same cores and signs each report with an"
echo "ECDSA nonce made before the measured time (the AMD-SP's work on a real guest, not the guest's"
echo "CPU's; BROKERLOAD_PRESIGN=0 signs in full). v2: one envelope per"
echo "release, P-256 ephemeral keys; v1: a JWE per key, P-384. Floor = 1 / (1/verify + 1/ECDH) from"
echo "\`openssl speed ecdsap384 ecdhp256 ecdhp384\` (one core): P-384 verify + P-256 ECDH for v2,"
echo "+ P-384 ECDH for v1. In each round the floor, v2 and v1 run one after another (their order"
echo "alternates). $ROUNDS rounds of ${SLICE_MS} ms; medians, and the medians of the per-round ratios."
echo "\`openssl speed\` counts CPU time; \"CPU ms\" is the broker's own CPU time (utime + stime, both"
echo "threads) per release, and \"floor/CPU\" the floor's CPU time per release over it: the share"
echo "of its CPU the broker spends on the unavoidable operations, which other load on the machine"
echo "does not change (releases/floor does)."
echo
echo "| token (keys) | clients | v2 releases/s | v2 floor | v2/floor | v2 CPU ms | v2 floor/CPU | v1 releases/s | v1 floor | v1/floor | v1 CPU ms | v1 floor/CPU | v2/v1 | errors v2, v1 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for tok in one web ten; do
	nkeys=$(ls "$T/keys/$tok"/*.key | wc -l)
	for clients in 8 64; do
		for f in r2 r1 f2 f1 q2 q1 q21 c2 c1 e2 e1; do : >"$T/$f"; done
		echo 0 >"$T/errs.v1"; echo 0 >"$T/errs.v2"
		for r in $(seq "$ROUNDS"); do
			read -r fl2 fl1 _ < <(floor)
			[ -n "$fl2" ] || bail "openssl speed gave no P-384 / P-256 figures"
			if [ "$clients" = 64 ] && [ "$tok" = web ] && [ "$r" = 1 ]; then
				( sleep "$((SLICE_MS / 2000)).5"; grep -E '^Vm(RSS|HWM)' "/proc/$BROKER_PID/status" >"$T/rss64" ) &
				SAMPLER=$!
			fi
			if [ $((r % 2)) = 1 ]; then
				read -r a ca < <(load "$tok" "$clients" v2)
				read -r b cb < <(load "$tok" "$clients" v1)
			else
				read -r b cb < <(load "$tok" "$clients" v1)
				read -r a ca < <(load "$tok" "$clients" v2)
			fi
			echo "$a" >>"$T/r2"; echo "$b" >>"$T/r1"
			echo "$ca" >>"$T/c2"; echo "$cb" >>"$T/c1"
			awk -v f="$fl2" -v c="$ca" 'BEGIN { printf "%.3f\n", (c > 0 ? 1000 / f / c : 0) }' >>"$T/e2"
			awk -v f="$fl1" -v c="$cb" 'BEGIN { printf "%.3f\n", (c > 0 ? 1000 / f / c : 0) }' >>"$T/e1"
			echo "$fl2" >>"$T/f2"; echo "$fl1" >>"$T/f1"
			awk -v a="$a" -v b="$fl2" 'BEGIN { printf "%.3f\n", a / b }' >>"$T/q2"
			awk -v a="$b" -v b="$fl1" 'BEGIN { printf "%.3f\n", a / b }' >>"$T/q1"
			awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }' >>"$T/q21"
		done
		m() { quantile 0.5 <"$T/$1"; }
		echo "| $tok ($nkeys) | $clients | $(m r2) | $(m f2) | $(m q2) | $(m c2) | $(m e2) | $(m r1) | $(m f1) | $(m q1) | $(m c1) | $(m e1) | $(m q21) | $(cat "$T/errs.v2"), $(cat "$T/errs.v1") |"
		met=$(awk -v q="$(m q2)" 'BEGIN { print (q >= 0.7) ? "yes" : "no" }')
		csv_row broker "v2 $tok ($nkeys keys) $clients clients" attestkey-broker "$(m r2)" floor "$(m f2)" releases/s "$(m q2)" ">=0.7" "$met"
		csv_row broker "v1 $tok ($nkeys keys) $clients clients" attestkey-broker "$(m r1)" floor "$(m f1)" releases/s "$(m q1)" "" ""
		csv_row broker "v2 $tok ($nkeys keys) $clients clients: CPU per release" attestkey-broker "$(m c2)" floor "$(awk -v f="$(m f2)" 'BEGIN { printf "%.3f", 1000 / f }')" "ms" "$(m e2)" "" ""
	done
done
[ -n "${SAMPLER:-}" ] && wait "$SAMPLER"
echo
if [ -s "$T/rss64" ]; then
	rss=$(awk '/VmRSS/ {print $2}' "$T/rss64")
	hwm=$(grep VmHWM "/proc/$BROKER_PID/status" | awk '{print $2}')
	echo "Broker resident memory with 64 clients (token web, v2 then v1): VmRSS $rss KiB during the load, peak (VmHWM) $hwm KiB after all runs."
	csv_row memory "broker RSS at 64 clients" attestkey-broker "$rss" "peak" "$hwm" KiB "" "" ""
fi
echo
