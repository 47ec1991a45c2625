#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `attestkey key` on Vault KV v2 (issue 10, item 4), against the real Vault
# server: every subcommand and refusal (key-cli-lib.sh), the secret layout
# the broker's Vault store reads, Vault's versions, credentials as the vault
# CLI takes them (VAULT_ADDR, VAULT_TOKEN or ~/.vault-token, VAULT_CACERT,
# VAULT_CLIENT_CERT/KEY), and Vault's refusals (403, 404, sealed, unreachable).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
. "$(dirname "$0")/key-cli-lib.sh"
need openssl jq curl pkcs11-tool
vault_find

"$AK_TOOL" key list --store vault:http://127.0.0.1:1/secret/x >/dev/null 2>"$T/nb.err"
grep -q "not built" "$T/nb.err" && skip_all "attestkey was built without its Vault store"

setup_world
mkdir -p "$T/home"
vault_start_dev
# credentials only from the environment the test gives (no ~/.vault-token)
export HOME="$T/home" VAULT_TOKEN=root
unset VAULT_ADDR VAULT_CACERT VAULT_NAMESPACE VAULT_CLIENT_CERT VAULT_CLIENT_KEY
S="vault:$VAULT_URL/secret/attestkey/web"
read_cert() { vcli kv get -field=certificate "secret/attestkey/web/$2"; }

store_checks "$S"
usage_checks "$S"

# --- the layout the broker's Vault store reads
vcli kv get -format=json secret/attestkey/web/selfsigned >"$T/ss.json"
check "one KV v2 secret per key, holding exactly private_key and certificate" \
	test "$(jq -c '.data.data | keys' "$T/ss.json")" = '["certificate","private_key"]'
check "private_key is a PKCS#8 PEM" \
	sh -c "jq -r .data.data.private_key '$T/ss.json' | openssl pkey -noout"
jq -r .data.data.private_key "$T/ss.json" | grep -q "^-----BEGIN PRIVATE KEY-----"
check "... (BEGIN PRIVATE KEY)" test $? = 0
check "it is the key show describes" test "$(jq -r .data.data.private_key "$T/ss.json" |
	openssl pkey -pubout -outform DER | sha256sum | cut -d' ' -f1)" = "$(key show --store "$S" selfsigned && field spki_sha256)"
rm -f "$T/ss.json"
vcli kv get -format=json secret/attestkey/web/gen-p384 >"$T/p.json"
check "a key without a certificate has no certificate field" \
	test "$(jq -c '.data.data | keys' "$T/p.json")" = '["private_key"]'
rm -f "$T/p.json"
check "versions are Vault's: rotate made KV version 2" \
	test "$(vcli kv metadata get -format=json secret/attestkey/web/gen-p256 | jq .data.current_version)" = 2
check "delete --version destroyed version 1 in Vault" \
	test "$(vcli kv metadata get -format=json secret/attestkey/web/gen-p256 | jq '.data.versions."1".destroyed')" = true
check "delete NAME removed the secret's metadata too" \
	sh -c "! HOME='$T/vhome' VAULT_ADDR='$VAULT_URL' VAULT_TOKEN=root '$VAULT' kv metadata get secret/attestkey/web/gen-rsa3072x >/dev/null 2>&1"
# a secret written by the vault CLI (as an operator may) is served and listed
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/op.key" 2>/dev/null
vcli kv put secret/attestkey/web/byhand private_key=@"$T/op.key" >/dev/null
check "a secret put by the vault CLI is listed at its version" \
	sh -c "'$AK_TOOL' key list --store '$S' | grep -q '^byhand 1 p256 '"
vcli kv put secret/attestkey/web/notakey private_key=hello >/dev/null
refuse_msg "a secret that holds no PKCS#8 key is refused by show, naming it" \
	"secret/attestkey/web/notakey version 1: no \"PRIVATE KEY\" PEM block" \
	"$AK_TOOL" key show --store "$S" notakey
key list --store "$S"
check "list goes on past a bad secret, and says so" grep -q "^notakey ? ? ? (" "$T/key.out"
check "... and exits 1" test "$("$AK_TOOL" key list --store "$S" >/dev/null 2>&1; echo $?)" = 1
vcli kv metadata delete secret/attestkey/web/notakey >/dev/null

# --- where the server and the token come from
check "vault:MOUNT/PATH takes the server from VAULT_ADDR" \
	env VAULT_ADDR="$VAULT_URL" "$AK_TOOL" key show --store vault:secret/attestkey/web gen-p256
refuse_msg "vault:MOUNT/PATH without VAULT_ADDR is refused" "no Vault server.*VAULT_ADDR" \
	"$AK_TOOL" key list --store vault:secret/attestkey/web
refuse_msg "a location without MOUNT/PATH is refused" "names no MOUNT/PATH" \
	"$AK_TOOL" key list --store "vault:$VAULT_URL/secret"
