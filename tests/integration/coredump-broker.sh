#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 8, items 3 and 7, the broker's side: after it loaded the token's RSA,
# EC (P-256) and Ed25519 keys and served two releases, a gcore of the broker
# holds no secret part of any key (tests/integration/corescan: both byte
# orders, every 16-byte window, the PKCS#8 DER and the PEM text).
#
# Every TAP line here is a scan: a failure to set up is a "Bail out!", so
# that the script can stand in XFAIL_TESTS until the fix lands.
. "$(dirname "$0")/lib.sh"
need openssl gcore
. "$(dirname "$0")/coredump-lib.sh"

setup_world
add_ed25519_key
start_broker
KEYS="$T/keys/web/tls.key $T/keys/web/ec.key $T/keys/web/ed.key"
for i in 1 2; do
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/probe.out" 2>&1 ||
		{ diag_stream <"$T/probe.out"; bail "p11probe login failed"; }
done
grep -q 'private_keys: 3' "$T/probe.out" || { diag_stream <"$T/probe.out"; bail "the token does not hold 3 private keys"; }
[ "$(releases)" -eq 2 ] || bail "the broker recorded $(releases) releases, not 2"
gcore_of broker "$BROKER_PID"
report "the broker after loading 3 keys and 2 releases: gcore holds no key part"
finish_lines_only
