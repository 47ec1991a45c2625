#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 8, item 7: a private key lives only in locked, never-dumped memory.
# As an attacker with a core dump would: after login and signatures with the
# RSA, EC (P-256) and Ed25519 keys, take gcores and real kernel cores of
#   a. nginx with libp11's engine and 4 workers (master and every worker),
#   b. a plain PKCS#11 client (p11probe hold),
#   c. the broker after it served the releases,
# and search each for every secret part of the three keys, in both byte
# orders, in every 16-byte window, and for their PKCS#8 DER and PEM text
# (tests/integration/corescan). Expect zero hits.
#
# Every TAP line here is a scan: a failure to set up is a "Bail out!", so
# that the script can stand in XFAIL_TESTS until the fix lands.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
need nginx curl openssl gcore
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"
SCAN="$top_builddir/tests/integration/corescan"
[ -x "$SCAN" ] || bail "$SCAN not built"

setup_world
start_broker
KEYS="$T/keys/web/tls.key $T/keys/web/ec.key"
mkdir -p "$T/cores"
ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -Hc)"

# scan CORE...: search each core, then delete it (cores are big); the
# findings go to $T/scan.out, and SCAN_HITS counts the cores with hits
scan() {
	local c rc
	for c in "$@"; do
		"$SCAN" $KEYS -- "$c" >>"$T/scan.out" 2>&1
		rc=$?
		[ "$rc" -le 1 ] || { diag_stream <"$T/scan.out"; bail "corescan failed on $c"; }
		SCAN_HITS=$((SCAN_HITS + rc))
		rm -f "$c"
	done
}
# report DESCRIPTION: one TAP line for the cores scanned since the last
# report, the findings as comments (offsets and parts, never bytes)
report() {
	if [ "$SCAN_HITS" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi
	# a line per core (hits per key), then where the copies are
	sed "s|$T/keys/web/||g; s|$T/||g" "$T/scan.out" >"$T/scan.short"
	grep -E ': [0-9]+ hits? \(' "$T/scan.short" | diag_stream
	grep -E '^  ' "$T/scan.short" | head -n 60 | diag_stream
	: >"$T/scan.out"
	SCAN_HITS=0
}
SCAN_HITS=0
: >"$T/scan.out"
# gcore_of NAME PID: a gcore of PID as $T/cores/NAME.PID
gcore_of() {
	timeout 120 gcore -o "$T/cores/$1" "$2" >"$T/gcore.log" 2>&1 && [ -s "$T/cores/$1.$2" ] ||
		{ diag_stream <"$T/gcore.log"; bail "gcore of $1 ($2) failed"; }
	scan "$T/cores/$1.$2"
}
# kernel_core DIR PID: the core the kernel wrote for PID in DIR (core_pattern
# "core", with or without core_uses_pid), or nothing
kernel_core() {
	local f
	for f in "$1/core.$2" "$1/core"; do [ -s "$f" ] && { echo "$f"; return; }; done
}
case $(cat /proc/sys/kernel/core_pattern 2>/dev/null) in
core | core.*) KERNEL_CORES=yes ;;
*) KERNEL_CORES="" ; diag "core_pattern is '$(cat /proc/sys/kernel/core_pattern)': no kernel cores in the test directory" ;;
esac

# --- a. nginx, libp11's engine, 4 workers: RSA and ECDSA handshakes ---------
NGINX_WORKERS=4
mkdir -p "$T/nginx/cores"
# as root the workers would setuid to nobody, who cannot write into $T
NGINX_MAIN_EXTRA="worker_rlimit_core 1g; working_directory $T/nginx/cores;"
[ "$(id -u)" -ne 0 ] || NGINX_MAIN_EXTRA="user root; $NGINX_MAIN_EXTRA"
NGINX_SERVER_EXTRA="ssl_certificate $T/keys/web/ec.crt; ssl_certificate_key \"engine:pkcs11:pkcs11:token=web;object=ec;type=private;pin-value=1234\";"
start_nginx || { diag_stream <"$T/nginx/start.log"; diag_stream <"$T/nginx/logs/error.log"; bail "nginx did not start"; }
# reuseport spreads the connections over the workers; TLS 1.2 with an ECDHE
# suite makes the worker sign the handshake with the RSA, then the EC key
for i in $(seq 40); do
	for suite in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES128-GCM-SHA256; do
		curl -s -o /dev/null --tls-max 1.2 --ciphers "$suite" --cacert "$T/pki/web-ca.pem" \
			"https://localhost:$NGINX_PORT/" || bail "a TLS 1.2 $suite handshake with nginx failed"
	done
