#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, item 1 of issue 4: set up the broker, the key store and a
# SoftHSM token holding the same keys, then run the paired signing benchmark
# (tests/bench/p11bench). BENCH_QUICK=1 for a short smoke run.
. "$(dirname "$0")/bench-lib.sh"
ROUNDS=${BENCH_ROUNDS:-7}
SLICE_MS=${BENCH_SLICE_MS:-1000}
[ -n "${BENCH_QUICK:-}" ] && { ROUNDS=3; SLICE_MS=200; }

setup_world
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$T/keys/web/rsa3072.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/keys/web/p384.key"
openssl genpkey -algorithm ed25519 -out "$T/keys/web/ed.key"
start_broker
softhsm_token || bail "softhsm2-util cannot create a token"
# softhsm2-util imports PKCS#8 RSA, EC and Ed25519 keys (pkcs11-tool from
# OpenSC 0.23 cannot write an Ed25519 private key)
id=0
for k in "$T"/keys/web/*.key; do
	l=$(basename "$k" .key)
	id=$((id + 1))
	softhsm2-util --import "$k" --token ref --label "$l" --id "$(printf '%04x' "$id")" \
		--pin 1234 >/dev/null 2>&1 || echo "bench: SoftHSM did not import $l" >&2
done
echo "## Signing throughput through PKCS#11 ($(bench_machine))"
echo
echo "$ROUNDS rounds of ${SLICE_MS} ms per signer and thread count, rotated; medians, and medians of the per-round ratios."
echo
"$top_builddir/tests/bench/p11bench" "$AK_MODULE" "$SOFTHSM_SO" ref 1234 "$T/keys/web" "$ROUNDS" "$SLICE_MS" \
	"$BENCH_CSV" || bail "p11bench failed"
echo
