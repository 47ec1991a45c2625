#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 3 item 3: the broker serves a token's public keys and certificates
# without evidence (GET /v1/public/<token>), and PKCS#11 clients list them
# before login. Also the key types beyond RSA and P-256: Ed25519 and P-521.
. "$(dirname "$0")/lib.sh"
need curl jq pkcs11-tool openssl

setup_world
openssl genpkey -algorithm ed25519 -out "$T/keys/web/ed.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out "$T/keys/web/p521.key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$T/rsa1024.key"
start_broker
CURL="curl -s --cacert $T/pki/broker-ca.pem"
P11="$AK_RUN pkcs11-tool --module $AK_MODULE"

$CURL "$BROKER_URL/v1/public/web" >"$T/public.json"
check "GET /v1/public/web lists the 4 keys with type, id and spki" \
	jq -e '(.keys|length)==4 and ([.keys[].type]|sort)==["EC","EC","Ed25519","RSA"] and all(.keys[]; (.spki|length)>40 and (.id|test("^[0-9a-f]{40}$")))' "$T/public.json"
check "each spki is the public key of the key file" bash -c "
	for l in tls ec ed p521; do
		jq -r --arg l \$l '.keys[]|select(.label==\$l)|.spki' '$T/public.json' | tr '_-' '/+' |
			awk '{ n = length(\$0) % 4; if (n) \$0 = \$0 substr(\"===\", 1, 4 - n); print }' | base64 -d >'$T/spki.der' &&
		openssl pkey -in '$T/keys/web/'\$l.key -pubout -outform DER | cmp -s - '$T/spki.der' || exit 1
	done"
check "the listing holds only public members (label, id, type, spki, cert)" \
	jq -e 'all(.keys[]; (keys - ["cert","id","label","spki","type"]) == [])' "$T/public.json"
check "GET /v1/public/nope: 404 unknown_token" bash -c "test \"\$($CURL -o '$T/e.json' -w '%{http_code}' $BROKER_URL/v1/public/nope)\" = 404 && jq -e '.error==\"unknown_token\"' '$T/e.json'"
check "GET /v1/public/: 400 bad_request" bash -c "test \"\$($CURL -o /dev/null -w '%{http_code}' $BROKER_URL/v1/public/)\" = 400"
check "POST /v1/public/web: 405" bash -c "test \"\$($CURL -o /dev/null -w '%{http_code}' -d '{}' $BROKER_URL/v1/public/web)\" = 405"
check "the public listing is audited" grep -q '"event":"public"' "$T/audit.jsonl"

# Searches never wait on the network (issue 8 item 19): the first one
# starts a background refresh, which writes the cache file the next
# processes read.
check "a long-running application sees the public view once the background refresh fetched it" \
	$AK_RUN "$AK_PROBE" "$AK_MODULE" wait-public 10
check "  and the refresh wrote the cache file" test -s "$T/cache/web.json"
$P11 -O >"$T/prelogin.txt" 2>&1
check "pkcs11-tool -O without a PIN lists public keys and certificates" bash -c "
	grep -q 'Public Key Object; RSA' '$T/prelogin.txt' && grep -q 'Certificate Object' '$T/prelogin.txt' &&
	grep -q 'EC_EDWARDS' '$T/prelogin.txt'"
check "  and no private key" bash -c "! grep -q 'Private Key Object' '$T/prelogin.txt'"
check "  and the broker released nothing" test "$(releases)" -eq 0

$P11 --login --pin 1234 -O >"$T/objects.txt" 2>&1
id_of() { awk -v l="$1" '$1 == "label:" { cur = $2 } $1 == "ID:" && cur == l { print $2; exit }' "$T/objects.txt"; }
printf 'public objects first' >"$T/data"
openssl pkey -in "$T/keys/web/ed.key" -pubout -out "$T/ed.pub"
openssl pkey -in "$T/keys/web/p521.key" -pubout -out "$T/p521.pub"
check "CKM_EDDSA (Ed25519) signs and openssl verifies" bash -c "
	$P11 --login --pin 1234 --sign --id $(id_of ed) -m EDDSA --input-file '$T/data' --output-file '$T/ed.sig' &&
	openssl pkeyutl -verify -pubin -inkey '$T/ed.pub' -rawin -in '$T/data' -sigfile '$T/ed.sig'"
check "CKM_ECDSA_SHA512 on P-521 signs and openssl verifies" bash -c "
	$P11 --login --pin 1234 --sign --id $(id_of p521) -m ECDSA-SHA512 --signature-format openssl --input-file '$T/data' --output-file '$T/p521.sig' &&
	openssl dgst -sha512 -verify '$T/p521.pub' -signature '$T/p521.sig' '$T/data'"

# A key type the protocol does not carry is refused when the broker starts.
stop_broker
openssl pkcs8 -topk8 -nocrypt -in "$T/rsa1024.key" -out "$T/keys/web/weak.key"
"$AK_BROKER" -f -c "$T/broker.conf" >"$T/weak.log" 2>&1 &
wpid=$!
sleep 2
kill "$wpid" 2>/dev/null && not_ok "the broker refuses to start with an RSA-1024 key" || ok "the broker refuses to start with an RSA-1024 key"
check "  naming the file and the size" grep -q "weak.key.*1024 bits" "$T/weak.log"
rm -f "$T/keys/web/weak.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$T/keys/web/k1.key"
"$AK_BROKER" -f -c "$T/broker.conf" >"$T/k1.log" 2>&1 &
wpid=$!
sleep 2
kill "$wpid" 2>/dev/null && not_ok "the broker refuses to start with a secp256k1 key" || ok "the broker refuses to start with a secp256k1 key"
check "  naming the file and the curve" grep -q "k1.key.*secp256k1" "$T/k1.log"
finish
