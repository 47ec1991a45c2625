# SPDX-License-Identifier: Apache-2.0
# Shared by the integration tests: a TAP emitter, a private temp dir, a test
# PKI, a simulated SNP chip, a key store, a broker on a free loopback port,
# and a module config pointing at it. Every test sources this file.
set -u

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
AK_TOOL="$top_builddir/attestkey"
AK_BROKER="$top_builddir/attestkey-broker"
AK_MODULE="$top_builddir/.libs/attestkey-pkcs11.so"
AK_PROBE="$top_builddir/tests/integration/p11probe"
ENGINE_SO=$(pkg-config --variable=enginesdir libcrypto 2>/dev/null)/pkcs11.so

tap_n=0
tap_failed=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1 # SKIP $2"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
bail() { echo "Bail out! $*"; exit 1; }
# check "description" command...: ok when the command succeeds
check() { local d=$1; shift; if "$@" >>"$T/check.log" 2>&1; then ok "$d"; else not_ok "$d"; diag "command: $*"; tail -n 20 "$T/check.log" | diag_stream; fi; }
# refuse "description" command...: ok when the command fails
refuse() { local d=$1; shift; if "$@" >>"$T/check.log" 2>&1; then not_ok "$d"; diag "command unexpectedly succeeded: $*"; else ok "$d"; fi; }
diag_stream() { sed 's/^/# /'; }
# a release's or refusal's id, as the module and the broker write it
ID_RE='[0-9a-f]{32}'
# refusal_audit FILE FILTER [AUDIT]: true when the audit line (of
# $T/audit.jsonl or AUDIT) of the refusal whose id the module named in FILE
# ("refusal id <hex>") is there, once, and passes the jq FILTER; false when
# FILE names no id. Not "the last line": after a failed login the module's
# background public-object refresh may write a line of its own, before or
# after the refusal's.
refusal_audit() {
	local id
	id=$(grep -Eo "refusal id $ID_RE" "$1" | tail -n 1 | awk '{print $3}')
	[ -n "$id" ] || return 1
	grep -F "\"id\":\"$id\"" "${3:-$T/audit.jsonl}" | jq -se "length == 1 and (.[0] | $2)"
}

# post PATH BODY: POST BODY to the broker with $CURL; prints "STATUS reason"
# (the body's "error", or "-") and leaves the body in $T/resp.json.
post() {
	$CURL -o "$T/resp.json" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$2" "$BROKER_URL$1" >"$T/status"
	printf '%s %s\n' "$(cat "$T/status")" "$(jq -r '.error // "-"' "$T/resp.json" 2>/dev/null)"
}
# expect DESCRIPTION "STATUS reason" PATH BODY: one TAP line for post's answer.
expect() {
	local got
	got=$(post "$3" "$4")
	if [ "$got" = "$2" ]; then ok "$1"; else not_ok "$1"; diag "expected '$2', got '$got'"; diag_stream <"$T/resp.json"; fi
}
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip_all "$c is not installed"; done; }
finish() { valgrind_verdict; tsan_verdict; echo "1..$tap_n"; exit $((tap_failed > 0)); }
# finish_lines_only: the plan, and exit 0: for a script in XFAIL_TESTS, whose
# TAP lines carry the verdict (tap-driver adds an ERROR for a failing exit
# status even there); such a script bails out on a failed set-up
finish_lines_only() { echo "1..$tap_n"; exit 0; }