done
curl -s -o /dev/null --cacert "$T/pki/web-ca.pem" "https://localhost:$NGINX_PORT/" || bail "a TLS 1.3 handshake with nginx failed"
WORKERS=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')
diag "nginx master $NGINX_PID, workers $WORKERS; $(awk '{ print $1 }' "$T/nginx/logs/access.log" | sort -u | wc -l) workers served the 81 handshakes; the broker released $(releases) time(s)"
[ "$(echo $WORKERS | wc -w)" -eq 4 ] || bail "nginx runs $(echo $WORKERS | wc -w) workers, not 4"
gcore_of nginx-master "$NGINX_PID"
for w in $WORKERS; do gcore_of nginx-worker "$w"; done
report "nginx with the engine: gcore of the master and 4 workers holds no key part"

if [ -z "$KERNEL_CORES" ]; then
	skip "nginx with the engine: a worker's kernel core holds no key part" "core_pattern does not write into the working directory"
else
	w=${WORKERS%% *}
	kill -SEGV "$w"
	for _ in $(seq 300); do
		grep -q "$w exited on signal 11" "$T/nginx/logs/error.log" && break
		sleep 0.1
	done
	core=$(kernel_core "$T/nginx/cores" "$w")
	if [ -n "$core" ]; then
		scan "$core"
		report "nginx with the engine: a worker's kernel core (SIGSEGV) holds no key part"
	else
		skip "nginx with the engine: a worker's kernel core holds no key part" \
			"the kernel wrote no core ($(grep "$w exited" "$T/nginx/logs/error.log" | sed 's/.*exited/exited/'))"
	fi
fi
stop_nginx

# --- b. a plain PKCS#11 client ---------------------------------------------
# The Ed25519 key joins the token only now: libp11 0.4.12 cannot enumerate a
# token holding a CKK_EC_EDWARDS key (SoftHSM's neither), and nginx would not
# start.
add_ed25519_key
KEYS="$KEYS $T/keys/web/ed.key"
# start_probe: p11probe logs in and signs with every key, in $T/cores/probe
start_probe() {
	mkdir -p "$T/cores/probe"
	coproc PROBE { cd "$T/cores/probe" && exec "$AK_PROBE" "$AK_MODULE" hold 1234 2>&1; }
	AK_PIDS="$AK_PIDS $PROBE_PID"
	PROBE_IN=${PROBE[1]}
	: >"$T/probe.out"
	PROBE_PROC=""
	while read -r -t 30 -u "${PROBE[0]}" line; do
		echo "$line" >>"$T/probe.out"
		case $line in ready*) PROBE_PROC=${line#ready }; break ;; esac
	done
	[ -n "$PROBE_PROC" ] || { diag_stream <"$T/probe.out"; bail "p11probe hold did not get ready"; }
	[ "$(grep -c '^sign.*: CKR_OK$' "$T/probe.out")" -eq 3 ] && ! grep '^sign' "$T/probe.out" | grep -vq ': CKR_OK$' ||
		{ diag_stream <"$T/probe.out"; bail "p11probe did not log in and sign with every key"; }
}
start_probe
diag "p11probe: $(grep '^sign' "$T/probe.out" | tr '\n' ';')"
gcore_of probe "$PROBE_PROC"
report "PKCS#11 client after login and RSA, ECDSA and EdDSA signatures: gcore holds no key part"
pid=$PROBE_PROC
if [ -z "$KERNEL_CORES" ]; then
	echo quit >&"$PROBE_IN"
	wait "$PROBE_PID" 2>/dev/null
	skip "PKCS#11 client: its kernel core holds no key part" "core_pattern does not write into the working directory"
else
	echo segv >&"$PROBE_IN"
	wait "$PROBE_PID" 2>/dev/null
	core=$(kernel_core "$T/cores/probe" "$pid")
	if [ -n "$core" ]; then
		scan "$core"
		report "PKCS#11 client: its kernel core (SIGSEGV) holds no key part"
	else
		skip "PKCS#11 client: its kernel core holds no key part" "the kernel wrote no core (ulimit -c $(ulimit -c))"
	fi
fi

# --- c. the broker, after serving the releases -----------------------------
diag "the broker served $(releases) release(s)"
gcore_of broker "$BROKER_PID"
report "the broker after $(releases) releases: gcore holds no key part"
finish_lines_only
