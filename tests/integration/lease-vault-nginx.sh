#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 12 item 6: rotation in a real Vault under a running nginx, with
# curl in a loop. nginx (2 workers, libp11's engine) holds tls, a Vault KV
# v2 secret released by an AppRole broker with leases of 3 s. A new version
# is written to Vault while curl loops: the master's next renewal brings
# it (the audit names version 2 for that renewal, the module's public view
# holds the new certificate); the workers, which never renew
# (docs/lifecycle.md "Fork"), keep serving the old key with the old
# certificate; every handshake succeeds (a TLS handshake verifies the
# server's signature against the certificate it sent: a success is a
# matching pair, curl -k or not). A new master then serves version 2's
# certificate and signs with its key. lease-nginx.sh does the same with the
# file store, plus nginx -s reload, rotate_in_place = no and revocation.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
. "$(dirname "$0")/vault-lib.sh"
. "$(dirname "$0")/lease-lib.sh"
need nginx curl openssl jq
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"
vault_find

setup_world
vault_start_dev
vault_world
sed -i "s/^\[broker\]\$/[broker]\nlease = 3/" "$T/broker.conf"
start_broker
LOG="$T/nginx/logs/error.log" # the module's lines of nginx's processes
cert_fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
v1_fp=$(cert_fp "$T/pki/tls.crt")

if start_nginx; then ok "nginx starts with a key released from Vault"; else
	not_ok "nginx starts with a key released from Vault"; diag_stream <"$T/nginx/start.log"
	diag_stream <"$LOG"; finish; fi
master=$NGINX_PID

curl_loop vault &
loop=$!
check "the master renews its lease while curl loops" wait_for "$LOG" "lease renewed in pid $master:"
check "nginx serves version 1's certificate" test "$(served_fp)" = "$v1_fp"

# version 2 in Vault (and, as a deployment hook would, in nginx's
# certificate file, which nginx reads only at a (re)load)
vault_rotate_tls tls-v2
v2_fp=$(cert_fp "$T/pki/tls-v2.crt")
check "Vault's current version of tls is 2" \
	sh -c "HOME='$T/vhome' VAULT_ADDR='$VAULT_URL' VAULT_TOKEN=root '$VAULT' kv metadata get -format=json secret/attestkey/web/tls | jq -e '.data.current_version == 2'"
check "a renewal of the master brought version 2 (key and certificate)" wait_token_cert "$v2_fp"
check "the broker audited a release of version 2 of tls" \
	jq -s -e 'any(.[]; .event == "release" and .key_versions.tls == 2)' "$T/audit.jsonl"
check "the workers still serve version 1's certificate (with version 1's key)" \
	test "$(served_fp)" = "$v1_fp"
n=$(wc -l <"$T/vault.codes")
check "requests go on after the rotation" wait_for "$T/vault.codes" '^' $((n + 20))
stop_loop "$loop"
check "every handshake succeeded across the rotation ($(wc -l <"$T/vault.codes") handshakes)" \
	all_200 vault
check "every renewal of the master is a release in the audit" all_audited "$LOG" "$master" 1

# a new master logs in afresh: version 2's key with version 2's certificate
stop_nginx
if start_nginx; then ok "nginx starts again (a new master)"; else
	not_ok "nginx starts again (a new master)"; diag_stream <"$T/nginx/start.log"; finish; fi
check "the new master serves version 2's certificate" test "$(served_fp)" = "$v2_fp"
check "and signs with version 2's key (curl --cacert verifies the handshake)" \
	sh -c "curl -sS --cacert '$T/pki/web-ca.pem' https://localhost:$NGINX_PORT/ | grep -q 'never touched'"
check "the audit log names both versions of tls" \
	sh -c "grep '\"release\"' '$T/audit.jsonl' | jq -r '.key_versions.tls' | sort -u | tr '\n' ' ' | grep -qx '1 2 '"
stop_nginx
stop_broker
vault_stop
finish
