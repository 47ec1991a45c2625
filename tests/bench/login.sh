#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, items 3 and 5 of issue 4: C_Login latency against a local
# broker (sim SNP, file store, HTTPS on loopback) with its phases, and the
# module's resident memory before and after login with 1, 10 and 100 keys;
# item 3 of issue 10: a 100-key C_Login beside a 1-key C_Login, protocol v2
# beside v1 (a second broker that offers v1 alone), in the same rounds.
# The phases come from the debug timing lines (ATTESTKEY_DEBUG=1) that the
# module and the broker write for every login and release.
. "$(dirname "$0")/bench-lib.sh"
LOGINS=${BENCH_LOGINS:-300}
[ -n "${BENCH_QUICK:-}" ] && LOGINS=${BENCH_LOGINS:-200}
LOGINBENCH="$top_builddir/tests/bench/loginbench"

setup_world
# tokens m1, m10, m100 for the memory rows: half RSA-2048, half P-256, each
# key with a self-signed certificate, as a TLS token would hold them
for n in 1 10 100; do
	make_keys "$T/keys/m$n" "$n" || bail "cannot make the keys of token m$n"
done
write_broker_conf "" "[token m1]" "measurements = $MEASUREMENT" "" "[token m10]" \
	"measurements = $MEASUREMENT" "" "[token m100]" "measurements = $MEASUREMENT"
ATTESTKEY_DEBUG=1 start_broker
# module_conf TOKEN [PORT]: a module config with only that token, so it is
# slot 0 (and another broker's port)
module_conf() {
	local port=${2:-}
	sed "s/^\[token web\]/[token $1]/; s/^label = web/label = $1/" "$T/attestkey.conf" >"$T/ak-$1$port.conf"
	[ -z "$port" ] || sed -i "s|^brokers = .*|brokers = https://127.0.0.1:$port|" "$T/ak-$1$port.conf"
	echo "$T/ak-$1$port.conf"
}

# --- latency ---------------------------------------------------------------
: >"$T/broker.log"
ATTESTKEY_DEBUG=1 ATTESTKEY_CONF=$(module_conf web) "$LOGINBENCH" "$AK_MODULE" "$LOGINS" \
	>"$T/login.out" 2>"$T/login.err" || { cat "$T/login.err" >&2; bail "loginbench failed"; }
[ "$(grep -c '^login_us ' "$T/login.out")" -eq "$LOGINS" ] || bail "loginbench did not log in $LOGINS times"

echo "## Login latency ($(bench_machine))"
echo
echo "$LOGINS logins of token web (RSA-2048 + P-256 keys with certificates), each C_Login then C_Logout;"
echo "broker on loopback over HTTPS, sim SNP evidence, file store. Phases from the debug timing lines."
echo
grep '^login_us ' "$T/login.out" | awk '{print $2 / 1000}' >"$T/lat.ms"
med=$(quantile 0.5 <"$T/lat.ms")
p99=$(quantile 0.99 <"$T/lat.ms")
echo "| measure | ms |"
echo "|---|---|"
echo "| C_Login median | $med |"
echo "| C_Login p99 | $p99 |"
echo "| C_Login min | $(quantile 0 <"$T/lat.ms") |"
# phase medians: module side ...
for ph in challenge ephemeral evidence release unwrap objects total; do
	v=$(grep -o "login timing (us):.*" "$T/login.err" | grep -o " $ph=[0-9]*" | cut -d= -f2 |
		awk '{print $1 / 1000}' | quantile 0.5)
	echo "| module phase $ph (median) | $v |"
done
# ... and the broker's share of the release phase
for ph in checks verify fetch wrap; do
	v=$(grep -o "release timing (us):.*" "$T/broker.log" | grep -o " $ph=[0-9]*" | cut -d= -f2 |
		awk '{print $1 / 1000}' | quantile 0.5)
	echo "| broker part of release: $ph (median) | $v |"
