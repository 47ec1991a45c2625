# SPDX-License-Identifier: Apache-2.0
# A real HashiCorp Vault server for the tests (sourced after lib.sh): found
# as $VAULT_BIN, else `vault` on PATH, else ../shared/vault/vault beside the
# source tree; without one the test is an explicit TAP skip. Never an
# imitation of Vault.
#
#   vault_find                  sets VAULT (or skip_all)
#   vault_start_dev             dev server, unsealed, KV v2 at secret/, root
#                               token "root"; sets VAULT_URL, VAULT_PID
#   vault_start_tls             non-dev server: file storage, TLS listener
#                               requiring a client certificate; initialised,
#                               unsealed, KV v2 at secret/; sets VAULT_URL,
#                               VAULT_PID, VAULT_ROOT, VAULT_UNSEAL and the
#                               PKI in $T/vpki (ca.pem, client.crt/.key)
#   vcli ARGS...                the vault CLI against that server as root
#   vault_approle NAME POLICY_HCL [ROLE OPTIONS...]
#                               AppRole NAME with that policy; sets ROLE_ID
#                               and writes its secret_id to $T/NAME.secret_id
#   vault_stop                  stop the server
#   vault_put_keys              token web's keys (setup_world's files) as
#                               KV v2 secrets secret/attestkey/web/{tls,ec}
#   vault_broker_conf [LINES...]
#                               write_broker_conf with token web's keys from
#                               [keystore vault] (AppRole broker, made by
#                               vault_world); LINES are added to that section;
#                               $VAULT_TOKEN_EXTRA (array): more [token web] lines
#   vault_world                 vault_put_keys, the AppRole "broker" with
#                               $VAULT_BROKER_POLICY, vault_broker_conf, and
#                               the key files removed: they exist only in Vault
#   vault_rotate_tls NAME       a new RSA key and certificate (NAME in
#                               $T/pki) become the next version of
#                               secret/attestkey/web/tls, and nginx's
#                               certificate file ($T/keys/web/tls.crt)

vault_find() {
	VAULT=""
	if [ -n "${VAULT_BIN:-}" ]; then
		VAULT=$VAULT_BIN
	elif command -v vault >/dev/null 2>&1; then
		VAULT=$(command -v vault)
	elif [ -x "$top_srcdir/../shared/vault/vault" ]; then
		VAULT=$(cd "$top_srcdir/../shared/vault" && pwd)/vault
	fi
	[ -n "$VAULT" ] && [ -x "$VAULT" ] ||
		skip_all "no Vault server binary: set VAULT_BIN, put vault on PATH, or provide ../shared/vault/vault"
	mkdir -p "$T/vhome"
}

VAULT_URL=""
VAULT_PID=""
VAULT_ROOT=root
VAULT_TLS=""

# vcli ARGS...: the vault CLI as root (its token helper writes into $T)
vcli() {
	if [ -n "$VAULT_TLS" ]; then
		HOME="$T/vhome" VAULT_ADDR="$VAULT_URL" VAULT_TOKEN="$VAULT_ROOT" \
			VAULT_CACERT="$T/vpki/ca.pem" VAULT_CLIENT_CERT="$T/vpki/client.crt" \
			VAULT_CLIENT_KEY="$T/vpki/client.key" "$VAULT" "$@"
	else
		HOME="$T/vhome" VAULT_ADDR="$VAULT_URL" VAULT_TOKEN="$VAULT_ROOT" "$VAULT" "$@"
	fi
}

# vault_health: the HTTP status of sys/health (200 active, 501 not
# initialised, 503 sealed), 000 when nothing answers
vault_health() {
	if [ -n "$VAULT_TLS" ]; then
		curl -s -o /dev/null -w '%{http_code}' --cacert "$T/vpki/ca.pem" \
			--cert "$T/vpki/client.crt" --key "$T/vpki/client.key" "$VAULT_URL/v1/sys/health"
	else
		curl -s -o /dev/null -w '%{http_code}' "$VAULT_URL/v1/sys/health"
	fi
}

vault_start_dev() {
	VAULT_TLS=""
	VAULT_ROOT=root
	local try port
	for try in 1 2 3 4 5 6 7 8; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		ss -Htln "sport = :$port" 2>/dev/null | grep -q . && continue
		VAULT_URL="http://127.0.0.1:$port"
		HOME="$T/vhome" "$VAULT" server -dev -dev-root-token-id=root \
			-dev-listen-address="127.0.0.1:$port" >>"$T/vault.log" 2>&1 &
		VAULT_PID=$!
		AK_PIDS="$AK_PIDS $VAULT_PID"
		for _ in $(seq 100); do
			[ "$(vault_health)" = 200 ] && return 0
			kill -0 "$VAULT_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$VAULT_PID" 2>/dev/null
		wait "$VAULT_PID" 2>/dev/null
	done
	tail -n 20 "$T/vault.log" | diag_stream
	bail "the Vault dev server did not start"
}

# vault_pki: a CA, Vault's server certificate and a client certificate
vault_pki() {
	mkdir -p "$T/vpki"
	make_ca "$T/vpki" ca || bail "cannot make the Vault CA"
	make_leaf "$T/vpki" server ca "ec:$T/pki/p256.param" || bail "cannot make Vault's certificate"
	make_leaf "$T/vpki" client ca "ec:$T/pki/p256.param" || bail "cannot make the client certificate"
	chmod 600 "$T/vpki/"*.key
}

