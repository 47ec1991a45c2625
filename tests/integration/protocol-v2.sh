#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Protocol v2 between the real module and the real broker (docs/protocol.md
# §4): the challenge offers ak2-ECDH-ES+A256GCM then ECDH-ES+A256GCM; the
# module takes v2 with a P-256 key and opens one envelope per release; a
# release by hand with curl shows the wire; a broker with release_v2 = no
# and the module share only v1 and still log in; a v2 request to that
# broker is refused with alg_unsupported.
. "$(dirname "$0")/lib.sh"
need curl jq jose

setup_world
# token many: 12 keys, enough for the module to open them on parallel threads
make_keys "$T/keys/many" 12 || bail "cannot make the keys of token many"
write_broker_conf "" "[token many]" "measurements = $MEASUREMENT"
start_broker
CURL="curl -s --cacert $T/pki/broker-ca.pem"

expect "challenge" "200 -" /v1/challenge '{"token":"web"}'
check "the challenge offers v2 first, then v1" \
	jq -e '.algs == ["ak2-ECDH-ES+A256GCM", "ECDH-ES+A256GCM"]' "$T/resp.json"
NONCE=$(jq -r .nonce "$T/resp.json")

# A v2 release by hand: a P-256 ephemeral key, evidence bound to it.
jose jwk gen -i '{"kty":"EC","crv":"P-256"}' -o "$T/a.jwk"
jose jwk pub -i "$T/a.jwk" -o "$T/a.pub.jwk"
BIND=$("$AK_TOOL" binding --nonce "$NONCE" --token web --jwk "$T/a.pub.jwk")
"$AK_TOOL" sim report --dir "$T/sim" --report-data "$BIND" --measurement "$MEASUREMENT" -o "$T/ev.json"
body() { # alg-or-empty
	jq -cn --arg n "$NONCE" --arg a "$1" --slurpfile k "$T/a.pub.jwk" --slurpfile e "$T/ev.json" \
		'{token:"web", nonce:$n, tee:"snp", evidence:$e[0], pubkey:$k[0]}
		 + (if $a == "" then {} else {alg:$a} end)'
}
expect "a v2 request with a P-256 key is released" "200 -" /v1/keys "$(body ak2-ECDH-ES+A256GCM)"
check "one envelope for the release, its epk on P-256" \
	jq -e '.envelope.alg == "ak2-ECDH-ES+A256GCM" and .envelope.epk.crv == "P-256" and
	       (.envelope.epk | has("d") | not)' "$T/resp.json"
check "each key: label, id, type, cert, and its own iv, ct and tag; no JWE" \
	jq -e '(.keys|length) == 2 and all(.keys[]; (.iv|length) == 16 and (.tag|length) == 22 and
	       (.ct|length) > 100 and has("jwe") == false and (.id|test("^[0-9a-f]{40}$")))' "$T/resp.json"
check "the IVs differ between keys" jq -e '.keys[0].iv != .keys[1].iv' "$T/resp.json"
expect "v1 on P-256 is refused: pubkey_unsupported" "400 pubkey_unsupported" /v1/keys "$(body "")"
expect "an alg the broker does not offer: alg_unsupported" "400 alg_unsupported" /v1/keys "$(body ak2-RSA-OAEP-256+A256KWP)"
check "... naming what it offers" grep -q "this broker offers: ak2-ECDH-ES+A256GCM, ECDH-ES+A256GCM" "$T/resp.json"

# The module: v2 with P-256, one envelope opened (its debug line says so).
module_login() { # TOKEN OUT
	sed "s/^\[token web\]/[token $1]/; s/^label = web/label = $1/" "$T/attestkey.conf" >"$T/ak-$1.conf"
	ATTESTKEY_DEBUG=1 ATTESTKEY_CONF="$T/ak-$1.conf" "$AK_PROBE" "$AK_MODULE" login "" >"$2" 2>&1
}
module_login web "$T/v2.out"
check "the module logs in over v2" grep -q "^login: CKR_OK" "$T/v2.out"
check "... released 2 keys in the ak2-ECDH-ES+A256GCM envelope" \
	grep -q "2 key(s) released by .* (ak2-ECDH-ES+A256GCM," "$T/v2.out"
check "... as two private key objects, opened on one thread" bash -c "grep -q 'private_keys: 2' '$T/v2.out' && grep -q 'opened on 1 thread' '$T/v2.out'"
module_login many "$T/many.out"
if [ "$(nproc)" -ge 2 ]; then
	check "12 keys in one v2 release, opened on parallel threads" \
		grep -q "12 key(s) released by .* (ak2-ECDH-ES+A256GCM, opened on [2-4] thread(s))" "$T/many.out"
else
	skip "12 keys opened on parallel threads" "one CPU: the module opens them on one thread"
fi
check "... every one a private key object" grep -q "private_keys: 12" "$T/many.out"

# A broker that offers v1 alone (release_v2 = no), as a broker before v2 would.
stop_broker
sed -i '/^\[broker\]/a release_v2 = no' "$T/broker.conf"
start_broker
expect "challenge of a v1-only broker" "200 -" /v1/challenge '{"token":"web"}'
check "it offers v1 alone" jq -e '.algs == ["ECDH-ES+A256GCM"]' "$T/resp.json"
module_login web "$T/v1.out"
check "module and broker that share only v1 log in" grep -q "^login: CKR_OK" "$T/v1.out"
check "... over v1 (JWE per key)" grep -q "2 key(s) released by .* (ECDH-ES+A256GCM," "$T/v1.out"
check "... with both keys" grep -q "private_keys: 2" "$T/v1.out"
expect "a v2 request to it: alg_unsupported" "400 alg_unsupported" /v1/keys "$(body ak2-ECDH-ES+A256GCM)"
check "the broker logged the refusal" grep -q "refused alg_unsupported: alg 'ak2-ECDH-ES+A256GCM' is not offered" "$T/broker.log"
sed -i '/^release_v2 = no/s/no/maybe/' "$T/broker.conf"
refuse "release_v2 = maybe does not start" "$AK_BROKER" -f -c "$T/broker.conf"
check "... and says why" bash -c "'$AK_BROKER' -f -c '$T/broker.conf' 2>&1 | grep -q \"release_v2.*'maybe' is not yes or no\""
finish