done
# this machine beside the one issue 4 measured its baselines on (openssl
# speed RSA-2048: about 4,200 signs/s there)
rsa=$(openssl speed -seconds 1 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $(NF-1)}')
[ -n "$rsa" ] && {
	echo "| machine: openssl speed RSA-2048 sign/s (same run) | $rsa |"
	echo "| C_Login median scaled to a 4,200 sign/s machine | $(awk -v m="$med" -v r="$rsa" 'BEGIN { printf "%.2f", m * r / 4200 }') |"
}
met=$(awk -v m="$med" 'BEGIN { print (m <= 10) ? "yes" : "no" }')
csv_row login "C_Login median" attestkey "$med" "" "" ms "" "<=10" "$met"
csv_row login "C_Login p99" attestkey "$p99" "" "" ms "" "" ""
echo

# --- memory ----------------------------------------------------------------
echo "## Module resident memory ($(bench_machine))"
echo
echo "VmRSS of a process that loads the module, opens a session and logs in once."
echo "Keys are half RSA-2048, half P-256, each with a certificate. One login each (the first of the"
echo "process: it includes loading libcurl's and OpenSSL's TLS state), so its time is only indicative."
echo
echo "| keys | private keys after login | RSS before C_Initialize (KiB) | before C_Login (KiB) | after C_Login (KiB) | growth (KiB) | secure heap in use (KiB of 1024) | that C_Login (ms) |"
echo "|---|---|---|---|---|---|---|---|"
for n in 1 10 100; do
	ATTESTKEY_CONF=$(module_conf "m$n") "$LOGINBENCH" "$AK_MODULE" 1 >"$T/mem$n.out" 2>"$T/mem$n.err" ||
		{ cat "$T/mem$n.err" >&2; bail "loginbench failed for token m$n"; }
	keys=$(awk '/^private_keys/ {print $2}' "$T/mem$n.out")
	read -r s b a < <(sed -n 's/^rss_kib start=\([0-9]*\) before_login=\([0-9]*\) after_login=\([0-9]*\)/\1 \2 \3/p' "$T/mem$n.out")
	sec=$(awk '/^secure_heap_used/ {printf "%.1f", $2 / 1024}' "$T/mem$n.out")
	lms=$(awk '/^login_us/ {printf "%.1f", $2 / 1000}' "$T/mem$n.out")
	echo "| $n | $keys | $s | $b | $a | $((a - b)) | $sec | $lms |"
	csv_row memory "module RSS after login with $n keys" attestkey "$a" "before login" "$b" KiB "" "" ""
	[ "$keys" = "$n" ] || echo "bench: token m$n: $keys private keys after login, expected $n" >&2
done
echo

# --- 1 key beside 100 keys, v2 beside v1 ------------------------------------
# The v1 broker: the same keys, secret and roots, release_v2 = no.
sed -e '/^\[broker\]/a release_v2 = no' -e "s|^port_file = .*|port_file = $T/broker-v1.port|" \
	-e "s|^audit_log = .*|audit_log = $T/audit-v1.jsonl|" "$T/broker.conf" >"$T/broker-v1.conf"
