#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# End to end with Vault (issue 10 item 6): nginx's TLS key is a Vault KV v2
# secret, read by an AppRole-authenticated broker and released to the
# attested guest; no key file exists on the broker's disk. The key is then
# rotated in Vault: the next C_Login (nginx started again) gets the new
# version, nginx serves the new certificate, and the audit log names both
# versions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
. "$(dirname "$0")/vault-lib.sh"
need nginx curl openssl jq
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"
vault_find

setup_world
vault_start_dev
vault_world
check "the key store directory holds no private key" \
	test -z "$(find "$T/keys" -name '*.key')"
start_broker

# served_fp: the SHA-256 fingerprint of the certificate nginx serves
served_fp() {
	openssl s_client -connect "127.0.0.1:$NGINX_PORT" -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256
}
cert_fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }

if start_nginx; then ok "nginx starts with a key released from Vault"; else
	not_ok "nginx starts with a key released from Vault"; diag_stream <"$T/nginx/start.log"
	diag_stream <"$T/broker.log"; finish; fi
check "curl --cacert gets the page" \
	sh -c "curl -sS --cacert '$T/pki/web-ca.pem' https://localhost:$NGINX_PORT/ | grep -q 'never touched'"
check "nginx serves the certificate of version 1" \
	test "$(served_fp)" = "$(cert_fp "$T/pki/tls.crt")"
check "the release names version 1 of tls" \
	sh -c "grep '\"release\"' '$T/audit.jsonl' | tail -n 1 | jq -e '.key_versions.tls == 1'"
stop_nginx

# rotate: a new key and certificate become version 2 of secret/attestkey/web/tls
vault_rotate_tls tls-v2
check "Vault's current version of tls is 2" \
	sh -c "HOME='$T/vhome' VAULT_ADDR='$VAULT_URL' VAULT_TOKEN=root '$VAULT' kv metadata get -format=json secret/attestkey/web/tls | jq -e '.data.current_version == 2'"
if start_nginx; then ok "nginx starts again after the rotation"; else
	not_ok "nginx starts again after the rotation"; diag_stream <"$T/nginx/start.log"; finish; fi
check "curl --cacert gets the page with the new key" \
	sh -c "curl -sS --cacert '$T/pki/web-ca.pem' https://localhost:$NGINX_PORT/ | grep -q 'never touched'"
check "nginx serves the certificate of version 2" \
	test "$(served_fp)" = "$(cert_fp "$T/pki/tls-v2.crt")"
check "the new C_Login got version 2 of tls" \
	sh -c "grep '\"release\"' '$T/audit.jsonl' | tail -n 1 | jq -e '.key_versions.tls == 2'"
check "the audit log names both versions of tls" \
	sh -c "grep '\"release\"' '$T/audit.jsonl' | jq -r '.key_versions.tls' | sort -u | tr '\n' ' ' | grep -qx '1 2 '"
check "version 1 is still readable in Vault until deleted" \
	sh -c "HOME='$T/vhome' VAULT_ADDR='$VAULT_URL' VAULT_TOKEN=root '$VAULT' kv get -version=1 -field=certificate secret/attestkey/web/tls | cmp -s - '$T/pki/tls.crt'"
stop_nginx
stop_broker
vault_stop
finish
