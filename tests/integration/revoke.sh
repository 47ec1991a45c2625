#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 12, the broker's side of revocation (docs/lifecycle.md "Revocation
# at the broker"): the real broker on loopback with a deny list, guests
# logging in through the real module (p11probe) with the simulated SEV-SNP
# chip and TD. `attestkey-broker revoke` of a token, a measurement, a chip
# id, an FMSPC and a TDX MRTD refuses the next login with 403 revoked and a
# broker log line naming the entry; unrevoke serves it again; logins on
# the thread pool while the list changes are never refused by entries that
# are not theirs. The admin
# endpoint: 404 without admin_token_file, 401 without or with a wrong
# bearer, revocation with the right one, 400 naming what is malformed, and
# the secret in no log; a client certificate of admin_client_ca instead
# of the secret (mutual TLS). A bad edit keeps the list in force with one log
# line; a bad list at the start stops the broker naming file:line; the
# refusals show in /metrics. A [token] lease added by SIGHUP is the next
# release's lease.
. "$(dirname "$0")/lib.sh"
need curl jq

setup_world_tdx
DENY="$T/deny.list"
# [broker] lines of this test
sed -i "/^\[broker\]/a deny_list = $DENY\nmetrics_listen = 127.0.0.1:0\nmetrics_port_file = $T/metrics.port" \
	"$T/broker.conf"
cp "$T/broker.conf" "$T/conf.base"
start_broker
# the SEV-SNP guest first (setup_world_tdx made the TD the module's)
MODULE_SIM_TEE=snp
write_module_conf
CURL="curl -s --cacert $T/pki/broker-ca.pem"