"$AK_BROKER" -f -c "$T/broker-v1.conf" >>"$T/broker-v1.log" 2>&1 &
AK_PIDS="$AK_PIDS $!"
for _ in $(seq 100); do [ -s "$T/broker-v1.port" ] && break; sleep 0.1; done
[ -s "$T/broker-v1.port" ] || bail "the v1 broker did not start"
V1PORT=$(cat "$T/broker-v1.port")
LROUNDS=${BENCH_LOGIN_ROUNDS:-5}
[ -n "${BENCH_QUICK:-}" ] && LROUNDS=${BENCH_LOGIN_ROUNDS:-3}
# one_case NAME TOKEN PORT LOGINS [env...]: the median C_Login (ms) of one
# process doing LOGINS logins, appended to $T/lk.NAME; its debug lines to
# $T/lk.NAME.err
one_case() {
	local name=$1 tok=$2 port=$3 n=$4 conf
	shift 4
	conf=$(module_conf "$tok" "$port")
	env ATTESTKEY_DEBUG=1 ATTESTKEY_CONF="$conf" "$@" "$LOGINBENCH" "$AK_MODULE" "$n" \
		>"$T/lk.out" 2>>"$T/lk.$name.err" || { tail -n 5 "$T/lk.$name.err" >&2; bail "loginbench $name failed"; }
	grep '^login_us ' "$T/lk.out" | awk '{print $2 / 1000}' | quantile 0.5 >>"$T/lk.$name"
}
CASES="v2-1 v2-100 v2-100-1t v1-1 v1-100"
for c in $CASES; do : >"$T/lk.$c"; : >"$T/lk.$c.err"; done
for r in $(seq "$LROUNDS"); do
	order="$CASES"
	[ $((r % 2)) = 0 ] && order=$(echo "$CASES" | tr ' ' '\n' | tac | tr '\n' ' ')
	for c in $order; do
		case $c in
		v2-1) one_case "$c" m1 "" 20 ;;
		v2-100) one_case "$c" m100 "" 5 ;;
		v2-100-1t) one_case "$c" m100 "" 5 BENCH_NO_THREADS=1 ;;
		v1-1) one_case "$c" m1 "$V1PORT" 20 ;;
		v1-100) one_case "$c" m100 "$V1PORT" 3 ;;
		esac
	done
	for p in v2 v1; do
		awk -v a="$(tail -n1 "$T/lk.$p-100")" -v b="$(tail -n1 "$T/lk.$p-1")" \
			'BEGIN { printf "%.2f\n", a / b }' >>"$T/lk.ratio-$p"
	done
	awk -v a="$(tail -n1 "$T/lk.v2-100-1t")" -v b="$(tail -n1 "$T/lk.v2-100")" \
		'BEGIN { printf "%.2f\n", a / b }' >>"$T/lk.ratio-par"
done
med() { quantile 0.5 <"$T/lk.$1"; }
phase() { # CASE PHASE: median of a phase of the module's timing lines, ms
	grep -o "login timing (us):.*" "$T/lk.$1.err" | grep -o " $2=[0-9]*" | cut -d= -f2 |
		awk '{print $1 / 1000}' | quantile 0.5
}
echo "## C_Login with 1 and 100 keys, protocol v2 beside v1 ($(bench_machine))"
echo
echo "Median C_Login of tokens m1 (one RSA-2048 key) and m100 (50 RSA-2048, 50 P-256, each with"
echo "a certificate), v2 (one envelope per release, P-256) against the broker, v1 (a JWE per key,"
echo "P-384) against a second broker with release_v2 = no, same keys. $LROUNDS rounds; in each, every"
echo "case is one process of 20 (1 key) or 5 / 3 (100 keys, v2 / v1) logins, in alternating order;"
echo "medians of the per-process medians, and of the per-round ratios. \"1 thread\": the"
echo "application forbade threads (CKF_LIBRARY_CANT_CREATE_OS_THREADS), so the keys are opened serially."
echo
echo "| protocol | 1 key (ms) | 100 keys (ms) | 100 keys / 1 key | unwrap, 100 keys (ms) | objects, 100 keys (ms) |"
echo "|---|---|---|---|---|---|"
echo "| v2 | $(med v2-1) | $(med v2-100) | $(med ratio-v2) | $(phase v2-100 unwrap) | $(phase v2-100 objects) |"
echo "| v2, 1 thread | - | $(med v2-100-1t) | - | $(phase v2-100-1t unwrap) | $(phase v2-100-1t objects) |"
echo "| v1 | $(med v1-1) | $(med v1-100) | $(med ratio-v1) | $(phase v1-100 unwrap) | $(phase v1-100 objects) |"
echo
echo "100 keys, 1 thread / parallel: $(med ratio-par). (\"unwrap\" and \"objects\" sum the threads' time.)"
echo
met=$(awk -v q="$(med ratio-v2)" 'BEGIN { print (q <= 10) ? "yes" : "no" }')
csv_row login "v2 C_Login 100 keys / 1 key" attestkey "$(med v2-100)" "1 key" "$(med v2-1)" ms "$(med ratio-v2)" "<=10" "$met"
csv_row login "v1 C_Login 100 keys / 1 key" attestkey "$(med v1-100)" "1 key" "$(med v1-1)" ms "$(med ratio-v1)" "" ""
csv_row login "v2 C_Login 100 keys, 1 thread / parallel" attestkey "$(med v2-100-1t)" parallel "$(med v2-100)" ms "$(med ratio-par)" "" ""
