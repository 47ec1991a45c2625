#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 11 item 2: the broker's metrics listener ([broker] metrics_listen).
# /healthz answers; /metrics is Prometheus text that promtool accepts and
# whose counters move with a release (by token) and a refusal (by reason);
# /readyz is 200, then 503 naming the part that is not ready when the file
# store's directory is gone or the Vault store's Vault is stopped; a port
# in use is refused with a clear error; metrics_listen = off opens nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
need curl jq openssl promtool ss

setup_world
CURL="curl -s --cacert $T/pki/broker-ca.pem"

# metrics_conf LINES...: the [broker] lines added to $T/broker.conf
metrics_conf() {
	local l
	for l in "$@"; do sed -i "/^\[broker\]\$/a $l" "$T/broker.conf"; done
}
# mget PATH: GET on the metrics listener; prints the status, body in $T/m.out
mget() { curl -s -o "$T/m.out" -w '%{http_code}' "$METRICS_URL$1"; }
# scrape FILE: /metrics into FILE
scrape() { curl -s -f -o "$1" "$METRICS_URL/metrics"; }
# value FILE SERIES: a sample's value (0 when the series is absent)
value() { awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"; }
# listening PID: how many TCP sockets PID listens on
listening() { ss -Htlnp 2>/dev/null | grep -c "pid=$1,"; }
# ready_becomes CODE: poll /readyz (cached BROKER_READY_CACHE_S = 5 s) until
# it answers CODE, for up to 15 s
ready_becomes() {
	local code=""
	for _ in $(seq 150); do
		code=$(mget /readyz)
		[ "$code" = "$1" ] && return 0
		sleep 0.1
	done
	diag "/readyz answered $code, not $1"
	return 1
}
start_metrics_broker() {
	rm -f "$T/metrics.port"
	start_broker "$@"
	[ -s "$T/metrics.port" ] || bail "no metrics port file"
	METRICS_URL="http://127.0.0.1:$(cat "$T/metrics.port")"
}

# --- off: no listener, no port file
metrics_conf "metrics_listen = off" "metrics_port_file = $T/metrics.port"
start_broker
check "metrics_listen = off: no metrics port file" test ! -e "$T/metrics.port"
check "metrics_listen = off: the broker listens on one socket only" test "$(listening "$BROKER_PID")" -eq 1
stop_broker

# --- on, at a free loopback port
write_broker_conf
metrics_conf "metrics_listen = 127.0.0.1:0" "metrics_port_file = $T/metrics.port"
start_metrics_broker
check "metrics_listen on: the broker listens on two sockets" test "$(listening "$BROKER_PID")" -eq 2
check "/healthz answers 200" test "$(mget /healthz)" = 200
check "/healthz says ok" grep -qx ok "$T/m.out"
check "an unknown path is 404" test "$(mget /nope)" = 404
check "POST is 405" test "$(curl -s -o /dev/null -w '%{http_code}' -d x "$METRICS_URL/metrics")" = 405

scrape "$T/before.prom" || bail "cannot scrape /metrics"
check "a configured token shows before its first release" \
	grep -qx 'attestkey_releases_total{token="web"} 0' "$T/before.prom"
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/login.out" 2>&1
check "a login releases keys" grep -q "private_keys: [1-9]" "$T/login.out"
expect "a challenge for an unknown token is refused" "404 unknown_token" /v1/challenge '{"token":"nope"}'
scrape "$T/after.prom" || bail "cannot scrape /metrics"

delta() { echo $(($(value "$T/after.prom" "$1") - $(value "$T/before.prom" "$1"))); }
check "releases by token: web +1" test "$(delta 'attestkey_releases_total{token="web"}')" -eq 1
check "refusals by reason: unknown_token +1" test "$(delta 'attestkey_refusals_total{reason="unknown_token"}')" -eq 1
check "refusals of another reason did not move" test "$(delta 'attestkey_refusals_total{reason="bad_request"}')" -eq 0
check "requests: keys 200 +1" test "$(delta 'attestkey_http_requests_total{endpoint="keys",code="200"}')" -eq 1
check "requests: challenge 404 +1" test "$(delta 'attestkey_http_requests_total{endpoint="challenge",code="404"}')" -eq 1
check "latency: the keys histogram counted the release" \
	test "$(delta 'attestkey_http_request_duration_seconds_count{endpoint="keys"}')" -eq 1
check "latency: +Inf bucket equals _count" test \
	"$(value "$T/after.prom" 'attestkey_http_request_duration_seconds_bucket{endpoint="keys",le="+Inf"}')" -eq \
	"$(value "$T/after.prom" 'attestkey_http_request_duration_seconds_count{endpoint="keys"}')"
check "promtool check metrics accepts the exposition" sh -c "promtool check metrics <'$T/after.prom'"
check "the exposition is served as text format 0.0.4" sh -c \
	"curl -s -o /dev/null -w '%{content_type}' '$METRICS_URL/metrics' | grep -q 'version=0.0.4'"

# --- /readyz with a file store
check "/readyz answers 200 while the key store is readable" ready_becomes 200
mv "$T/keys" "$T/keys.away"
check "/readyz answers 503 when the file store's directory is gone" ready_becomes 503
check "/readyz names the key store and its directory" grep -q "key store 'default' (file): dir '$T/keys'" "$T/m.out"
mv "$T/keys.away" "$T/keys"
check "/readyz answers 200 again once the directory is back" ready_becomes 200

# --- SIGHUP: a new token shows at 0; metrics_listen waits for a restart
cp "$T/broker.conf" "$T/running.conf"
write_broker_conf "[token fresh]" "measurements = $MEASUREMENT" "keystore_path = web"
metrics_conf "metrics_listen = off" "metrics_port_file = $T/metrics.port"
kill -HUP "$BROKER_PID"
for _ in $(seq 100); do grep -q "configuration reloaded" "$T/broker.log" && break; sleep 0.1; done
check "reload: the broker reloaded" grep -q "configuration reloaded: 2 token" "$T/broker.log"
check "reload: metrics_listen = off waits for a restart (warned)" \
	grep -q "\[broker\] metrics_listen changed: it takes effect at a restart" "$T/broker.log"
scrape "$T/reload.prom"
check "reload: the listener still serves" test -s "$T/reload.prom"
check "reload: the new token shows at 0" grep -qx 'attestkey_releases_total{token="fresh"} 0' "$T/reload.prom"
cp "$T/running.conf" "$T/broker.conf"

# --- a port in use: a second broker on the first one's metrics port
cp "$T/broker.conf" "$T/second.conf"
sed -i -e "s|^metrics_listen = .*|metrics_listen = 127.0.0.1:$(cat "$T/metrics.port")|" \
	-e "s|^port_file = .*|port_file = $T/second.port|" -e "/^metrics_port_file/d" "$T/second.conf"
if timeout 30 "$AK_BROKER" -f -c "$T/second.conf" >"$T/second.log" 2>&1; then
	not_ok "a metrics port in use is refused"
else
	ok "a metrics port in use is refused"
fi
check "the error names metrics_listen and the address" \
	grep -q "metrics_listen: cannot listen on 127.0.0.1:$(cat "$T/metrics.port")" "$T/second.log"
diag_stream <"$T/second.log"

# --- a bad value is named
write_broker_conf
metrics_conf "metrics_listen = somewhere"
refuse "metrics_listen = somewhere is refused" "$AK_BROKER" --check-config -c "$T/broker.conf"
check "the error names the key" sh -c "'$AK_BROKER' --check-config -c '$T/broker.conf' 2>&1 | grep -q 'metrics_listen'"
stop_broker

# --- /readyz with a PKCS#11 store (SoftHSM): a logged-in session opens
if [ -r "$SOFTHSM_SO" ] && command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null; then
	. "$(dirname "$0")/hsm-lib.sh"
	hsm_setup
	hsm_broker_conf
	metrics_conf "metrics_listen = 127.0.0.1:0" "metrics_port_file = $T/metrics.port"
	start_metrics_broker
	check "PKCS#11 store: /readyz answers 200 while the HSM opens sessions" ready_becomes 200
	stop_broker
	unset SOFTHSM2_CONF
else
	skip "PKCS#11 store: /readyz" "SoftHSMv2 or pkcs11-tool is not installed"
fi

# --- /readyz with a Vault store: 503 once its Vault is stopped
if (vault_find) 2>/dev/null | grep -q "^1\.\.0"; then # skip_all exits 0
	skip "/readyz follows the Vault store's Vault" "no Vault server binary"
	finish
fi
vault_find
vault_start_dev
vault_put_keys
vault_approle broker "$VAULT_BROKER_POLICY" token_ttl=1h
vault_broker_conf
metrics_conf "metrics_listen = 127.0.0.1:0" "metrics_port_file = $T/metrics.port"
start_metrics_broker
check "Vault store: /readyz answers 200 while Vault answers" ready_becomes 200
scrape "$T/vault.prom"
check "Vault store: Vault fetches have a latency histogram" \
	test "$(value "$T/vault.prom" 'attestkey_fetch_duration_seconds_count{target="vault"}')" -gt 0
vault_stop
check "Vault store: /readyz answers 503 once Vault is stopped" ready_becomes 503
check "Vault store: /readyz names the Vault store" grep -q "key store 'vault' (vault): Vault at $VAULT_URL" "$T/m.out"
diag_stream <"$T/m.out"
scrape "$T/vault-down.prom"
check "Vault store: the failed connection is counted as vault_connect" \
	test "$(value "$T/vault-down.prom" 'attestkey_keystore_errors_total{kind="vault_connect"}')" -gt 0
check "promtool accepts the exposition with Vault errors" sh -c "promtool check metrics <'$T/vault-down.prom'"
finish
