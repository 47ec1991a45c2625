#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Fault injection against the real Vault (issue 13 item 3; the inventory:
# docs/security.md "Fault injection"; sealed, revoked token, 403, 404, 429
# and unreachable are in vault-broker.sh): a slow Vault, stopped (SIGSTOP)
# for longer than the broker's Vault timeout, and a Vault answering 500 (its
# file storage corrupted under it). The broker refuses the release 503
# keystore_unavailable (within its timeout), naming the cause; the module
# holds no key; once Vault runs again, or its storage is restored, the
# broker serves again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
need curl jq openssl
vault_find

VAULT_TIMEOUT=1 # the broker's [keystore vault] timeout, seconds

setup_world
# login NAME: a C_Login through the module; output in $T/NAME.out and
# .err, its wall time in whole seconds in $T/NAME.secs
login() {
	local t0=$SECONDS
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>"$T/$1.err"
	echo $((SECONDS - t0)) >"$T/$1.secs"
}

# file storage read on every request (no cache), so a corrupted entry is
# what Vault reads next
VAULT_HCL_EXTRA="disable_cache = true"
vault_start_tls
vault_world
TLS_CONF=("ca_file = $T/vpki/ca.pem" "client_cert = $T/vpki/client.crt" "client_key = $T/vpki/client.key")
vault_broker_conf "${TLS_CONF[@]}" "timeout = $VAULT_TIMEOUT" "retries = 0"
start_broker
login first
check "a login gets both keys from Vault" grep -q "private_keys: 2" "$T/first.out"

# slow: Vault stopped; the broker's read gets no answer
kill -STOP "$VAULT_PID"
login slow
kill -CONT "$VAULT_PID"
check "slow: C_Login fails" grep -q "^login: CKR_FUNCTION_REJECTED$" "$T/slow.out"
check "slow: the module names the broker's 503 keystore_unavailable" \
	grep -Eq "keystore_unavailable: .*HTTP 503 from $BROKER_URL" "$T/slow.err"
check "slow: no key is held (none listed, C_Logout: CKR_USER_NOT_LOGGED_IN)" \
	sh -c "grep -q 'private_keys: 0' '$T/slow.out' && grep -q '^logout: CKR_USER_NOT_LOGGED_IN$' '$T/slow.out'"
check "slow: refused as keystore_unavailable in the audit log" \
	refusal_audit "$T/slow.err" '.reason == "keystore_unavailable" and .event == "refuse"'
check "slow: the broker's log names Vault, the request and the timeout" \
	grep -Eq "refused keystore_unavailable: key store: Vault at $VAULT_URL unreachable: GET .*: no answer within the $((VAULT_TIMEOUT * 1000)) ms timeout" "$T/broker.log"
# the broker's Vault timeout, plus slack for the attestation and a loaded machine
check "slow: within the broker's Vault timeout + slack ($(cat "$T/slow.secs") s <= $((VAULT_TIMEOUT + 5)) s)" \
	test "$(cat "$T/slow.secs")" -le $((VAULT_TIMEOUT + 5))
diag_stream <"$T/slow.err"
grep "refused keystore_unavailable" "$T/broker.log" | tail -n 1 | diag_stream

# recovered: Vault runs again
for _ in $(seq 50); do [ "$(vault_health)" = 200 ] && break; sleep 0.1; done
login back
check "back: Vault running again, the broker serves again" grep -q "private_keys: 2" "$T/back.out"

# 500: the storage entries of the keys' metadata corrupted under a running
# Vault (what a failing disk or a broken storage backend does); Vault
# answers 500 with its error, the broker refuses, and serves again once
# the entries are back
find "$T/vault-data/logical" -path '*/metadata/*' -type f >"$T/entries"
check "500: Vault's storage holds the keys' metadata entries (2)" test "$(wc -l <"$T/entries")" = 2
while read -r e; do cp -p "$e" "$e.bak" && echo garbage >"$e"; done <"$T/entries"
login v500
check "500: C_Login fails, no key held (none listed, C_Logout: CKR_USER_NOT_LOGGED_IN)" \
	sh -c "grep -q '^login: CKR_FUNCTION_REJECTED$' '$T/v500.out' && grep -q 'private_keys: 0' '$T/v500.out' && grep -q '^logout: CKR_USER_NOT_LOGGED_IN$' '$T/v500.out'"
check "500: refused as keystore_unavailable in the audit log" \
	refusal_audit "$T/v500.err" '.reason == "keystore_unavailable" and .event == "refuse"'
check "500: the broker's log names Vault's HTTP 500 and its error" \
	grep -Eq "refused keystore_unavailable: key store: Vault.*HTTP 500.*invalid character" "$T/broker.log"
grep "refused keystore_unavailable" "$T/broker.log" | tail -n 1 | diag_stream
while read -r e; do mv "$e.bak" "$e"; done <"$T/entries"
login back500
check "500: the entries restored, the broker serves again" grep -q "private_keys: 2" "$T/back500.out"
stop_broker # SIGTERM: in the sanitizer build LeakSanitizer reports at exit
check "no sanitizer report in the broker's log (ASan builds)" \
	bash -c "! grep -q 'ERROR: \\(Address\\|Leak\\)Sanitizer\\|runtime error' '$T/broker.log'"
vault_stop
finish
