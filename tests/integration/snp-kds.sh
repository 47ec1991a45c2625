#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Certificates from an AMD KDS look-alike (httpfixture on loopback serving
# the real vector certificates under KDS's URLs): fetched once, then from
# the cache; offline mode; rate limiting (429 + Retry-After) within the time
# budget; unreachable and hanging KDS; a VLEK or a masked chip id refused;
# AMD's cert_chain when no ASK is at hand; the ARK-signed CRL (a sim ARK's,
# revoking the sim VCEK) under each crl policy, in the CLI and the broker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/httpfixture-lib.sh"
. "$(dirname "$0")/snp-lib.sh"
need openssl

VI="$SNPV/milan-v2-virtee" GE="$SNPV/genoa-v3-trustee"
hex_at() { od -An -tx1 -j $(($2)) -N "$3" "$1" | tr -d ' \n'; }

# The KDS tree: exact URLs (the fixture runs --strict-query), so a wrong
# product, chip id or TCB parameter is a 404 and the test fails.
K="$T/kds"
mkdir -p "$K/vcek/v1/Milan" "$K/vcek/v1/Genoa"
MILAN_URL="/vcek/v1/Milan/$(hex_at "$VI/report.bin" 0x1a0 64)"
cp "$VI/vcek.der" "$K$MILAN_URL@blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"
GENOA_URL="/vcek/v1/Genoa/$(hex_at "$GE/report.bin" 0x1a0 64)"
cp "$GE/vcek.der" "$K$GENOA_URL@blSPL=10&teeSPL=0&snpSPL=23&ucodeSPL=25"
cat "$AMD/ask-milan.pem" "$AMD/ark-milan.pem" >"$K/vcek/v1/Milan/cert_chain"

V=(--kds-timeout 5)
start_httpfixture kds "$K" --strict-query
verdict fetch accept ok "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/cache" "$VI/report.bin"
json fetch "the VCEK came from KDS" '.chain.source == "kds" and .product == "Milan"'
check "fetch: one request, for the Milan VCEK at the report's TCB" \
	test "$(fixture_fetches "^GET $MILAN_URL?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115 200$")" = 1
check "fetch: the cache holds it, one file" test "$(ls "$T/cache" | wc -l)" = 1
check "fetch: the cache directory is private" test "$(stat -c %a "$T/cache")" = 700
verdict cached accept ok "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/cache" "$VI/report.bin"
json cached "the second time from the cache" '.chain.source == "cache"'
check "cached: still one request in the fixture's log" test "$(wc -l <"$FIXTURE_LOG")" = 1
verdict offline accept ok "${V[@]}" --offline --cache "$T/cache" "$VI/report.bin"
json offline "offline: from the cache" '.chain.source == "cache"'
verdict offline-empty refuse collateral_unavailable "${V[@]}" --offline --cache "$T/empty" "$VI/report.bin"
json offline-empty "offline with an empty cache: the message says so" '.message | test("offline")'
check "offline: nothing was fetched" test "$(wc -l <"$FIXTURE_LOG")" = 1
verdict genoa-fetch accept ok "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/cache" "$GE/report.bin"
check "genoa: Genoa's URL from CPUID, one request" test "$(fixture_fetches "^GET $GENOA_URL?blSPL=10&teeSPL=0&snpSPL=23&ucodeSPL=25 200$")" = 1
# no ASK configured: AMD's cert_chain from KDS (cached too)
verdict cert-chain accept ok "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/cache" --roots "$AMD/ark-milan.pem" \
	--vcek "$VI/vcek.der" "$VI/report.bin"
check "cert-chain: fetched once" test "$(fixture_fetches '^GET /vcek/v1/Milan/cert_chain 200$')" = 1
verdict cert-chain-cached accept ok "${V[@]}" --offline --cache "$T/cache" --roots "$AMD/ark-milan.pem" \
	--vcek "$VI/vcek.der" "$VI/report.bin"