# vault_start_tls: a Vault server with file storage in $T/vault-data and
# TLS with client certificates, initialised and unsealed; $VAULT_HCL_EXTRA,
# when set, is added to its configuration
vault_start_tls() {
	local port try init
	[ -f "$T/pki/p256.param" ] || { mkdir -p "$T/pki"; openssl ecparam -name prime256v1 -out "$T/pki/p256.param"; }
	vault_pki
	VAULT_TLS=1
	for try in 1 2 3 4 5 6 7 8; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		ss -Htln "sport = :$port" 2>/dev/null | grep -q . && continue
		VAULT_URL="https://127.0.0.1:$port"
		rm -rf "$T/vault-data"
		cat >"$T/vault.hcl" <<EOH
storage "file" {
  path = "$T/vault-data"
}
listener "tcp" {
  address = "127.0.0.1:$port"
  tls_cert_file = "$T/vpki/server.crt"
  tls_key_file = "$T/vpki/server.key"
  tls_client_ca_file = "$T/vpki/ca.pem"
  tls_require_and_verify_client_cert = true
}
disable_mlock = true
api_addr = "$VAULT_URL"
${VAULT_HCL_EXTRA:-}
EOH
		HOME="$T/vhome" "$VAULT" server -config="$T/vault.hcl" >>"$T/vault.log" 2>&1 &
		VAULT_PID=$!
		AK_PIDS="$AK_PIDS $VAULT_PID"
		for _ in $(seq 100); do
			[ "$(vault_health)" = 501 ] && break
			kill -0 "$VAULT_PID" 2>/dev/null || break
			sleep 0.1
		done
		[ "$(vault_health)" = 501 ] && break
		kill "$VAULT_PID" 2>/dev/null
		wait "$VAULT_PID" 2>/dev/null
		VAULT_PID=""
	done
	[ -n "$VAULT_PID" ] || { tail -n 20 "$T/vault.log" | diag_stream; bail "the Vault TLS server did not start"; }
	init=$(vcli operator init -key-shares=1 -key-threshold=1 -format=json) || bail "vault operator init failed"
	VAULT_UNSEAL=$(printf '%s' "$init" | jq -r '.unseal_keys_b64[0]')
	VAULT_ROOT=$(printf '%s' "$init" | jq -r '.root_token')
	vault_unseal
	vcli secrets enable -path=secret kv-v2 >/dev/null || bail "cannot enable KV v2"
}

vault_unseal() {
	vcli operator unseal "$VAULT_UNSEAL" >/dev/null || bail "vault operator unseal failed"
	for _ in $(seq 100); do
		[ "$(vault_health)" = 200 ] && return 0
		sleep 0.1
	done
	bail "Vault did not become active after unseal"
}

vault_approle() {
	local name=$1 policy=$2
	shift 2
	vcli auth list -format=json | jq -e '."approle/"' >/dev/null 2>&1 ||
		vcli auth enable approle >/dev/null || bail "cannot enable AppRole"
	printf '%s\n' "$policy" | vcli policy write "$name" - >/dev/null || bail "cannot write policy $name"
	vcli write "auth/approle/role/$name" token_policies="$name" "$@" >/dev/null ||
		bail "cannot create the AppRole $name"
	ROLE_ID=$(vcli read -field=role_id "auth/approle/role/$name/role-id") || bail "no role_id"
	vcli write -f -field=secret_id "auth/approle/role/$name/secret-id" >"$T/$name.secret_id" ||
		bail "no secret_id"
	chmod 600 "$T/$name.secret_id"
}

vault_stop() {
	[ -n "$VAULT_PID" ] && kill "$VAULT_PID" 2>/dev/null && wait "$VAULT_PID" 2>/dev/null
	VAULT_PID=""
}

# The policy of docs/vault.md: read and list under secret/attestkey/
VAULT_BROKER_POLICY='path "secret/data/attestkey/*" { capabilities = ["read"] }
path "secret/metadata/attestkey/*" { capabilities = ["list"] }'

vault_put_keys() {
	local k
	for k in tls ec; do
		vcli kv put "secret/attestkey/web/$k" private_key=@"$T/keys/web/$k.key" \
			certificate=@"$T/keys/web/$k.crt" >/dev/null || bail "cannot put key $k in Vault"
	done
}

VAULT_TOKEN_EXTRA=()
vault_broker_conf() {
	local l
	write_broker_conf "keystore = vault" "${VAULT_TOKEN_EXTRA[@]}"
	printf '\n[keystore vault]\ntype = vault\naddr = %s\nrole_id = %s\nsecret_id_file = %s\n' \
		"$VAULT_URL" "$ROLE_ID" "$T/broker.secret_id" >>"$T/broker.conf"
	for l in "$@"; do echo "$l" >>"$T/broker.conf"; done
}

vault_world() {
	vault_put_keys
	vault_approle broker "$VAULT_BROKER_POLICY" token_ttl=1h
	vault_broker_conf
	rm -f "$T/keys/web/"*.key
}

vault_rotate_tls() {
	make_leaf "$T/pki" "$1" web-ca rsa:2048 || bail "cannot make the key $1"
	openssl pkcs8 -topk8 -nocrypt -in "$T/pki/$1.key" -out "$T/pki/$1.p8" || bail "openssl pkcs8 failed"
	vcli kv put secret/attestkey/web/tls private_key=@"$T/pki/$1.p8" \
		certificate=@"$T/pki/$1.crt" >/dev/null || bail "cannot put the new key in Vault"
	rm -f "$T/pki/$1.p8" "$T/pki/$1.key"
	cp "$T/pki/$1.crt" "$T/keys/web/tls.crt"
}