refuse_msg "no token at all is refused" "no Vault token.*VAULT_TOKEN" \
	env -u VAULT_TOKEN "$AK_TOOL" key list --store "$S"
echo root >"$T/home/.vault-token"
check "the vault CLI's ~/.vault-token is used when VAULT_TOKEN is unset" \
	env -u VAULT_TOKEN "$AK_TOOL" key show --store "$S" gen-p256
rm -f "$T/home/.vault-token"

# --- Vault's refusals
refuse_msg "a bad token: Vault's 403, named" "403" env VAULT_TOKEN=bogus "$AK_TOOL" key list --store "$S"
vcli policy write readonly - >/dev/null <<'EOP'
path "secret/data/attestkey/web/*" { capabilities = ["read"] }
path "secret/metadata/attestkey/web/*" { capabilities = ["read", "list"] }
path "secret/metadata/attestkey/web" { capabilities = ["list"] }
EOP
RO=$(vcli token create -policy=readonly -field=token)
check "a read-only token can list" env VAULT_TOKEN="$RO" "$AK_TOOL" key list --store "$S"
refuse_msg "a read-only token cannot generate: 403 names the policy and the path" \
	"refused writing secret/attestkey/web/newkey \\(403: the token's policy" \
	env VAULT_TOKEN="$RO" "$AK_TOOL" key generate --store "$S" --type p256 newkey
refuse_msg "... nor delete" "403" env VAULT_TOKEN="$RO" "$AK_TOOL" key delete --store "$S" gen-p384
refuse_msg "a missing key: Vault's 404 as 'no key'" "no key 'nothere' in Vault at secret/attestkey/web" \
	"$AK_TOOL" key show --store "$S" nothere
refuse_msg "an unreachable Vault is refused, naming it" "127.0.0.1:1|unreachable|connect" \
	"$AK_TOOL" key list --store vault:http://127.0.0.1:1/secret/attestkey/web

# --- the broker's Vault store serves what the CLI made (token web reads
# secret/attestkey/web, AppRole with the policy of docs/vault.md)
vault_approle broker "$VAULT_BROKER_POLICY" token_ttl=1h
vault_broker_conf
rm -f "$T/keys/web/"*.key
start_broker
"$AK_PROBE" "$AK_MODULE" hold 1234 </dev/null >"$T/hold.out" 2>&1
check "a login gets the keys the CLI put in Vault" grep -q "^login: CKR_OK" "$T/hold.out"
for n in gen-rsa2048 gen-p521 gen-ed25519 selfsigned imported; do
	check "the guest signs with $n" grep -q "^sign $n .*: CKR_OK" "$T/hold.out"
done
check "the audit line names gen-p256 at version 2 (rotated by the CLI)" \
	sh -c "tail -n 1 '$T/audit.jsonl' | jq -e '.key_versions.\"gen-p256\" == 2'"
key show --store "$S" gen-p256
check "the guest's gen-p256 has the CKA_ID show printed" test "$(guest_id gen-p256)" = "$(field cka_id)"
old_id=$(field cka_id)
key rotate --store "$S" gen-p256 && key show --store "$S" gen-p256
check "after attestkey key rotate, a new login gets version 3 ($(field cka_id))" \
	test "$(guest_id gen-p256)" = "$(field cka_id)" -a "$(field cka_id)" != "$old_id"
check "... and the audit line says version 3" \
	sh -c "tail -n 1 '$T/audit.jsonl' | jq -e '.key_versions.\"gen-p256\" == 3'"
stop_broker
vault_stop

# --- TLS with VAULT_CACERT and a client certificate, and a sealed Vault
vault_start_tls
S="vault:$VAULT_URL/secret/attestkey/web"
export VAULT_TOKEN="$VAULT_ROOT"
tls_env() { env VAULT_CACERT="$T/vpki/ca.pem" VAULT_CLIENT_CERT="$T/vpki/client.crt" VAULT_CLIENT_KEY="$T/vpki/client.key" "$@"; }
check "over TLS with VAULT_CACERT and VAULT_CLIENT_CERT/KEY: generate" \
	tls_env "$AK_TOOL" key generate --store "$S" --type ed25519 tlskey
check "... and show" tls_env "$AK_TOOL" key show --store "$S" tlskey
refuse_msg "without VAULT_CACERT the server's certificate is refused" "." \
	env VAULT_CLIENT_CERT="$T/vpki/client.crt" VAULT_CLIENT_KEY="$T/vpki/client.key" \
	"$AK_TOOL" key list --store "$S"
refuse_msg "without a client certificate the server refuses" "." \
	env VAULT_CACERT="$T/vpki/ca.pem" "$AK_TOOL" key list --store "$S"
vcli operator seal >/dev/null
refuse_msg "a sealed Vault: 503, named" "sealed" tls_env "$AK_TOOL" key show --store "$S" tlskey
vault_stop

no_private_key_output
finish
