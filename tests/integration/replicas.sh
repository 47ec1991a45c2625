#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 11, item 3: replicas with failover. Two brokers on loopback share
# only the challenge secret and one real Vault (dev mode); the module lists
# both. A nonce issued by one is accepted by the other; a run of logins
# (each a new process) survives the SIGKILL of the first broker in its
# middle, every login succeeds, and the two audit logs together hold every
# release the module logged exactly once. The module fails over on 5xx
# (restarting with a fresh challenge at the next broker), never on a
# policy refusal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vault-lib.sh"
need curl jq openssl
vault_find

LOGINS=${REPLICA_LOGINS:-100}
CURL="curl -s --cacert $T/pki/broker-ca.pem"

setup_world
vault_start_dev
vault_world

# Broker A is lib.sh's ($T/broker.conf); B is the same configuration with
# its own port file and audit log: they share the secret and Vault alone.
# conf_for NAME: that broker's configuration, from $T/broker.conf
conf_for() {
	sed -e "s|^port_file = .*|port_file = $T/broker-$1.port|" \
		-e "s|^audit_log = .*|audit_log = $T/audit-$1.jsonl|" "$T/broker.conf" >"$T/broker-$1.conf"
}
# start_replica NAME: start it, wait for its port; sets PID_NAME, URL_NAME
start_replica() {
	local pid
	rm -f "$T/broker-$1.port"
	"$AK_BROKER" -f -c "$T/broker-$1.conf" >>"$T/broker-$1.log" 2>&1 &
	pid=$!
	AK_PIDS="$AK_PIDS $pid"
	for _ in $(seq 100); do
		[ -s "$T/broker-$1.port" ] && break
		kill -0 "$pid" 2>/dev/null || { diag_stream <"$T/broker-$1.log"; bail "broker $1 exited"; }
		sleep 0.1
	done
	[ -s "$T/broker-$1.port" ] || bail "broker $1 did not start listening"
	eval "PID_$1=$pid URL_$1=https://127.0.0.1:$(cat "$T/broker-$1.port")"
}
stop_replica() {
	local pid
	eval "pid=\${PID_$1:-}"
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	eval "PID_$1="
}
# module_brokers URL...: the module's brokers list, in this order
module_brokers() {
	write_module_conf
	sed -i "s|^brokers = .*|brokers = $(echo "$@" | sed 's/ /, /g')|" "$T/attestkey.conf"
}
login() { "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>"$T/$1.err"; }
release_ids() { jq -r 'select(.event == "release") | .id' "$@" 2>/dev/null; }

conf_for a
conf_for b
start_replica a
start_replica b

# 1. a challenge issued by A is accepted by B (the nonce is stateless,
# HMAC'd under the shared secret): B's refusal is about the next check
# (the empty pubkey), not the nonce; a broker with another secret refuses it
nonce=$($CURL -H 'Content-Type: application/json' -d '{"token":"web"}' "$URL_a/v1/challenge" | jq -r .nonce)
body=$(jq -nc --arg n "$nonce" '{token: "web", nonce: $n, tee: "snp", evidence: {}, pubkey: {}}')
BROKER_URL=$URL_b
expect "a nonce issued by A passes B's nonce check" "400 pubkey_unsupported" /v1/keys "$body"
head -c 32 /dev/urandom >"$T/other-secret"
chmod 600 "$T/other-secret"
conf_for c
sed -i "s|^secret_file = .*|secret_file = $T/other-secret|" "$T/broker-c.conf"
start_replica c
BROKER_URL=$URL_c
expect "a broker with another secret refuses it" "403 nonce_invalid" /v1/keys "$body"
stop_replica c

# 2. a run of logins, A killed (SIGKILL) in its middle
module_brokers "$URL_a" "$URL_b"
mkdir -p "$T/run"
failed=0
for i in $(seq "$LOGINS"); do
	if [ "$i" -eq $((LOGINS / 2)) ]; then
		# during this login: A dies with whatever it was doing
		(sleep 0.05; kill -KILL "$PID_a") &
		killer=$!
	fi
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/run/$i.out" 2>"$T/run/$i.err" || failed=$((failed + 1))
done
wait "$killer"
wait "$PID_a" 2>/dev/null
PID_a=""
check "every one of $LOGINS logins succeeds ($failed failed)" test "$failed" -eq 0
grep -Eho "release id $ID_RE" "$T"/run/*.err | awk '{print $3}' | sort >"$T/module.ids"
check "the module logged $LOGINS release ids" test "$(wc -l <"$T/module.ids")" -eq "$LOGINS"
check "the module logged each failover with the broker and why" \
	grep -Eq "failing over from broker $URL_a \(.+\) to $URL_b" "$T/run/$LOGINS.err"
diag "$(grep -h "failing over" "$T/run/$LOGINS.err" | head -n 1)"
n_a=$(release_ids "$T/audit-a.jsonl" | wc -l)
n_b=$(release_ids "$T/audit-b.jsonl" | wc -l)
check "both brokers released: A before its end ($n_a), B after ($n_b)" test "$n_a" -gt 0 -a "$n_b" -gt 0
release_ids "$T/audit-a.jsonl" "$T/audit-b.jsonl" | sort >"$T/audit.ids"
check "no release id appears twice in the two audit logs" test -z "$(uniq -d "$T/audit.ids")"
check "every release the module logged is in an audit log (none missing)" \
	test -z "$(comm -23 "$T/module.ids" "$T/audit.ids")"
# SIGKILL may land after A audited a release and before its answer left:
# that release never reached the module (which got its keys from B), and
# it can only be A's last line
orphans=$(comm -13 "$T/module.ids" "$T/audit.ids")
last_a=$(release_ids "$T/audit-a.jsonl" | tail -n 1)
check "every audited release reached the module, except at most A's last in flight" \
	test -z "$orphans" -o "$orphans" = "$last_a"
[ -z "$orphans" ] || diag "release $orphans was audited by A just before SIGKILL and not answered"

# 3. a 5xx at the release: A issues the challenge but cannot audit the
# release (audit_unavailable); the module restarts at B with B's challenge
sed -i "s|^audit_log = .*|audit_log = /dev/full|" "$T/broker-a.conf"
start_replica a
module_brokers "$URL_a" "$URL_b"
before_b=$(grep -c '"event":"challenge"' "$T/audit-b.jsonl")
login fail5xx
check "5xx: the login succeeds" grep -q "^login: CKR_OK$" "$T/fail5xx.out"
check "5xx: the module logs the failover with A's 503 and its refusal id" \
	grep -Eq "failing over from broker $URL_a \(HTTP 503 audit_unavailable: .*refusal id $ID_RE\)\) to $URL_b" "$T/fail5xx.err"
check "5xx: A issued a challenge and refused the release" \
	sh -c "grep -q 'token .web.: challenge: nonce issued' '$T/broker-a.log' && grep -q 'refused audit_unavailable' '$T/broker-a.log'"
check "5xx: B issued its own challenge for the restart" \
	test "$(grep -c '"event":"challenge"' "$T/audit-b.jsonl")" -eq $((before_b + 1))
rid=$(grep -Eo "release id $ID_RE" "$T/fail5xx.err" | awk '{print $3}')
check "5xx: the release is B's and audited there" grep -q "\"id\":\"$rid\"" "$T/audit-b.jsonl"
stop_replica a

# 4. never on a policy refusal: A refuses the measurement (403), B would
# release; the login fails at A and B sees nothing of it
conf_for a
sed -i "s/^measurements = .*/measurements = $OTHER_MEASUREMENT/" "$T/broker-a.conf"
start_replica a
module_brokers "$URL_a" "$URL_b"
lines_b=$(wc -l <"$T/audit-b.jsonl")
login policy
check "4xx: the login fails" grep -q "^login: CKR_FUNCTION_REJECTED$" "$T/policy.out"
check "4xx: the module names A's refusal and its id" \
	grep -Eq "measurement_not_allowed: .*refusal id $ID_RE.*HTTP 403 from $URL_a" "$T/policy.err"
refuse "4xx: no failover" grep -q "failing over" "$T/policy.err"
check "4xx: B saw nothing of it" test "$(wc -l <"$T/audit-b.jsonl")" -eq "$lines_b"
stop_replica a

# 5. a timeout: A accepts connections (the kernel does) but never answers
# (SIGSTOP); after the module's timeout it fails over to B
conf_for a
start_replica a
kill -STOP "$PID_a"
module_brokers "$URL_a" "$URL_b"
sed -i "s/^timeout = .*/timeout = 2/" "$T/attestkey.conf"
login timeout
check "timeout: the login succeeds at B" grep -q "^login: CKR_OK$" "$T/timeout.out"
check "timeout: the module logs the failover and the timeout" \
	grep -Eiq "failing over from broker $URL_a \(.*tim.*out.*\) to $URL_b" "$T/timeout.err"
kill -CONT "$PID_a"
stop_replica a
stop_replica b
finish