T=$(mktemp -d "${TMPDIR:-/tmp}/attestkey-test.XXXXXX")
AK_PIDS=""
cleanup() {
	for p in $AK_PIDS; do kill "$p" 2>/dev/null; done
	for p in $AK_PIDS; do wait "$p" 2>/dev/null; done
	[ -n "${AK_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# In the sanitizer build the module carries ASan: programs that are not ours
# and load it (pkcs11-tool, openssl with the engine, nginx, p11-kit) must load
# ASan's runtime first. Only those: curl, for one, deadlocks with it preloaded.
AK_RUN=""
if ldd "$AK_MODULE" 2>/dev/null | grep -q libasan; then
	AK_RUN="env LD_PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
fi
[ -x "$AK_TOOL" ] || bail "$AK_TOOL not built"
[ -x "$AK_BROKER" ] || bail "$AK_BROKER not built"
[ -f "$AK_MODULE" ] || bail "$AK_MODULE not built"

# make memcheck (docs/security.md "valgrind (make memcheck)"): AK_VALGRIND is
# valgrind's command line. ak_valgrind NAME PROGRAM prints a program that
# runs PROGRAM under it, one log per process in $T/valgrind (PROGRAM itself
# when AK_VALGRIND is unset); the broker and the probe (the module) run so,
# waits last AK_SLOW times longer, and finish fails on a log with an error
# or a definite or indirect leak.
AK_SLOW=1
ak_valgrind() {
	[ -n "${AK_VALGRIND:-}" ] || { echo "$2"; return; }
	mkdir -p "$T/valgrind"
	printf '#!/bin/sh\nexec %s --log-file=%s/%s.%%p.log %s "$@"\n' \
		"$AK_VALGRIND" "$T/valgrind" "$1" "$2" >"$T/valgrind-$1"
	chmod +x "$T/valgrind-$1"
	echo "$T/valgrind-$1"
}
if [ -n "${AK_VALGRIND:-}" ]; then
	AK_SLOW=6
	AK_BROKER=$(ak_valgrind broker "$AK_BROKER")
	AK_PROBE=$(ak_valgrind p11probe "$AK_PROBE")
fi
# valgrind_verdict: stop what the test started (the broker writes its leak
# report on SIGTERM), then one TAP line over the valgrind logs
valgrind_verdict() {
	local f bad=0 n=0
	[ -n "${AK_VALGRIND:-}" ] || return 0
	for p in $AK_PIDS; do kill "$p" 2>/dev/null; done
	for p in $AK_PIDS; do wait "$p" 2>/dev/null; done
	AK_PIDS=""
	for f in "$T"/valgrind/*.log; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		grep -q 'ERROR SUMMARY: 0 errors' "$f" && continue
		bad=$((bad + 1))
		diag "valgrind: $(basename "$f"):"
		grep -q 'ERROR SUMMARY' "$f" || diag "(no summary: the process did not exit)"
		head -n 200 "$f" | diag_stream
		grep -E 'lost:|ERROR SUMMARY' "$f" | diag_stream
	done
	if [ "$bad" = 0 ] && [ "$n" -gt 0 ]; then
		ok "valgrind: no error and no definite or indirect leak in $n process(es)"
	else
		not_ok "valgrind: $bad of $n process(es) with an error or a leak (or no report)"
	fi
}

# make check-tsan (docs/security.md "ThreadSanitizer"): AK_TSAN_BROKER is a
# broker built with -fsanitize=thread (tests/unit/broker.mk). It becomes
# AK_BROKER, waits last AK_SLOW times longer, every TSan report goes to a
# file in $T/tsan (the broker goes on after one) and finish fails when there
# is one.
if [ -n "${AK_TSAN_BROKER:-}" ]; then
	[ -x "$AK_TSAN_BROKER" ] || bail "$AK_TSAN_BROKER not built"
	AK_SLOW=4
	AK_BROKER=$AK_TSAN_BROKER
	mkdir -p "$T/tsan"
	export TSAN_OPTIONS="halt_on_error=0 log_path=$T/tsan/report suppressions=$top_srcdir/tests/unit/tsan.supp"
fi
# tsan_verdict: stop what the test started (some reports come at exit), then
# one TAP line: not ok when a report exists, its head as diagnostics
tsan_verdict() {
	local f n=0
	[ -n "${AK_TSAN_BROKER:-}" ] || return 0
	for p in $AK_PIDS; do kill "$p" 2>/dev/null; done
	for p in $AK_PIDS; do wait "$p" 2>/dev/null; done
	AK_PIDS=""
	for f in "$T"/tsan/report*; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		diag "ThreadSanitizer: $(basename "$f"):"
		head -n 60 "$f" | diag_stream
	done
	if [ "$n" = 0 ]; then
		ok "ThreadSanitizer: no report from the broker"
	else
		not_ok "ThreadSanitizer: $n broker process(es) reported (first: $(grep -m1 -h 'WARNING: ThreadSanitizer' "$T"/tsan/report* | head -n 1))"
	fi
}

# The guest's launch measurement and one it does not have.
MEASUREMENT=$(printf 'a%.0s' $(seq 96))
OTHER_MEASUREMENT=$(printf 'b%.0s' $(seq 96))
# The same for the simulated TD (setup_world_tdx): its MRTD and another.
TDX_MRTD=$(printf 'c%.0s' $(seq 96))
OTHER_MRTD=$(printf 'd%.0s' $(seq 96))

# make_ca DIR NAME: a CA key+cert in DIR/NAME.{key,pem}
make_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$2" -keyout "$1/$2.key" -out "$1/$2.pem" >/dev/null 2>&1
}
# make_leaf DIR NAME CA KEYSPEC: key+cert signed by CA, SAN localhost/127.0.0.1
make_leaf() {
	local d=$1 n=$2 ca=$3 spec=$4
	openssl req -new -newkey "$spec" -nodes -subj "/CN=localhost" \
		-keyout "$d/$n.key" -out "$d/$n.csr" >/dev/null 2>&1 &&
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/$n.ext" &&
	openssl x509 -req -in "$d/$n.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" -CAcreateserial \
		-days 2 -extfile "$d/$n.ext" -out "$d/$n.crt" >/dev/null 2>&1
}

# setup_world: PKI, sim chip, key store (token "web": RSA key "tls" with a
# certificate, EC key "ec" with a certificate), configs. Idempotent per $T.
setup_world() {
	mkdir -p "$T/pki" "$T/keys/web" "$T/sim"
	make_ca "$T/pki" broker-ca || bail "cannot make the broker CA"
	openssl ecparam -name prime256v1 -out "$T/pki/p256.param" || bail "openssl ecparam failed"
	make_leaf "$T/pki" broker broker-ca "ec:$T/pki/p256.param" || bail "cannot make the broker certificate"
	make_ca "$T/pki" web-ca || bail "cannot make the web CA"
	make_leaf "$T/pki" tls web-ca rsa:2048 || bail "cannot make the RSA web key"
	make_leaf "$T/pki" ec web-ca "ec:$T/pki/p256.param" || bail "cannot make the EC web key"
	# the key store holds PKCS#8 keys and their certificates
	openssl pkcs8 -topk8 -nocrypt -in "$T/pki/tls.key" -out "$T/keys/web/tls.key"
	openssl pkcs8 -topk8 -nocrypt -in "$T/pki/ec.key" -out "$T/keys/web/ec.key"
	cp "$T/pki/tls.crt" "$T/keys/web/tls.crt"
	cp "$T/pki/ec.crt" "$T/keys/web/ec.crt"
	# the broker refuses private keys others may read (its TLS key too)
	chmod 600 "$T/keys/web/"*.key "$T/pki/"*.key
	"$AK_TOOL" sim init "$T/sim" >/dev/null || bail "attestkey sim init failed"
	head -c 32 /dev/urandom >"$T/secret"
	chmod 600 "$T/secret"
	write_broker_conf
	write_module_conf
}

# setup_world_tdx [SIM INIT OPTIONS...]: setup_world, plus a simulated TDX
# platform in $T/tdxsim (attestkey sim init --tee tdx OPTIONS); the broker
# trusts its root and reads its collateral ([tdx]), token web allows
# TDX_MRTD, and the module's sim plays that TD (MODULE_SIM_TEE=tdx).
setup_world_tdx() {
	setup_world
	"$AK_TOOL" sim init --tee tdx "$T/tdxsim" "$@" >/dev/null || bail "attestkey sim init --tee tdx failed"
	BROKER_TDX_ROOTS="$T/tdxsim/root_ca.pem"
	MODULE_SIM_TEE=tdx
	write_broker_conf
	write_module_conf
}

# add_ed25519_key: an Ed25519 key "ed" with a certificate in token web
add_ed25519_key() {
	make_leaf "$T/pki" ed web-ca ed25519 || bail "cannot make the Ed25519 web key"
	openssl pkcs8 -topk8 -nocrypt -in "$T/pki/ed.key" -out "$T/keys/web/ed.key"
	cp "$T/pki/ed.crt" "$T/keys/web/ed.crt"
	chmod 600 "$T/keys/web/ed.key"
}

# gcore_works: gdb's gcore can attach to a process of ours (not so under
# Yama's ptrace_scope >= 1 without privileges)
gcore_works() {
	local pid rc
	sleep 30 &
	pid=$!
	timeout 30 gcore -o "$T/gcore-check" "$pid" >"$T/gcore-check.log" 2>&1 && [ -s "$T/gcore-check.$pid" ]
	rc=$?
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$T/gcore-check.$pid"
	return $rc
}

# write_broker_conf [EXTRA TOKEN LINES...]: token web allows MEASUREMENT
# (and TDX_MRTD when BROKER_TDX_ROOTS names the roots of a [tdx] section)
BROKER_ROOTS=""
BROKER_TTL=60
BROKER_TDX_ROOTS=""
# slow_broker_lines: under valgrind (AK_SLOW), the TLS handshake and the
# request get AK_SLOW times the default time (brokerconf.h)
slow_broker_lines() {
	[ "$AK_SLOW" = 1 ] ||
		printf 'handshake_timeout = %s\nrequest_timeout = %s\n' $((5 * AK_SLOW)) $((10 * AK_SLOW))
}
write_broker_conf() {
	cat >"$T/broker.conf" <<EOC
[broker]
listen = 127.0.0.1:0
port_file = $T/broker.port
cert = $T/pki/broker.crt
key = $T/pki/broker.key
secret_file = $T/secret
nonce_ttl = $BROKER_TTL
audit_log = $T/audit.jsonl
$(slow_broker_lines)

[keystore]
type = file
dir = $T/keys

[snp]
roots = ${BROKER_ROOTS:-$T/sim/ark.pem}

EOC
	[ -z "$BROKER_TDX_ROOTS" ] ||
		printf '[tdx]\nroots = %s\ncollateral = %s\npcs_url = none\n\n' \
			"$BROKER_TDX_ROOTS" "$T/tdxsim/collateral" >>"$T/broker.conf"
	printf '[token web]\nmeasurements = %s\n' "$MEASUREMENT" >>"$T/broker.conf"
	[ -z "$BROKER_TDX_ROOTS" ] || echo "mrtd = $TDX_MRTD" >>"$T/broker.conf"
	for l in "$@"; do echo "$l" >>"$T/broker.conf"; done
}

# make_keys DIR N: N keys with self-signed certificates in DIR, the odd ones
# RSA-2048, the even ones P-256, as a TLS token would hold them
make_keys() {
	local i spec
	mkdir -p "$1"
	for i in $(seq "$2"); do
		spec="ec -pkeyopt ec_paramgen_curve:P-256"
		[ $((i % 2)) -eq 1 ] && spec="rsa -pkeyopt rsa_keygen_bits:2048"
		# shellcheck disable=SC2086
		openssl req -x509 -newkey $spec -nodes -days 2 -subj "/CN=k$i" \
			-keyout "$1/k$i.key" -out "$1/k$i.crt" >/dev/null 2>&1 || return 1
	done
}

MODULE_CA=""
MODULE_SIM_TEE=snp
# MODULE_TEE: the module's tee (default sim); MODULE_LINES: more [module]
# lines, one per line (az-nginx.sh: tee = azure with its tcti)
MODULE_TEE=sim
MODULE_LINES=""
write_module_conf() {
	local port
	port=$(cat "$T/broker.port" 2>/dev/null || echo 9)
	cat >"$T/attestkey.conf" <<EOC
[module]
brokers = https://127.0.0.1:$port
ca = ${MODULE_CA:-$T/pki/broker-ca.pem}
timeout = $((10 * AK_SLOW))
tee = $MODULE_TEE
cache_dir = $T/cache
$MODULE_LINES

EOC
	if [ "$MODULE_SIM_TEE" = tdx ]; then
		printf '[sim]\ntee = tdx\ndir = %s\nmrtd = %s\n' "$T/tdxsim" "$TDX_MRTD" >>"$T/attestkey.conf"
	else
		printf '[sim]\ndir = %s\nmeasurement = %s\npolicy = 0x30000\n' "$T/sim" "$MEASUREMENT" >>"$T/attestkey.conf"
	fi
	for l in "$@"; do echo "$l" >>"$T/attestkey.conf"; done
	printf '\n[token web]\nlabel = web\n' >>"$T/attestkey.conf"
	export ATTESTKEY_CONF="$T/attestkey.conf"
}

# start_broker: start the daemon, wait until it listens, rewrite the module conf
BROKER_PID=""
start_broker() {
	rm -f "$T/broker.port"
	"$AK_BROKER" -f -c "$T/broker.conf" >>"$T/broker.log" 2>&1 &
	BROKER_PID=$!
	AK_PIDS="$AK_PIDS $BROKER_PID"
	for _ in $(seq $((100 * AK_SLOW))); do
		[ -s "$T/broker.port" ] && break
		kill -0 "$BROKER_PID" 2>/dev/null || { cat "$T/broker.log" | diag_stream; bail "broker exited"; }
		sleep 0.1
	done
	[ -s "$T/broker.port" ] || bail "broker did not start listening"
	BROKER_URL="https://127.0.0.1:$(cat "$T/broker.port")"
	write_module_conf "$@"
}
# reloads / refused: how many SIGHUP reloads the broker logged as done / refused
reloads() { grep -c "configuration reloaded" "$T/broker.log" || true; }
refused() { grep -c "reload refused" "$T/broker.log" || true; }
# hup [WHAT]: SIGHUP the broker, then wait until the log counts one more
# line of WHAT (reloads, the default, or refused): signals sent back to
# back may merge into one. Waiting for a reload, a refused one fails at once.
hup() {
	local what=${1:-reloads} before no
	before=$($what)
	no=$(refused)
	kill -HUP "$BROKER_PID"
	for _ in $(seq 300); do
		[ "$($what)" -gt "$before" ] && return 0
		[ "$what" = reloads ] && [ "$(refused)" -gt "$no" ] && return 1
		kill -0 "$BROKER_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
stop_broker() {
	[ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
	BROKER_PID=""
}
restart_broker() { stop_broker; start_broker "$@"; }

# SoftHSMv2, the reference token of the differential tests and the benchmarks
SOFTHSM_SO=/usr/lib/softhsm/libsofthsm2.so
# softhsm_token: a private SoftHSM store in $T with one empty token "ref"
# (user PIN 1234); exports SOFTHSM2_CONF
softhsm_token() {
	mkdir -p "$T/softhsm/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$T/softhsm/tokens" >"$T/softhsm/softhsm2.conf"
	export SOFTHSM2_CONF="$T/softhsm/softhsm2.conf"
	softhsm2-util --init-token --free --label ref --pin 1234 --so-pin 4321 >/dev/null
}

# registry_setup, then registry COMMAND: run a shell command with our
# .module registered in p11-kit (the system directory, in a private mount
# namespace when root; ~/.config/pkcs11/modules of a private HOME if not)
registry_setup() {
	MODDIR=$(pkg-config --variable=p11_module_configs p11-kit-1)
	mkdir -p "$T/mods"
	cp "$MODDIR"/*.module "$T/mods/" 2>/dev/null
	sed "s|^module:.*|module: $AK_MODULE|" "$top_srcdir/conf/attestkey.module.in" >"$T/mods/attestkey.module"
}
registry() {
	if [ "$(id -u)" = 0 ]; then
		unshare -m sh -c "mount --bind '$T/mods' '$MODDIR' && $*"
	else
		mkdir -p "$T/home/.config/pkcs11" && ln -sfn "$T/mods" "$T/home/.config/pkcs11/modules"
		HOME="$T/home" sh -c "$*"
	fi
}

# releases: how many keys releases the audit log records
releases() { grep -c '"event": *"release"' "$T/audit.jsonl" 2>/dev/null || true; }

# start_swtpm [NAME]: a TPM 2.0 (swtpm) for this test on a free loopback
# port pair (P for TPM commands, P+1 for its control channel), its state in
# $T/NAME (default swtpm), already started (startup-clear), killed on exit.
# Sets SWTPM_TCTI ("swtpm:host=127.0.0.1,port=P", tpm2-tss's TCTI string),
# SWTPM_PORT and SWTPM_PID. Skips the test when swtpm is not installed.
start_swtpm() {
	local name=${1:-swtpm} try port
	need swtpm swtpm_ioctl
	mkdir -p "$T/$name"
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 30000))
		swtpm socket --tpm2 --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
			--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
			--tpmstate "dir=$T/$name" --flags not-need-init,startup-clear \
			--log "file=$T/$name/swtpm.log" >"$T/$name/start.log" 2>&1 &
		SWTPM_PID=$!
		for _ in $(seq $((50 * AK_SLOW))); do
			kill -0 "$SWTPM_PID" 2>/dev/null || break
			swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -g >/dev/null 2>&1 && break
			sleep 0.1
		done
		if kill -0 "$SWTPM_PID" 2>/dev/null &&
			swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -g >/dev/null 2>&1; then
			AK_PIDS="$AK_PIDS $SWTPM_PID"
			SWTPM_PORT=$port
			SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
			return 0
		fi
		kill "$SWTPM_PID" 2>/dev/null
		wait "$SWTPM_PID" 2>/dev/null
	done
	bail "swtpm did not start listening (see $T/$name/start.log)"
}

# stop_swtpm: stop it now (a test of "no TPM at the TCTI")
stop_swtpm() {
	[ -n "${SWTPM_PID:-}" ] || return 0
	kill "$SWTPM_PID" 2>/dev/null
	wait "$SWTPM_PID" 2>/dev/null
	SWTPM_PID=""
}
