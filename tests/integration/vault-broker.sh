#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The broker's Vault key store end to end (issue 10 item 1), against the
# real Vault: a token's keys are KV v2 secrets read by an AppRole-
# authenticated broker; the module logs in (simulated SNP guest) and gets
# them; the audit line names each key's version; key_version pins one;
# every Vault failure (403 policy, 404 deleted key, 429 rate limit, 503
# sealed, unreachable) refuses the release with 503 keystore_unavailable,
# releases nothing, and logs a line that says what is wrong; a revoked
# broker token is replaced by a new AppRole login; TLS with a CA file and a
# client certificate; the broker never logs a Vault token.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
need curl jq openssl
vault_find

setup_world
POLICY=$VAULT_BROKER_POLICY

# login NAME: a C_Login through the module; output in $T/NAME.out
login() { "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>&1; }
last_audit() { tail -n 1 "$T/audit.jsonl"; }
# refused NAME LOG_TEXT: the last login was refused 503 keystore_unavailable,
# released nothing, and the broker's log says LOG_TEXT
refused() {
	local name=$1 text=$2
	login "$name"
	check "$name: nothing is released" grep -q "private_keys: 0" "$T/$name.out"
	check "$name: refused as keystore_unavailable" \
		refusal_audit "$T/$name.out" '.reason == "keystore_unavailable" and .event == "refuse"'
	check "$name: the broker's log says: $text" grep -qF "$text" "$T/broker.log"
}

# --- dev server, AppRole
vault_start_dev
vault_put_keys
vault_approle broker "$POLICY" token_ttl=1h
VAULT_TOKEN_EXTRA=()
vault_broker_conf
start_broker
login first
check "a login gets both keys from Vault" grep -q "private_keys: 2" "$T/first.out"
check "the audit line names each key's version" \
	sh -c "tail -n 1 '$T/audit.jsonl' | jq -e '.event == \"release\" and .key_versions == {\"ec\": 1, \"tls\": 1}'"
check "the broker's log line names the versions" grep -q "released 2 key(s): ec (version 1), tls (version 1)" "$T/broker.log"

# a new version is served at the next login; key_version pins the old one
vcli kv put secret/attestkey/web/tls private_key=@"$T/keys/web/tls.key" \
	certificate=@"$T/keys/web/tls.crt" >/dev/null
login second
check "a new version in Vault is released at the next login" \
	sh -c "tail -n 1 '$T/audit.jsonl' | jq -e '.key_versions.tls == 2'"
VAULT_TOKEN_EXTRA=("key_version = tls:1")
vault_broker_conf
restart_broker
login pinned
check "key_version = tls:1 releases version 1" \
	sh -c "tail -n 1 '$T/audit.jsonl' | jq -e '.key_versions == {\"ec\": 1, \"tls\": 1}'"
check "... both keys" grep -q "private_keys: 2" "$T/pinned.out"
VAULT_TOKEN_EXTRA=()
vault_broker_conf
restart_broker

# 403: the broker's policy no longer allows reading one of the keys
vcli policy write broker - >/dev/null <<'EOP'
path "secret/data/attestkey/web/tls" { capabilities = ["read"] }
path "secret/metadata/attestkey/*" { capabilities = ["list"] }
EOP
refused policy "the broker's Vault policy does not allow read on secret/data/attestkey/web/ec"
printf '%s\n' "$POLICY" | vcli policy write broker - >/dev/null
login policy-back
check "with the policy restored the login works again" grep -q "private_keys: 2" "$T/policy-back.out"

# A secret deleted with its metadata and written again starts at version 1
# again, with another key: the broker must not serve the key it parsed
# for the old version 1 (its cache compares the PEM, not the number)
public_spki() {
	curl -sS --cacert "$T/pki/broker-ca.pem" "$BROKER_URL/v1/public/web" |
		jq -r '.keys[] | select(.label == "tls") | .spki'
}
# recreate NAME: secret/attestkey/web/tls deleted with its metadata and
# written again (version 1) with a new key NAME; prints its SPKI
recreate() {
	make_leaf "$T/pki" "$1" web-ca rsa:2048 || bail "cannot make a new key"
	openssl pkcs8 -topk8 -nocrypt -in "$T/pki/$1.key" -out "$T/pki/$1.p8"
	vcli kv metadata delete secret/attestkey/web/tls >/dev/null
	vcli kv put secret/attestkey/web/tls private_key=@"$T/pki/$1.p8" \
		certificate=@"$T/pki/$1.crt" >/dev/null
	openssl pkey -in "$T/pki/$1.key" -pubout -outform DER | basenc --base64url | tr -d '=\n'
}
SPKI_A=$(recreate tls-a)
login recreated-a
check "a re-created secret (version 1 again) is released with its key" \
	sh -c "tail -n 1 '$T/audit.jsonl' | jq -e '.event == \"release\" and .key_versions.tls == 1' >/dev/null && test \"\$(curl -sS --cacert '$T/pki/broker-ca.pem' '$BROKER_URL/v1/public/web' | jq -r '.keys[] | select(.label == \"tls\") | .spki')\" = '$SPKI_A'"
SPKI_B=$(recreate tls-b)
login recreated-b
check "re-created again with another key: version 1 once more, and the new key, not the one parsed for the last version 1" \
	test "$(public_spki)" = "$SPKI_B" -a "$SPKI_A" != "$SPKI_B"
check "... released" grep -q "private_keys: 2" "$T/recreated-b.out"
# back to setup_world's key (the later tests compare nothing of it)
vcli kv put secret/attestkey/web/tls private_key=@"$T/keys/web/tls.key" certificate=@"$T/keys/web/tls.crt" >/dev/null

# 404: the latest version of a key is deleted
vcli kv delete secret/attestkey/web/ec >/dev/null
refused deleted "no such key in Vault: Vault KV: secret/data/attestkey/web/ec version 1 is deleted"
vcli kv undelete -versions=1 secret/attestkey/web/ec >/dev/null

# 429: a rate limit quota on the KV mount
vcli write sys/quotas/rate-limit/broker path=secret/ rate=1 interval=1h >/dev/null ||
	bail "cannot set a rate limit quota"
refused ratelimit "rate-limits the broker (429)"
vcli delete sys/quotas/rate-limit/broker >/dev/null

# a revoked broker token: the next fetch logs in again by AppRole
vcli lease revoke -prefix auth/approle/login >/dev/null
login revoked
check "after its token was revoked the broker logs in again and releases" \
	grep -q "private_keys: 2" "$T/revoked.out"
check "... and says so" grep -q "refused the client token (revoked or expired)" "$T/broker.log"

# 503: Vault sealed (the dev server prints its unseal key)
vcli operator seal >/dev/null
refused sealed "is sealed or a standby (503)"
vcli operator unseal "$(sed -n 's/^Unseal Key: //p' "$T/vault.log" | tail -n 1)" >/dev/null
for _ in $(seq 50); do [ "$(vault_health)" = 200 ] && break; sleep 0.1; done
login unsealed
check "unsealed, the broker serves again" grep -q "private_keys: 2" "$T/unsealed.out"

# unreachable: Vault is gone
vault_stop
refused unreachable "unreachable"
if grep -Eq 's\.[A-Za-z0-9]{24}|hvs\.[A-Za-z0-9_-]{20,}|X-Vault-Token' "$T/broker.log" "$T/audit.jsonl"; then
	not_ok "the broker never logs a Vault token"
else
	ok "the broker never logs a Vault token"
fi
stop_broker

# --- TLS with a CA file and a client certificate
vault_start_tls
vault_put_keys
vault_approle broker "$POLICY"
vault_broker_conf "ca_file = $T/vpki/ca.pem" "client_cert = $T/vpki/client.crt" \
	"client_key = $T/vpki/client.key"
start_broker
login tls
check "over TLS with a client certificate the broker fetches the keys" grep -q "private_keys: 2" "$T/tls.out"
stop_broker
vault_broker_conf "ca_file = $T/vpki/ca.pem"
if "$AK_BROKER" -f -c "$T/broker.conf" >"$T/nocert.log" 2>&1; then
	not_ok "without its client certificate the broker does not start"
else
	ok "without its client certificate the broker does not start"
fi
check "... and says Vault could not be reached over TLS" grep -q "token 'web': Vault at https:.* unreachable: POST auth/approle/login" "$T/nocert.log"
check "no sanitizer report in any broker run (ASan builds)" \
	bash -c "! grep -q 'ERROR: \\(Address\\|Leak\\)Sanitizer\\|runtime error' '$T/broker.log' '$T/nocert.log'"
diag_stream <"$T/nocert.log"
vault_stop
finish
