#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The broker's HTTP API with curl, as docs/protocol.md specifies it: the
# challenge, a release made by hand from the CLI's simulated evidence, and a
# refusal with a machine-readable reason for each malformed request, forged
# or misused nonce, and evidence replayed with another ephemeral key.
. "$(dirname "$0")/lib.sh"
need curl jq jose

setup_world
mkdir -p "$T/keys/db" && cp "$T/keys/web/ec.key" "$T/keys/db/"
write_broker_conf "" "[token db]" "measurements = $MEASUREMENT"
start_broker
CURL="curl -s --cacert $T/pki/broker-ca.pem"

# post PATH BODY -> prints "HTTP_STATUS reason" (reason "-" on success)

check "GET /v1/health answers" bash -c "$CURL $BROKER_URL/v1/health | jq -e '.status == \"ok\"'"
check "a client that does not trust the broker CA is refused by TLS" bash -c "! curl -s $BROKER_URL/v1/health"
expect "challenge for token web" "200 -" /v1/challenge '{"token":"web"}'
check "the challenge has nonce, expires_at, algs, tee" jq -e '(.nonce|length)==87 and (.expires_at|type)=="number" and (.algs|index("ECDH-ES+A256GCM")) and (.tee|index("snp"))' "$T/resp.json"
NONCE=$(jq -r .nonce "$T/resp.json")
expect "challenge for an unknown token: unknown_token" "404 unknown_token" /v1/challenge '{"token":"nope"}'
expect "challenge that is not JSON: bad_request" "400 bad_request" /v1/challenge 'token=web'
expect "challenge without a token: bad_request" "400 bad_request" /v1/challenge '{"tok":"web"}'
expect "challenge with a non-string token: bad_request" "400 bad_request" /v1/challenge '{"token":7}'
# A token name that carries a newline, a carriage return and an escape
# sequence, as a client that wants to forge the broker's log would send it:
# refused, and the log gains no line of the client's making and no control
# byte (docs/threat-model.md, "Forged log lines").
FORGE='web\nattestkey-broker: FORGED release of token web\r\u001b[2J'
expect "a token name with a newline and an escape: unknown_token" "404 unknown_token" /v1/challenge "{\"token\":\"$FORGE\"}"
check "the broker's log names the refused token on one line, with no forged line" bash -c "
	grep -q 'FORGED release' '$T/broker.log' && ! grep -q '^attestkey-broker: FORGED' '$T/broker.log'"
check "the broker's log holds no carriage return or escape byte" bash -c "! grep -q \$'[\\r\\x1b]' '$T/broker.log'"
check "GET on /v1/keys: 405 with a JSON error" bash -c "test \"\$($CURL -o /dev/null -w '%{http_code}' $BROKER_URL/v1/keys)\" = 405"
check "an unknown path: 404 with a JSON error" bash -c "$CURL $BROKER_URL/v2/keys -d '{}' | jq -e .error"
head -c 2000000 /dev/zero | tr '\0' 'x' >"$T/big"
check "a body over 1 MiB is refused with 413" bash -c "test \"\$($CURL -o /dev/null -w '%{http_code}' --data-binary @$T/big $BROKER_URL/v1/keys)\" = 413"

# Evidence made by hand: ephemeral key A, the binding for A, a sim report.
jose jwk gen -i '{"kty":"EC","crv":"P-384"}' -o "$T/a.jwk"
jose jwk pub -i "$T/a.jwk" -o "$T/a.pub.jwk"
jose jwk gen -i '{"kty":"EC","crv":"P-384"}' -o "$T/b.jwk"
jose jwk pub -i "$T/b.jwk" -o "$T/b.pub.jwk"
BIND=$("$AK_TOOL" binding --nonce "$NONCE" --token web --jwk "$T/a.pub.jwk")
"$AK_TOOL" sim report --dir "$T/sim" --report-data "$BIND" --measurement "$MEASUREMENT" -o "$T/ev.json"
keys_body() { # nonce token pubkey-file [evidence-file]
	jq -cn --arg n "$1" --arg t "$2" --slurpfile k "$3" --slurpfile e "${4:-$T/ev.json}" \
		'{token:$t, nonce:$n, tee:"snp", evidence:$e[0], pubkey:$k[0]}'
}
expect "release with evidence bound to key A, sent with key A" "200 -" /v1/keys "$(keys_body "$NONCE" web "$T/a.pub.jwk")"
check "the release is a JWE per key, decryptable with key A, holding a PKCS#8 key" bash -c "
	jq -e '.keys|length == 2' '$T/resp.json' >/dev/null &&
	jq -c '.keys[] | select(.label==\"tls\") | .jwe' '$T/resp.json' >'$T/tls.jwe' &&
	jose jwe dec -i '$T/tls.jwe' -k '$T/a.jwk' -O '$T/tls.der' &&
	openssl pkey -inform DER -in '$T/tls.der' -noout && rm -f '$T/tls.der'"
cp "$T/resp.json" "$T/release.json"
check "the release carries label, id and certificate" jq -e '.keys[]|select(.label=="tls")|(.id|test("^[0-9a-f]{40}$")) and (.cert|length>100)' "$T/release.json"
expect "the same evidence replayed with key B: binding_mismatch" "403 binding_mismatch" /v1/keys "$(keys_body "$NONCE" web "$T/b.pub.jwk")"
expect "a forged nonce: nonce_invalid" "403 nonce_invalid" /v1/keys "$(keys_body "${NONCE%?????}AAAAA" web "$T/a.pub.jwk")"
expect "a nonce that is not base64url: nonce_invalid" "403 nonce_invalid" /v1/keys "$(keys_body '!!!' web "$T/a.pub.jwk")"
expect "a nonce issued for token web used for token db: nonce_wrong_token" "403 nonce_wrong_token" /v1/keys "$(keys_body "$NONCE" db "$T/a.pub.jwk")"
expect "keys for an unknown token: unknown_token" "404 unknown_token" /v1/keys "$(keys_body "$NONCE" nope "$T/a.pub.jwk")"
expect "tee tdx: tee_unsupported" "400 tee_unsupported" /v1/keys "$(keys_body "$NONCE" web "$T/a.pub.jwk" | jq -c '.tee="tdx"')"
expect "a private JWK as pubkey: pubkey_unsupported" "400 pubkey_unsupported" /v1/keys "$(keys_body "$NONCE" web "$T/a.jwk")"
expect "an RSA pubkey: pubkey_unsupported" "400 pubkey_unsupported" /v1/keys "$(keys_body "$NONCE" web "$T/a.pub.jwk" | jq -c '.pubkey={kty:"RSA",n:"AQAB",e:"AQAB"}')"
expect "a truncated report: evidence_malformed" "400 evidence_malformed" /v1/keys "$(keys_body "$NONCE" web "$T/a.pub.jwk" | jq -c '.evidence.report=(.evidence.report[0:100])')"
expect "evidence without a report: bad_request or evidence_malformed" "400 $(keys_body "$NONCE" web "$T/a.pub.jwk" | jq -c 'del(.evidence.report)' >"$T/b.json"; echo evidence_malformed)" /v1/keys "$(cat "$T/b.json")"
expect "a missing nonce: bad_request" "400 bad_request" /v1/keys "$(keys_body "$NONCE" web "$T/a.pub.jwk" | jq -c 'del(.nonce)')"
check "every decision is an audit line of JSON" bash -c "jq -e -s 'length >= 10 and all(.[]; has(\"event\") and has(\"time\") and has(\"reason\"))' '$T/audit.jsonl'"
check "the audit log records the binding refusal" grep -q '"binding_mismatch"' "$T/audit.jsonl"
finish
