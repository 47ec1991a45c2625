#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 10 item 2, the broker's side: a broker whose key store is a
# SoftHSMv2 token serves its keys' public objects, and refuses to start,
# naming the fix, when the module, the token, the PIN or a key is wrong.
. "$(dirname "$0")/lib.sh"
need curl jq
. "$(dirname "$0")/hsm-lib.sh"

setup_world
hsm_setup
hsm_broker_conf
start_broker
CURL="curl -s --cacert $T/pki/broker-ca.pem"

$CURL "$BROKER_URL/v1/public/web" >"$T/public.json"
check "GET /v1/public/web lists the token's 2 keys (labels without 'web/')" \
	jq -e '[.keys[].label]==["ec","tls"] and ([.keys[].type])==["EC","RSA"]' "$T/public.json"
check "each spki is the public key, each cert the certificate, each id the file store's" bash -c "
	b64d() { tr '_-' '/+' | awk '{ n = length(\$0) % 4; if (n) \$0 = \$0 substr(\"===\", 1, 4 - n); print }' | base64 -d; }
	for l in tls ec; do
		jq -r --arg l \$l '.keys[]|select(.label==\$l)|.spki' '$T/public.json' | b64d >'$T/spki.der' &&
		openssl pkey -in '$T/keys/web/'\$l.key -pubout -outform DER | cmp -s - '$T/spki.der' &&
		jq -r --arg l \$l '.keys[]|select(.label==\$l)|.cert' '$T/public.json' | b64d >'$T/cert.der' &&
		openssl x509 -in '$T/keys/web/'\$l.crt -outform DER | cmp -s - '$T/cert.der' &&
		skid=\$(openssl x509 -in '$T/keys/web/'\$l.crt -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr A-F a-f) &&
		jq -e --arg l \$l --arg id \"\$skid\" '.keys[]|select(.label==\$l)|.id==\$id' '$T/public.json' >/dev/null || exit 1
	done"
stop_broker

# Each refusal at start names what to fix; the broker does not run.
refusal() {
	local what=$1 needle=$2
	: >"$T/broker.log"
	if "$AK_BROKER" -f -c "$T/broker.conf" >>"$T/broker.log" 2>&1; then
		not_ok "$what: the broker started"
	elif grep -qF -- "$needle" "$T/broker.log"; then
		ok "$what: refused at start, naming it"
	else
		not_ok "$what: the log does not say '$needle'"
		diag_stream <"$T/broker.log"
	fi
}
printf '1111\n' >"$T/hsm/wrong.pin"
chmod 600 "$T/hsm/wrong.pin"
sed -i "s|^pin_file = .*|pin_file = $T/hsm/wrong.pin|" "$T/broker.conf"
refusal "a wrong PIN" "the user PIN of pin_file '$T/hsm/wrong.pin' is refused"
chmod 644 "$T/hsm/wrong.pin"
refusal "a PIN file others may read" "readable by group/others (mode 0644): chmod 600"
hsm_broker_conf
sed -i "s|^token = .*|token = pkcs11:token=nosuch|" "$T/broker.conf"
refusal "a token URI that matches no token" "no such token in module '$SOFTHSM_SO' (it has: 'hsm')"
hsm_broker_conf
sed -i "s|^module = .*|module = $T/nothing.so|" "$T/broker.conf"
refusal "a module that does not load" "module '$T/nothing.so': cannot load it"
hsm_broker_conf
sed -i "/^pin_file/d" "$T/broker.conf"
refusal "no pin_file" "pin_file is required for a pkcs11 key store"
hsm_broker_conf
hsm_import web/locked 03 "$T/pki/tls.key" "" "--private"
refusal "a key the HSM may not wrap (CKA_EXTRACTABLE false)" \
	"key 'web/locked': CKA_EXTRACTABLE is false, so the HSM will never wrap it"
$HSM_P11 --delete-object --type privkey --label web/locked >>"$T/hsm/import.log" 2>&1
start_broker
check "with that key deleted, the broker starts again" \
	bash -c "$CURL $BROKER_URL/v1/public/web | jq -e '(.keys|length)==2'"
finish