# a VLEK cannot be fetched by chip id; a masked chip id names no chip
cp "$VI/report.bin" "$T/vlek.bin"; patch "$T/vlek.bin" 0x48 04000000
verdict vlek refuse collateral_unavailable "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/c2" "$T/vlek.bin"
json vlek "the message says a VLEK cannot be fetched" '.signer == "VLEK" and (.message | test("VLEK cannot be fetched"))'
cp "$VI/report.bin" "$T/masked.bin"; patch "$T/masked.bin" 0x1a0 "$(printf '00%.0s' $(seq 64))"
verdict masked-chip-id refuse collateral_unavailable "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/c2" "$T/masked.bin"
json masked-chip-id "the message names the masked CHIP_ID" '.message | test("CHIP_ID is masked")'
n=$(wc -l <"$FIXTURE_LOG")
# an unknown chip: 404 for Milan, then Genoa (a version 2 report names no product)
cp "$VI/report.bin" "$T/other-chip.bin"; flip "$T/other-chip.bin" 0x1a0
verdict unknown-chip refuse collateral_unavailable "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/c2" "$T/other-chip.bin"
json unknown-chip "both products tried, HTTP 404 named" '.message | test("as Milan.*404.*as Genoa.*404")'
check "unknown-chip: two requests" test "$(($(wc -l <"$FIXTURE_LOG") - n))" = 2
stop_httpfixture

# rate limiting: 429 with Retry-After 1, then the certificate
start_httpfixture ratelimit "$K" --strict-query --fail-count 1 --retry-after 1
verdict after-429 accept ok "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/c3" "$VI/report.bin"
check "after-429: a 429, then one 200" test "$(fixture_fetches ' 429$'),$(fixture_fetches ' 200$')" = "1,1"
stop_httpfixture
# Retry-After beyond the budget: refused at once, no waiting it out
start_httpfixture slow "$K" --strict-query --fail-count -1 --retry-after 3600
verdict retry-after-too-long refuse collateral_unavailable "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/c4" --roots "$AMD/ark-milan.pem" \
	--ask "$AMD/ask-milan.pem" --roots "$AMD/ark-genoa.pem" "$GE/report.bin"
json retry-after-too-long "the message names the rate limit and the budget" '.message | test("rate-limits.*3600 s.*5 s budget")'
check "retry-after-too-long: one request" test "$(wc -l <"$FIXTURE_LOG")" = 1
stop_httpfixture
start_httpfixture down "$K" --fail-count -1 --fail-status 500
verdict kds-500 refuse collateral_unavailable "${V[@]}" --kds "$FIXTURE_URL" --cache "$T/c5" "$GE/report.bin"
json kds-500 "HTTP 500 named" '.message | test("HTTP 500")'
stop_httpfixture
start_httpfixture hang "$K" --fail-count -1 --fail-status hang --hang-seconds 20
verdict kds-hangs refuse collateral_unavailable --kds-timeout 2 --kds "$FIXTURE_URL" --cache "$T/c6" "$GE/report.bin"
json kds-hangs "a hanging KDS is given up within the budget" '.message | test("2 s budget|timed out|Timeout")'
stop_httpfixture
verdict kds-closed refuse collateral_unavailable "${V[@]}" --kds http://127.0.0.1:9 --cache "$T/c7" "$GE/report.bin"
json kds-closed "an unreachable KDS is named" '.message | test("unreachable")'

