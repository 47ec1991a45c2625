#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 8 items 19 and 12, the module's side: its own TLS never re-enters
# the host's OpenSSL providers, engines or openssl.cnf, and it speaks TLS 1.2
# or later only.
#
# A host that loads pkcs11-provider first ("-provider pkcs11 -provider
# default") hung when the module's libcurl (OpenSSL flavour) asked OpenSSL
# for an X25519 key during its handshake. Debian 12 has no pkcs11-provider,
# so tests/integration/hostile-provider.so plays it: loaded first through
# OPENSSL_CONF, it takes X25519 and X448 (HOSTILE_ALGS=all: EC, RSA and
# Ed25519 too), writes every call it gets to $HOSTILE_LOG and fails it.
. "$(dirname "$0")/lib.sh"
need openssl curl jose

HOSTILE_SO="$top_builddir/tests/integration/.libs/hostile-provider.so"
[ -f "$HOSTILE_SO" ] || bail "$HOSTILE_SO not built (make check builds it)"
setup_world
start_broker
cat >"$T/hostile.cnf" <<EOC
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
hostile = hostile_sect
default = default_sect
[hostile_sect]
module = $HOSTILE_SO
activate = 1
[default_sect]
activate = 1
EOC
LOG="$T/hostile.log"
H="env OPENSSL_CONF=$T/hostile.cnf HOSTILE_LOG=$LOG"

check "the module's libcurl is the GnuTLS one, and the OpenSSL one is not linked" bash -c "
	ldd '$AK_MODULE' | grep -q 'libcurl-gnutls.so.4' && ! ldd '$AK_MODULE' | grep -q 'libcurl.so'"

# Controls: the hostile provider is first, and an OpenSSL TLS client (what
# the module used to be) runs into it.
refuse "control: openssl genpkey -algorithm X25519 is served by the hostile provider" \
	$H openssl genpkey -algorithm X25519
check "  which recorded the call" grep -q "keymgmt_gen_init X25519" "$LOG"
rm -f "$LOG"
refuse "control: curl on OpenSSL cannot complete a handshake with the broker" \
	$H curl -s --cacert "$T/pki/broker-ca.pem" "$BROKER_URL/v1/public/web"
check "  because its X25519 key share went to the hostile provider" grep -q "X25519" "$LOG"
rm -f "$LOG"

# The module, in a host whose OpenSSL loads the hostile provider first.
$H $AK_RUN "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/probe.txt" 2>&1
check "C_Login and C_Sign with the hostile provider first in openssl.cnf" \
	grep -q "^sign: CKR_OK" "$T/probe.txt"
check "  the hostile provider was never called (the module's TLS is GnuTLS)" test ! -s "$LOG"
rm -f "$T/cache/web.json" "$LOG"
check "the background refresh of the public view (its own TLS) with the hostile provider first" \
	$H $AK_RUN "$AK_PROBE" "$AK_MODULE" wait-public 10
check "  the hostile provider was never called" test ! -s "$LOG"
rm -f "$LOG"

# Controls for HOSTILE_ALGS=all: libjose's AES-256-GCM and OpenSSL's SHA-256
# in the default context are served by the hostile provider.
jose jwk gen -i '{"alg":"A256GCM"}' -o "$T/cek.jwk"
echo data >"$T/msg"
refuse "control: libjose's A256GCM (jose jwe enc) is served by the hostile provider" \
	env HOSTILE_ALGS=all $H jose jwe enc -I "$T/msg" -k "$T/cek.jwk" -o "$T/msg.jwe"
check "  which recorded the call" grep -q "cipher_newctx AES-256-GCM" "$LOG"
rm -f "$LOG"
refuse "control: openssl dgst -sha256 is served by the hostile provider" \
	env HOSTILE_ALGS=all $H openssl dgst -sha256 "$T/msg"
check "  which recorded the call" grep -q "digest_newctx" "$LOG"
rm -f "$LOG"

# The same with EC, RSA and Ed25519 taken too: the module's key operations
# (ephemeral P-384 key, ECDH, the release's AES-256-GCM, PKCS#8 decoding,
# digests, signing).
HOSTILE_ALGS=all $H $AK_RUN "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/probe-all.txt" 2>&1
if grep -q "^sign: CKR_OK" "$T/probe-all.txt" && [ ! -s "$LOG" ]; then
	ok "the module's key operations never reach the host's providers either"
else
	not_ok "the module's key operations never reach the host's providers either"
	[ -s "$LOG" ] && diag "hostile provider calls: $(cut -d' ' -f2- "$LOG" | sort | uniq -c | tr '\n' ';')"
fi
rm -f "$LOG"
stop_broker

# --- TLS versions: openssl s_server in the broker's place -------------------
# tls_server OPTION...: s_server with the broker's certificate on a free port
# (its standard input is a FIFO held open here: at EOF it would quit)
SRV_PID=""
mkfifo "$T/s_server.in"
exec 3<>"$T/s_server.in"
tls_server() {
	local port
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 30000))
		openssl s_server -accept "127.0.0.1:$port" -cert "$T/pki/broker.crt" -key "$T/pki/broker.key" \
			"$@" <&3 >"$T/s_server.log" 2>&1 &
		SRV_PID=$!
		sleep 0.5
		kill -0 "$SRV_PID" 2>/dev/null && break
	done
	AK_PIDS="$AK_PIDS $SRV_PID"
	sed -i "s|^brokers = .*|brokers = https://127.0.0.1:$port|" "$T/attestkey.conf"
}
for v in tls1 tls1_1; do
	tls_server -$v -cipher 'DEFAULT:@SECLEVEL=0' -www -quiet
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$v.txt" 2>&1
	check "a broker that speaks only ${v/_/.} is refused in the handshake" bash -c "
		grep -q 'login: CKR_DEVICE_ERROR' '$T/$v.txt' &&
		grep -q 'no key broker could be reached:.*\\(handshake\\|TLS\\|version\\)' '$T/$v.txt'"
	kill "$SRV_PID"
	wait "$SRV_PID" 2>/dev/null
done
# s_server answers nothing to a POST: the handshake is what counts here
sed -i 's/^timeout = .*/timeout = 2/' "$T/attestkey.conf"
tls_server -tls1_2
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/tls1_2.txt" 2>&1
check "with a TLS 1.2 server the handshake completes" bash -c "
	grep -q '^CIPHER is' '$T/s_server.log' && grep -q 'timed out' '$T/tls1_2.txt'"
diag "TLS 1.2 suite chosen by s_server from the module's offer: $(grep -m1 '^CIPHER is' "$T/s_server.log")"
kill "$SRV_PID"
wait "$SRV_PID" 2>/dev/null
finish
