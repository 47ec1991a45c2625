#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The Vault KV v2 client (include/attestkey/vault.h, issue 10 item 1)
# against the real Vault server: KV v2 write, read, versions, list,
# metadata and destroy; AppRole login; token renewal; re-login after the
# token is revoked; a token file replaced after revocation; 403 for a path
# the policy lacks (and no login storm for it); 404; TLS with a CA file and
# a client certificate; one TLS handshake for many requests (the pool); a
# sealed server mapped to "sealed", retried, and served again once unsealed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
need curl jq openssl
vault_find
PROBE="$top_builddir/tests/integration/vaultprobe"
[ -x "$PROBE" ] || bail "$PROBE not built"

# probe ENV... -- OPS...: run vaultprobe, output in $T/p.out (stderr too)
probe() {
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	env "${envs[@]}" "$PROBE" "$@" >"$T/p.out" 2>&1
	echo "rc=$?" >>"$T/p.out"
	cat "$T/p.out" >>"$T/all.out"
}
has() { grep -qF -- "$1" "$T/p.out"; }
show() { diag_stream <"$T/p.out"; }
expect() { local d=$1; shift; if has "$1"; then ok "$d"; else not_ok "$d"; diag "expected: $1"; show; fi; }

vault_start_dev
ROOT=(VP_ADDR="$VAULT_URL" VP_TOKEN=root)

# --- KV v2 with the root token
probe "${ROOT[@]}" -- write secret attestkey/web/tls '{"private_key":"one"}' -1 \
	write secret attestkey/web/tls '{"private_key":"two"}' -1 \
	write secret attestkey/web/tls '{"private_key":"x"}' 1 \
	read secret attestkey/web/tls 0 read secret attestkey/web/tls 1 \
	list secret attestkey/web list secret attestkey/none meta secret attestkey/web/tls
expect "KV v2 write creates version 1" "write: ok v=1"
expect "a second write creates version 2" "write: ok v=2"
expect "check-and-set with a stale version is refused as a bad request" \
	"write: bad request: Vault KV: secret/data/attestkey/web/tls: check-and-set 1 refused"
expect "read without a version gets the latest" 'read: ok v=2 {"private_key":"two"}'
expect "read of version 1 gets version 1" 'read: ok v=1 {"private_key":"one"}'
expect "list names the secret under the prefix" 'list: ok ["tls"]'
expect "list of an absent prefix is empty, not an error" 'list: ok []'
expect "metadata names the current version" 'meta: ok {"current_version":2}'
vcli kv delete -versions=2 secret/attestkey/web/tls >/dev/null
probe "${ROOT[@]}" -- read secret attestkey/web/tls 2 read secret attestkey/nothing 0 \
	destroy secret attestkey/web/tls read secret attestkey/web/tls 1
expect "a deleted version is not found, and said to be deleted" \
	"read: not found: Vault KV: secret/data/attestkey/web/tls version 2 is deleted"
expect "a missing secret is not found (404)" "read: not found: Vault KV: no secret at secret/data/attestkey/nothing"
expect "destroy removes every version" "destroy: ok"
expect "after destroy nothing is left" "read: not found: Vault KV: no secret at secret/data/attestkey/web/tls"

# --- AppRole: a policy that reads attestkey/* only; token TTL 9 s
POLICY='path "secret/data/attestkey/*" { capabilities = ["read"] }
path "secret/metadata/attestkey/*" { capabilities = ["list", "read"] }'
vault_approle broker "$POLICY" token_ttl=9s token_max_ttl=1h
vcli kv put secret/attestkey/web/tls private_key=pem >/dev/null
vcli kv put secret/other/tls private_key=pem >/dev/null
ROLE=(VP_ADDR="$VAULT_URL" VP_ROLE_ID="$ROLE_ID" VP_SECRET_ID_FILE="$T/broker.secret_id")
probe "${ROLE[@]}" -- read secret attestkey/web/tls 0 stats read secret other/tls 0 stats \
	sleep 7 maintain stats read secret attestkey/web/tls 0 \
	sh "HOME=$T/vhome VAULT_ADDR=$VAULT_URL VAULT_TOKEN=root $VAULT lease revoke -prefix auth/approle/login >/dev/null" \
	read secret attestkey/web/tls 0 stats
expect "AppRole login, then a read the policy allows" 'read: ok v=1 {"private_key":"pem"}'
expect "one login for the reads" "stats: requests=2 connects=1 logins=1 renewals=0"
expect "a path the policy lacks is forbidden (403)" \
	"read: forbidden: Vault: GET secret/data/other/tls: HTTP 403 (forbidden): \"1 error occurred: * permission denied\""
expect "a policy 403 does not log in again (the token is alive)" \
	"stats: requests=4 connects=1 logins=1 renewals=0"
expect "with less than a third of its TTL left the token is renewed (renew-self)" \
	"stats: requests=5 connects=1 logins=1 renewals=1"
expect "a revoked token is replaced by an AppRole login, and the read succeeds" \
	"stats: requests=10 connects=1 logins=2 renewals=1"
expect "the revocation is logged" "refused the client token (revoked or expired): obtaining a new one"
[ "$(grep -c '^read: ok' "$T/p.out")" = 3 ] && ok "every allowed read succeeded" || { not_ok "every allowed read succeeded"; show; }