# ---- CRL: the sim ARK signs one, revoking nothing, then the sim VCEK ------
setup_world # the broker's world, its sim chip in $T/sim
mkdir -p "$T/ca" "$T/crl/vcek/v1/Milan"
: >"$T/ca/index.txt"
echo 01 >"$T/ca/crlnumber"
cat >"$T/ca/ca.cnf" <<EOC
[ca]
default_ca = sim
[sim]
database = $T/ca/index.txt
crlnumber = $T/ca/crlnumber
certificate = $T/sim/ark.pem
private_key = $T/sim/ark.key
default_md = sha384
default_crl_days = 30
EOC
openssl ca -config "$T/ca/ca.cnf" -gencrl -out "$T/ca/clean.pem" >/dev/null 2>&1 || bail "openssl ca -gencrl failed"
openssl ca -config "$T/ca/ca.cnf" -revoke "$T/sim/vcek.pem" >/dev/null 2>&1 || bail "openssl ca -revoke failed"
openssl ca -config "$T/ca/ca.cnf" -gencrl -out "$T/ca/revoked.pem" >/dev/null 2>&1 || bail "openssl ca -gencrl failed"
openssl crl -in "$T/ca/clean.pem" -outform DER -out "$T/ca/clean.der"
openssl crl -in "$T/ca/revoked.pem" -outform DER -out "$T/ca/revoked.der"
"$AK_TOOL" sim init "$T/sim2" >/dev/null
sed "s|$T/sim/|$T/sim2/|g; s|$T/ca/index.txt|$T/ca/index2.txt|" "$T/ca/ca.cnf" >"$T/ca/ca2.cnf"
: >"$T/ca/index2.txt"
openssl ca -config "$T/ca/ca2.cnf" -gencrl -out "$T/ca/forged.pem" >/dev/null 2>&1
openssl crl -in "$T/ca/forged.pem" -outform DER -out "$T/ca/forged.der"
RD=$(printf '00%.0s' $(seq 64))
"$AK_TOOL" sim report --dir "$T/sim" --report-data "$RD" -o "$T/sim.json" || bail "sim report failed"
S=(--roots "$T/sim/ark.pem" "${V[@]}")

start_httpfixture crl "$T/crl"
cp "$T/ca/clean.der" "$T/crl/vcek/v1/Milan/crl"
verdict crl-clean accept ok "${S[@]}" --crl require --kds "$FIXTURE_URL" --cache "$T/cc" "$T/sim.json"
json crl-clean "the CRL was checked" '.chain.crl == "checked"'
check "crl-clean: fetched from /vcek/v1/Milan/crl" test "$(fixture_fetches '^GET /vcek/v1/Milan/crl 200$')" = 1
cp "$T/ca/revoked.der" "$T/crl/vcek/v1/Milan/crl"
verdict crl-cached-clean accept ok "${S[@]}" --crl require --kds "$FIXTURE_URL" --cache "$T/cc" "$T/sim.json"
check "crl-cached-clean: the cached CRL (nextUpdate ahead) served, no new fetch" \
	test "$(fixture_fetches '^GET /vcek/v1/Milan/crl 200$')" = 1
verdict crl-revoked refuse cert_revoked "${S[@]}" --crl require --kds "$FIXTURE_URL" --cache "$T/cr" "$T/sim.json"
json crl-revoked "the message names the VCEK, its serial and the ARK" \
	'.message | test("the VCEK .SEV-VCEK. \\(serial [0-9A-F]+\\) is revoked by the CRL of ARK-Milan-SIM")'
verdict crl-revoked-use-if-present refuse cert_revoked "${S[@]}" --crl use-if-present --kds "$FIXTURE_URL" --cache "$T/cr" "$T/sim.json"
verdict crl-off accept ok "${S[@]}" --crl off --kds "$FIXTURE_URL" --cache "$T/cr" "$T/sim.json"
json crl-off "crl off: not checked" '.chain.crl == "off"'
cp "$T/ca/forged.der" "$T/crl/vcek/v1/Milan/crl"
verdict crl-forged refuse untrusted_chain "${S[@]}" --crl use-if-present --kds "$FIXTURE_URL" --cache "$T/cf" "$T/sim.json"
json crl-forged "a CRL not signed by the ARK is named" '.message | test("not signed by ARK-Milan-SIM")'
rm "$T/crl/vcek/v1/Milan/crl"
verdict crl-missing-require refuse collateral_unavailable "${S[@]}" --crl require --kds "$FIXTURE_URL" --cache "$T/cm" "$T/sim.json"
json crl-missing-require "HTTP 404 for the CRL named" '.message | test("404 for the CRL")'
verdict crl-missing-use-if-present accept ok "${S[@]}" --crl use-if-present --kds "$FIXTURE_URL" --cache "$T/cm" "$T/sim.json"
json crl-missing-use-if-present "use-if-present: no CRL, said so" '.chain.crl == "unavailable"'
verdict crl-offline-cached refuse cert_revoked "${S[@]}" --crl require --offline --cache "$T/cr" "$T/sim.json"

