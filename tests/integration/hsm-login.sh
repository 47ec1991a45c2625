#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 10 item 2 end to end: the real module logs in to a broker whose keys
# are in a SoftHSMv2 token (the sim SNP chip's evidence): the challenge
# offers only the HSM envelope, the module makes an RSA-3072 ephemeral key,
# the HSM wraps the keys to it (docs/protocol.md §4.3), and pkcs11-tool
# signs with the released keys. A request by hand shows the wire; every
# other envelope and every other key is refused before the evidence.
. "$(dirname "$0")/lib.sh"
need curl jq jose
. "$(dirname "$0")/hsm-lib.sh"

setup_world
hsm_setup
hsm_broker_conf
start_broker
CURL="curl -s --cacert $T/pki/broker-ca.pem"
P11="$AK_RUN pkcs11-tool --module $AK_MODULE"

ALG=ak2-RSA-OAEP+A256KWP # SoftHSMv2 wraps with OAEP SHA-1 only
expect "challenge" "200 -" /v1/challenge '{"token":"web"}'
check "the challenge offers the HSM envelope alone" jq -e --arg a $ALG '.algs == [$a]' "$T/resp.json"
NONCE=$(jq -r .nonce "$T/resp.json")

# The module: C_Login, then signatures openssl verifies with the certificates.
printf 'signed by a key that was in an HSM' >"$T/data"
openssl x509 -in "$T/keys/web/tls.crt" -pubkey -noout >"$T/tls.pub"
openssl x509 -in "$T/keys/web/ec.crt" -pubkey -noout >"$T/ec.pub"
ATTESTKEY_DEBUG=1 $P11 --login --pin 1234 -O >"$T/objects.txt" 2>&1
check "C_Login: the module asked for the HSM envelope" grep -q "released by .* ($ALG," "$T/objects.txt"
check "  and holds both keys as private key objects, with their certificates" bash -c "
	test \$(grep -c 'Private Key Object' '$T/objects.txt') -eq 2 &&
	test \$(grep -c 'Certificate Object' '$T/objects.txt') -eq 2"
check "  and the broker audited the release of tls and ec" \
	bash -c "grep '\"event\":\"release\"' '$T/audit.jsonl' | grep -q '\"keys\":\[\"ec\",\"tls\"\]'"
id_of() { awk -v l="$1" '$1 == "label:" { cur = $2 } $1 == "ID:" && cur == l { print $2; exit }' "$T/objects.txt"; }
check "CKM_SHA256_RSA_PKCS with the HSM's RSA key: openssl verifies" bash -c "
	$P11 --login --pin 1234 --sign --id $(id_of tls) -m SHA256-RSA-PKCS --input-file '$T/data' --output-file '$T/rsa.sig' &&
	openssl dgst -sha256 -verify '$T/tls.pub' -signature '$T/rsa.sig' '$T/data'"
check "CKM_ECDSA_SHA256 with the HSM's EC key: openssl verifies" bash -c "
	$P11 --login --pin 1234 --sign --id $(id_of ec) -m ECDSA-SHA256 --signature-format openssl --input-file '$T/data' --output-file '$T/ec.sig' &&
	openssl dgst -sha256 -verify '$T/ec.pub' -signature '$T/ec.sig' '$T/data'"

# By hand: an RSA-3072 ephemeral key, evidence bound to its thumbprint.
jose jwk gen -i '{"kty":"RSA","bits":3072}' -o "$T/r.jwk"
jose jwk pub -i "$T/r.jwk" -o "$T/r.pub.jwk"
jose jwk gen -i '{"kty":"RSA","bits":2048}' -o "$T/r2048.jwk"
jose jwk pub -i "$T/r2048.jwk" -o "$T/r2048.pub.jwk"
jose jwk gen -i '{"kty":"EC","crv":"P-256"}' -o "$T/e.jwk"
jose jwk pub -i "$T/e.jwk" -o "$T/e.pub.jwk"
body() { # alg-or-empty jwk-file
	BIND=$("$AK_TOOL" binding --nonce "$NONCE" --token web --jwk "$2")
	"$AK_TOOL" sim report --dir "$T/sim" --report-data "$BIND" --measurement "$MEASUREMENT" -o "$T/ev.json"
	jq -cn --arg n "$NONCE" --arg a "$1" --slurpfile k "$2" --slurpfile e "$T/ev.json" \
		'{token:"web", nonce:$n, tee:"snp", evidence:$e[0], pubkey:$k[0]}
		 + (if $a == "" then {} else {alg:$a} end)'
}
expect "the HSM envelope to an RSA-3072 key is released" "200 -" /v1/keys "$(body $ALG "$T/r.pub.jwk")"
check "one envelope: its alg, and ek = one RSA-3072 block (384 bytes)" \
	jq -e --arg a $ALG '.envelope.alg == $a and (.envelope.ek|length) == 512 and (.envelope|keys) == ["alg","ek"]' "$T/resp.json"
check "each key: label, id, type, cert and its HSM-wrapped key; no JWE, no GCM" \
	jq -e '[.keys[].label] == ["ec","tls"] and all(.keys[]; (.wrapped|length) > 100 and
	       (has("jwe") or has("ct") or has("iv")) == false and (.id|test("^[0-9a-f]{40}$")))' "$T/resp.json"
expect "v1 (no alg): alg_unsupported, naming the HSM envelope" "400 alg_unsupported" /v1/keys "$(body "" "$T/e.pub.jwk")"
check "  (the message says why)" jq -e --arg a $ALG '.message | contains("in an HSM") and contains($a)' "$T/resp.json"
expect "ak2-ECDH-ES+A256GCM: alg_unsupported" "400 alg_unsupported" /v1/keys "$(body ak2-ECDH-ES+A256GCM "$T/e.pub.jwk")"
expect "the HSM envelope to an EC key: pubkey_unsupported" "400 pubkey_unsupported" /v1/keys "$(body $ALG "$T/e.pub.jwk")"
expect "the HSM envelope to RSA-2048: pubkey_unsupported" "400 pubkey_unsupported" /v1/keys "$(body $ALG "$T/r2048.pub.jwk")"
check "  (the message names the size)" jq -e '.message | contains("3072 to 8192 bits")' "$T/resp.json"
expect "an RSA pubkey with its private exponent: pubkey_unsupported" "400 pubkey_unsupported" /v1/keys "$(body $ALG "$T/r.jwk")"
finish
