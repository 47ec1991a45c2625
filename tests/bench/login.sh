#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, items 3 and 5 of issue 4: C_Login latency against a local
# broker (sim SNP, file store, HTTPS on loopback) with its phases, and the
# module's resident memory before and after login with 1, 10 and 100 keys.
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
	mkdir -p "$T/keys/m$n"
	for i in $(seq "$n"); do
		spec="ec -pkeyopt ec_paramgen_curve:P-256"
		[ $((i % 2)) -eq 1 ] && spec="rsa -pkeyopt rsa_keygen_bits:2048"
		# shellcheck disable=SC2086
		openssl req -x509 -newkey $spec -nodes -days 2 -subj "/CN=k$i" \
			-keyout "$T/keys/m$n/k$i.key" -out "$T/keys/m$n/k$i.crt" >/dev/null 2>&1 ||
			bail "cannot make key $i of token m$n"
	done
done
write_broker_conf "" "[token m1]" "measurements = $MEASUREMENT" "" "[token m10]" \
	"measurements = $MEASUREMENT" "" "[token m100]" "measurements = $MEASUREMENT"
ATTESTKEY_DEBUG=1 start_broker
# module_conf TOKEN: a module config with only that token, so it is slot 0
module_conf() {
	sed "s/^\[token web\]/[token $1]/; s/^label = web/label = $1/" "$T/attestkey.conf" >"$T/ak-$1.conf"
	echo "$T/ak-$1.conf"
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