# ---- the broker: [snp] kds_url, cache_dir, crl ----------------------------
cp "$T/ca/revoked.der" "$T/crl/vcek/v1/Milan/crl"
snp_conf() { sed -i "/^roots = /a $1" "$T/broker.conf"; }
write_broker_conf
snp_conf "kds_url = $FIXTURE_URL"
snp_conf "cache_dir = $T/broker-cache"
snp_conf "crl = require"
snp_conf "kds_timeout = 5"
start_broker
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/b-revoked.out" 2>"$T/b-revoked.err"
check "broker, crl = require: a revoked sim VCEK is refused" grep -q "^login: CKR_FUNCTION_REJECTED$" "$T/b-revoked.out"
check "broker: the refusal is audited as cert_revoked" grep -q '"cert_revoked"' "$T/audit.jsonl"
check "broker: the CRL went to its cache_dir" test "$(ls "$T/broker-cache" | wc -l)" = 1
write_broker_conf
snp_conf "kds_url = $FIXTURE_URL"
snp_conf "cache_dir = $T/broker-cache2"
snp_conf "crl = off"
restart_broker
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/b-off.out" 2>&1
check "broker, crl = off: the same chip logs in" grep -q "private_keys: [1-9]" "$T/b-off.out"

# ---- KDS down (issue 13 item 3): the broker's CRL cache warm, then cold ----
cp "$T/ca/clean.der" "$T/crl/vcek/v1/Milan/crl"
write_broker_conf
snp_conf "kds_url = $FIXTURE_URL"
snp_conf "cache_dir = $T/broker-warm"
snp_conf "crl = require"
snp_conf "kds_timeout = 5"
restart_broker
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/b-fill.out" 2>&1
check "kds-down: with KDS up the broker fetches the CRL into its cache and releases" \
	sh -c "grep -q 'private_keys: [1-9]' '$T/b-fill.out' && test \$(ls '$T/broker-warm' | wc -l) = 1"
stop_httpfixture
restart_broker # nothing held in memory: the CRL comes from the cache directory
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/b-warm.out" 2>&1
check "kds-down, warm cache: the broker releases on the cached CRL" grep -q "private_keys: [1-9]" "$T/b-warm.out"
sed -i "s|^cache_dir = .*|cache_dir = $T/broker-cold|" "$T/broker.conf"
restart_broker
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/b-cold.out" 2>"$T/b-cold.err"
check "kds-down, cold cache: C_Login fails, no private key held" \
	sh -c "grep -q '^login: CKR_FUNCTION_REJECTED$' '$T/b-cold.out' && grep -q 'private_keys: 0' '$T/b-cold.out'"
check "kds-down, cold cache: the module names collateral_unavailable (HTTP 503)" \
	grep -Eq "collateral_unavailable: .*HTTP 503 from" "$T/b-cold.err"
check "kds-down, cold cache: the broker's log names the CRL and the unreachable KDS" \
	grep -q "refused collateral_unavailable: AMD KDS is unreachable for the CRL" "$T/broker.log"
grep "refused collateral_unavailable" "$T/broker.log" | tail -n 1 | diag_stream
stop_broker
for bad in "crl = sometimes" "kds_timeout = 0" "kds_url = ftp://x" "offline = perhaps" "cache_dir = "; do
	write_broker_conf
	snp_conf "$bad"
	timeout 20 "$AK_BROKER" -f -c "$T/broker.conf" >"$T/bad.log" 2>&1
	check "broker refuses [snp] ${bad%% *} '${bad#*= }', naming the key" grep -q "\[snp\] ${bad%% *}" "$T/bad.log"
done
finish