login() { "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>"$T/$1.err"; }
released() { grep -q "^login: CKR_OK\$" "$T/$1.out"; }
# revoked NAME: login NAME was refused, and the audit trail's last decision
# is its refusal by the deny list (the module's listing of public objects,
# event "public", may come before or after it)
revoked() {
	! released "$1" && jq -se 'map(select(.event != "public")) | last |
		.event == "refuse" and .reason == "revoked"' "$T/audit.jsonl" >/dev/null
}
# logged ENTRY: the broker log names the entry that refused
logged() { grep -q "refused revoked: revoked: the deny list holds $1 ($DENY line" "$T/broker.log"; }
akb() { "$AK_BROKER" "$@" >"$T/cli.out" 2>"$T/cli.err"; }
# exits CODE CMD...: CMD exits with CODE
exits() { local want=$1; shift; "$@" >"$T/cli.out" 2>"$T/cli.err"; test $? = "$want"; }

login base
check "no deny list file yet: a login releases the keys" released base
check "the broker says the list does not exist yet" grep -q "deny list $DENY does not exist yet" "$T/broker.log"
CHIP=$(jq -r 'select(.event == "release") | .chip_id' "$T/audit.jsonl" | tail -n 1)
check "the release's audit line names the sim chip's id (128 hex)" test "${#CHIP}" = 128

# 1. the CLI, kind by kind: revoke refuses the next login, unrevoke serves it
# revoke_cycle DESCRIPTION KIND VALUE ENTRY: one round trip
revoke_cycle() {
	local what=$1 kind=$2 value=$3 entry=$4
	check "$what: attestkey-broker revoke exits 0" akb revoke -c "$T/broker.conf" "$kind" "$value"
	login "$kind-off"
	check "$what: the next login is refused, 403 revoked audited" revoked "$kind-off"
	check "$what: the broker log names the entry" logged "$entry"
	check "$what: unrevoke exits 0" akb unrevoke -c "$T/broker.conf" "$kind" "$value"
	login "$kind-on"
	check "$what: unrevoked, the next login releases" released "$kind-on"
}
revoke_cycle "token" token web "token web"
check "the module's log carries the broker's refusal" grep -q "revoked" "$T/token-off.err"
check "the guest is told the kind, not the list's path" bash -c "! grep -q '$DENY' '$T/token-off.err'"
revoke_cycle "measurement" measurement "$MEASUREMENT" "measurement $MEASUREMENT"
revoke_cycle "chip id" chip-id "$(echo "$CHIP" | tr a-f A-F)" "chip_id $CHIP"
check "the edited file is 0600" test "$(stat -c %a "$DENY")" = 600
check "revoked lists nothing after the unrevokes" bash -c "'$AK_BROKER' revoked -c '$T/broker.conf' | grep -c . | grep -qx 0"

# the simulated TD: its FMSPC and its MRTD
MODULE_SIM_TEE=tdx
write_module_conf
login tdx
check "TDX: a login releases" released tdx
FMSPC=$(jq -r 'select(.event == "release" and .tee == "tdx") | .fmspc' "$T/audit.jsonl" | tail -n 1)
check "TDX: the release's audit line names its FMSPC (12 hex)" test "${#FMSPC}" = 12
FMSPC_LC=$(echo "$FMSPC" | tr A-F a-f)
revoke_cycle "fmspc" fmspc "$FMSPC" "fmspc $FMSPC_LC"
revoke_cycle "TDX MRTD" measurement "$TDX_MRTD" "measurement $TDX_MRTD"
MODULE_SIM_TEE=snp
write_module_conf

# 1b. logins on the broker's thread pool while the list changes under them:
# entries that are not this guest's never refuse it, however often the
# list is read again
worker() {
	local i
	for i in 1 2 3 4; do
		"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/busy-$1-$i.out" 2>&1
	done
	echo done >"$T/busy-$1.done"
}
reloads_before=$(grep -c "deny list $DENY reloaded" "$T/broker.log")
workers=""
for w in 1 2 3; do
	worker "$w" &
	workers="$workers $!"
done
edits=0
while [ "$(ls "$T"/busy-*.done 2>/dev/null | wc -l)" -lt 3 ]; do
	"$AK_BROKER" revoke -c "$T/broker.conf" measurement "$OTHER_MEASUREMENT" >/dev/null &&
		"$AK_BROKER" unrevoke -c "$T/broker.conf" measurement "$OTHER_MEASUREMENT" >/dev/null ||
		break
	edits=$((edits + 2))
done
wait $workers
ok_busy=$(grep -l "^login: CKR_OK\$" "$T"/busy-*-*.out | wc -l)
diag "$edits edit(s) of the list while 12 logins ran; $ok_busy released"
check "every login while the list changed released (12)" test "$ok_busy" = 12
check "the list was edited while logins ran" test "$edits" -ge 2
reloads=$(($(grep -c "deny list $DENY reloaded" "$T/broker.log") - reloads_before))
diag "the broker read $reloads version(s) of the list meanwhile"
check "the broker read the list again while logins ran" test "$reloads" -ge 1

# 2. the CLI's refusals name the wrong thing, with their exit codes
check "a chip id of 3 digits: exit 65" exits 65 "$AK_BROKER" revoke -c "$T/broker.conf" chip-id abc
check "... naming the kind and the length" grep -q "chip_id: 'abc' is not 128 hex digits" "$T/cli.err"
check "an FMSPC that is not hex: exit 65" exits 65 "$AK_BROKER" revoke -c "$T/broker.conf" fmspc 00906ed5000z
check "a token name that cannot be: exit 65" exits 65 "$AK_BROKER" revoke -c "$T/broker.conf" token 'w/b'
check "an unknown kind: exit 64" exits 64 "$AK_BROKER" revoke -c "$T/broker.conf" image web
check "... naming it" grep -q "unknown KIND 'image'" "$T/cli.err"
check "a missing value: exit 64" exits 64 "$AK_BROKER" unrevoke -c "$T/broker.conf" token
check "revoked takes no argument: exit 64" exits 64 "$AK_BROKER" revoked -c "$T/broker.conf" token
printf '[broker]\nlisten = 127.0.0.1:0\n' >"$T/nodeny.conf"
check "a configuration without deny_list: exit 1" exits 1 "$AK_BROKER" revoke -c "$T/nodeny.conf" token web
check "... saying so" grep -q "deny_list is not set" "$T/cli.err"
check "revoking twice: exit 0, nothing to do" bash -c "'$AK_BROKER' revoke -c '$T/broker.conf' token mail && '$AK_BROKER' revoke -c '$T/broker.conf' token mail | grep -q 'already on the deny list'"
check "unrevoking what is not listed: exit 0, nothing to do" bash -c "'$AK_BROKER' unrevoke -c '$T/broker.conf' token nosuch | grep -q 'not on the deny list'"
login other
check "another token's entry does not refuse web" released other
# a new list belongs to its directory's owner (the broker's state
# directory), also when root runs the command
if [ "$(id -u)" = 0 ]; then
	mkdir "$T/state" && chown 65534:65534 "$T/state"
	sed "s|^deny_list = .*|deny_list = $T/state/deny.list|" "$T/broker.conf" >"$T/state.conf"
	check "root creates a new list: 0600, owned by the directory's owner" \
		bash -c "'$AK_BROKER' revoke -c '$T/state.conf' token web >/dev/null &&
			test \"\$(stat -c %u:%g:%a '$T/state/deny.list')\" = 65534:65534:600"
	check "... and an edit keeps that owner" \
		bash -c "'$AK_BROKER' revoke -c '$T/state.conf' token mail >/dev/null &&
			test \"\$(stat -c %u:%g:%a '$T/state/deny.list')\" = 65534:65534:600"
else
	skip "root creates a new list owned by the directory's owner" "not root"
	skip "... and an edit keeps that owner" "not root"
fi

# 3. a bad edit while running keeps the list in force, logged once
akb revoke -c "$T/broker.conf" token web
login mid # the broker takes this version
check "revoked again" revoked mid
echo "chip_id zz" >>"$DENY"
login bad1
login bad2
check "a bad edit: the list in force still refuses" revoked bad2
check "one log line names the file, the line and what is wrong" \
	test "$(grep -c "deny list not reloaded.*$DENY:3: chip_id: 'zz' is not 128 hex digits" "$T/broker.log")" = 1
check "the CLI does not edit a file that does not parse (exit 1)" \
	exits 1 "$AK_BROKER" unrevoke -c "$T/broker.conf" token web
check "... naming file:line" grep -q "$DENY:3" "$T/cli.err"
# a list that others may write is not taken (a chmod alone is noticed)
chmod 666 "$DENY"
login open
check "a list writable by others: the list in force still refuses" revoked open
check "one log line says so" \
	test "$(grep -c "deny list not reloaded.*$DENY is writable by group/others" "$T/broker.log")" = 1
chmod 600 "$DENY"
: >"$DENY"
login cleared
check "an empty file clears the list" released cleared

# 4. the admin endpoint: 404 until admin_token_file is configured
ADMIN_TLS=() # curl's client certificate options, when one is presented
admin() { # METHOD PATH [BODY [AUTH]]: status in $T/a.code, body $T/a.json, headers $T/a.hdr
	local args=(-o "$T/a.json" -D "$T/a.hdr" -w '%{http_code}' -X "$1" "${ADMIN_TLS[@]}")
	[ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	[ -n "${4:-}" ] && args+=(-H "Authorization: $4")
	$CURL "${args[@]}" "$BROKER_URL$2" >"$T/a.code"
}
REVOKE_WEB='{"kind":"token","value":"web"}'
admin POST /v1/admin/revoke "$REVOKE_WEB" "Bearer whatever"
check "without admin_token_file: POST /v1/admin/revoke is 404" test "$(cat "$T/a.code")" = 404
admin GET /v1/admin/revoked
check "without admin_token_file: GET /v1/admin/revoked is 404" test "$(cat "$T/a.code")" = 404

SECRET=$(openssl rand -hex 32)
(umask 077 && printf '%s\n' "$SECRET" >"$T/admin.secret")
sed -i "/^\[broker\]/a admin_token_file = $T/admin.secret" "$T/broker.conf"
echo "lease = 42" >>"$T/broker.conf" # [token web] is the file's last section
before=$(grep -c "configuration reloaded" "$T/broker.log")
kill -HUP "$BROKER_PID"
for _ in $(seq 100); do
	[ "$(grep -c "configuration reloaded" "$T/broker.log")" -gt "$before" ] && break
	sleep 0.1
done
check "SIGHUP: the configuration with admin_token_file is reloaded" \
	test "$(grep -c "configuration reloaded" "$T/broker.log")" -gt "$before"
admin POST /v1/admin/revoke "$REVOKE_WEB"
check "no bearer: 401" test "$(cat "$T/a.code")" = 401
check "... with WWW-Authenticate: Bearer" grep -qi "^WWW-Authenticate: Bearer" "$T/a.hdr"
cp "$T/a.json" "$T/a-none.json"
admin POST /v1/admin/revoke "$REVOKE_WEB" "Bearer ${SECRET}0"
check "a wrong bearer: 401" test "$(cat "$T/a.code")" = 401
check "... the same body as no bearer (no hint)" cmp "$T/a.json" "$T/a-none.json"
admin POST /v1/admin/revoke "$REVOKE_WEB" "Basic $SECRET"
check "another scheme: 401" test "$(cat "$T/a.code")" = 401
login still
check "after the refused admin requests the guest is still served" released still
admin POST /v1/admin/revoke "$REVOKE_WEB" "Bearer $SECRET"
check "the right bearer: 200" test "$(cat "$T/a.code")" = 200
check "... the change made" jq -e '.changed == true and .kind == "token" and .value == "web"' "$T/a.json"
login admin-off
check "admin revoke: the next login is refused" revoked admin-off
check "admin revoke: the broker log names the entry" logged "token web"
check "the admin change is audited with its peer" \
	jq -se 'map(select(.event == "admin" and .admin.action == "revoke" and .peer == "127.0.0.1")) | length == 1' "$T/audit.jsonl"
admin GET /v1/admin/revoked "" "Bearer $SECRET"
check "GET /v1/admin/revoked lists the entry" jq -e '.entries == [{"kind":"token","value":"web"}]' "$T/a.json"
# malformed requests: 400 naming what
admin POST /v1/admin/unrevoke '{"kind":"token"' "Bearer $SECRET"
check "JSON that does not parse: 400" test "$(cat "$T/a.code")" = 400
check "... naming it" jq -e '.message | test("body is not JSON")' "$T/a.json"
admin POST /v1/admin/unrevoke '{"kind":"chip","value":"web"}' "Bearer $SECRET"
check "an unknown kind: 400 naming it" jq -e '.message | test("member .kind. is .chip.")' "$T/a.json"
admin POST /v1/admin/unrevoke '{"kind":"measurement","value":"abcd"}' "Bearer $SECRET"
check "a measurement of 4 digits: 400 naming the length" jq -e '.message | test("not 96 hex digits")' "$T/a.json"
admin POST /v1/admin/unrevoke '{"value":"web"}' "Bearer $SECRET"
check "no kind: 400 naming it" jq -e '.message | test("member .kind. is missing")' "$T/a.json"
admin PUT /v1/admin/unrevoke "$REVOKE_WEB" "Bearer $SECRET"
check "PUT with the right bearer: 405" test "$(cat "$T/a.code")" = 405
admin POST /v1/admin/unrevoke "$REVOKE_WEB" "Bearer $SECRET"
check "admin unrevoke: 200" test "$(cat "$T/a.code")" = 200
login admin-on
check "admin unrevoke: the next login releases" released admin-on
check "the reload's [token web] lease = 42 is the release's lease (audit line)" \
	jq -se 'map(select(.event == "release")) | last | .lease == 42' "$T/audit.jsonl"
check "releases before the reload had the broker's lease, 3600" \
	jq -se 'map(select(.event == "release")) | first | .lease == 3600' "$T/audit.jsonl"
check "the bearer secret is in no broker log line" bash -c "! grep -q '$SECRET' '$T/broker.log'"
check "the bearer secret is in no audit line" bash -c "! grep -q '$SECRET' '$T/audit.jsonl'"

# 5. refusals by reason in /metrics: as many revoked as the audit trail holds
want=$(jq -s 'map(select(.reason == "revoked")) | length' "$T/audit.jsonl")
curl -s -f -o "$T/metrics.prom" "http://127.0.0.1:$(cat "$T/metrics.port")/metrics"
got=$(sed -n 's/^attestkey_refusals_total{reason="revoked"} //p' "$T/metrics.prom")
diag "revoked refusals: $want audited, $got in /metrics"
check "/metrics counts the revoked refusals the audit trail holds" test "$got" = "$want" -a "$want" -gt 0

# 5b. mutual TLS: admin_client_ca (a restart) lets a client certificate
# it verifies in, beside the bearer secret; guests present none
make_ca "$T/pki" admin-ca || bail "cannot make the admin CA"
make_leaf "$T/pki" admin admin-ca "ec:$T/pki/p256.param" || bail "cannot make the admin certificate"
stop_broker
sed -i "/^\[broker\]/a admin_client_ca = $T/pki/admin-ca.pem" "$T/broker.conf"
start_broker
ADMIN_TLS=(--cert "$T/pki/admin.crt" --key "$T/pki/admin.key")
admin POST /v1/admin/revoke "$REVOKE_WEB"
check "a client certificate of admin_client_ca, no bearer: 200" test "$(cat "$T/a.code")" = 200
check "... audited as let in by its client certificate" \
	jq -se 'map(select(.event == "admin")) | last | .admin.auth == "client_certificate"' "$T/audit.jsonl"
login mtls-off
check "... and the next login (a guest without a certificate) is refused" revoked mtls-off
ADMIN_TLS=(--cert "$T/pki/tls.crt" --key "$T/pki/tls.key")
admin POST /v1/admin/unrevoke "$REVOKE_WEB"
check "a certificate of another CA, no bearer: 401" test "$(cat "$T/a.code")" = 401
ADMIN_TLS=()
admin POST /v1/admin/unrevoke "$REVOKE_WEB"
check "no certificate, no bearer: 401" test "$(cat "$T/a.code")" = 401
admin POST /v1/admin/unrevoke "$REVOKE_WEB" "Bearer $SECRET"
check "no certificate, the bearer: 200" test "$(cat "$T/a.code")" = 200
login mtls-on
check "a guest logs in as before on a broker that asks for client certificates" released mtls-on
# client certificates only: 403 without one
stop_broker
sed -i "/^admin_token_file = /d" "$T/broker.conf"
start_broker
admin POST /v1/admin/revoke "$REVOKE_WEB" "Bearer $SECRET"
check "admin_client_ca alone: no certificate is 403, whatever the bearer" test "$(cat "$T/a.code")" = 403
ADMIN_TLS=(--cert "$T/pki/admin.crt" --key "$T/pki/admin.key")
admin GET /v1/admin/revoked
check "admin_client_ca alone: the certificate lists the entries" jq -e '.entries == []' "$T/a.json"
ADMIN_TLS=()
sed -i "s|^admin_client_ca = .*|admin_client_ca = $T/pki/tls.key.nonexistent|" "$T/broker.conf"
check "admin_client_ca that cannot be read: --check-config names it" \
	bash -c "'$AK_BROKER' --check-config -c '$T/broker.conf' 2>&1 | grep -q 'admin_client_ca: cannot read'"
sed -i "s|^admin_client_ca = .*|admin_client_ca = $T/pki/admin-ca.pem|" "$T/broker.conf"

# 6. the broker ends cleanly; a bad list at the start is an error
kill "$BROKER_PID"
wait "$BROKER_PID"
check "the broker exits 0" test $? = 0
BROKER_PID=""
check "no sanitizer report" bash -c "! grep -q 'ERROR: \(Address\|Leak\)Sanitizer\|runtime error' '$T/broker.log'"
printf 'token web\nmeasurement %s extra\n' "$MEASUREMENT" >"$DENY"
check "a bad list: the broker does not start" \
	bash -c "! timeout 30 '$AK_BROKER' -f -c '$T/broker.conf' >'$T/start.log' 2>&1"
check "... naming file:line and what is wrong" \
	grep -q "\[broker\] deny_list: $DENY:2: unexpected text after the value" "$T/start.log"
check "--check-config names it too" \
	bash -c "! '$AK_BROKER' --check-config -c '$T/broker.conf' 2>'$T/check.err' && grep -q '$DENY:2' '$T/check.err'"
finish