# a renewal that fails (the token was revoked when it came due): AppRole
# login again. TTL 3 s: due after 2 s.
vault_approle short "$POLICY" token_ttl=3s token_max_ttl=1h
probe VP_ADDR="$VAULT_URL" VP_ROLE_ID="$ROLE_ID" VP_SECRET_ID_FILE="$T/short.secret_id" -- \
	stats sleep 2 \
	sh "HOME=$T/vhome VAULT_ADDR=$VAULT_URL VAULT_TOKEN=root $VAULT lease revoke -prefix auth/approle/login/ >/dev/null" \
	maintain stats read secret attestkey/web/tls 0
expect "renewal refused (revoked token): maintain logs in again" "maintain: ok"
expect "... one renewal tried and failed, a second login" "stats: requests=3 connects=1 logins=2 renewals=0"
expect "... and says why" "logging in again by AppRole"
expect "... and the new token reads" 'read: ok v=1 {"private_key":"pem"}'

printf 'not-the-secret-id\n' >"$T/bad.secret_id"
probe VP_ADDR="$VAULT_URL" VP_ROLE_ID="$ROLE_ID" VP_SECRET_ID_FILE="$T/bad.secret_id" -- stats
expect "a wrong secret_id is refused at creation, naming Vault's answer" \
	"AppRole login at $VAULT_URL/v1/auth/approle/login refused: HTTP 400 \"invalid secret id\""
expect "... and the client is not created" "rc=2"

# --- a token file (as Vault Agent writes it), replaced after revocation;
# the token never appears in an output
TOK1=$(vcli token create -policy=broker -field=token)
printf '%s\n' "$TOK1" >"$T/token"
TOK2=$(vcli token create -policy=broker -field=token)
probe VP_ADDR="$VAULT_URL" VP_TOKEN_FILE="$T/token" -- read secret attestkey/web/tls 0 \
	read secret other/tls 0 \
	sh "HOME=$T/vhome VAULT_ADDR=$VAULT_URL VAULT_TOKEN=root $VAULT token revoke $TOK1 >/dev/null; echo $TOK2 >$T/token" \
	read secret attestkey/web/tls 0 stats
expect "token_file: a read" 'read: ok v=1 {"private_key":"pem"}'
[ "$(grep -c '^read: ok' "$T/p.out")" = 2 ] && ok "token_file: re-read after its token was revoked" ||
	{ not_ok "token_file: re-read after its token was revoked"; show; }
if grep -qF -e "$TOK1" -e "$TOK2" "$T/p.out"; then not_ok "no token in any message"; else ok "no token in any message"; fi

# --- many requests, one connection
ops=()
for _ in $(seq 20); do ops+=(read secret attestkey/web/tls 0); done
probe "${ROOT[@]}" -- "${ops[@]}" stats
expect "20 reads over one connection (plain HTTP)" "stats: requests=21 connects=1"
vault_stop

# --- TLS, a client certificate, the pool, and sealing
vault_start_tls
vcli kv put secret/attestkey/web/tls private_key=pem >/dev/null
TLS=(VP_ADDR="$VAULT_URL" VP_TOKEN="$VAULT_ROOT" VP_CA="$T/vpki/ca.pem"
	VP_CERT="$T/vpki/client.crt" VP_KEY="$T/vpki/client.key")
probe "${TLS[@]}" VP_NAMESPACE=team-a -- "${ops[@]}" stats
expect "TLS with a CA file and a client certificate: a read" 'read: ok v=1 {"private_key":"pem"}'
expect "20 reads over TLS make one connection: one TLS handshake" "stats: requests=21 connects=1"
probe VP_ADDR="$VAULT_URL" VP_TOKEN="$VAULT_ROOT" VP_CA="$T/vpki/ca.pem" VP_RETRIES=0 -- \
	read secret attestkey/web/tls 0
expect "without the client certificate Vault refuses the TLS handshake" "read: unreachable: Vault at $VAULT_URL unreachable"
probe VP_ADDR="$VAULT_URL" VP_TOKEN="$VAULT_ROOT" VP_CERT="$T/vpki/client.crt" \
	VP_KEY="$T/vpki/client.key" VP_RETRIES=0 -- read secret attestkey/web/tls 0
expect "without the CA file Vault's certificate is not trusted" "read: unreachable:"
expect "... and the message says why" "SSL"

vault_approle sealtest "$POLICY"
probe "${TLS[@]}" VP_RETRIES=2 -- read secret attestkey/web/tls 0 stats \
	sh "HOME=$T/vhome VAULT_ADDR=$VAULT_URL VAULT_TOKEN=$VAULT_ROOT VAULT_CACERT=$T/vpki/ca.pem VAULT_CLIENT_CERT=$T/vpki/client.crt VAULT_CLIENT_KEY=$T/vpki/client.key $VAULT operator seal >/dev/null" \
	read secret attestkey/web/tls 0 stats
expect "a sealed Vault answers 503, mapped to sealed" \
	"read: sealed or standby: Vault: GET secret/data/attestkey/web/tls: HTTP 503 (sealed or standby): \"error performing token check: Vault is sealed\""
expect "503 is retried (one try, two retries)" "stats: requests=5 connects=1"
probe "${TLS[@]}" VP_ROLE_ID="$ROLE_ID" VP_TOKEN= VP_SECRET_ID_FILE="$T/sealtest.secret_id" -- stats
expect "an AppRole login to a sealed Vault says sealed" "HTTP 503 (sealed or standby): \"Vault is sealed\""
vault_unseal
probe "${TLS[@]}" -- read secret attestkey/web/tls 0
expect "unsealed again, the read succeeds" 'read: ok v=1 {"private_key":"pem"}'
vault_stop
check "no sanitizer report from any run of the client (ASan builds)" \
	bash -c "! grep -q 'ERROR: \\(Address\\|Leak\\)Sanitizer\\|runtime error' '$T/all.out'"
finish
