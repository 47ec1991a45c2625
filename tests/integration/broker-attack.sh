#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The broker under attack (issue 8, items 8, 9, 10, 12, 13), with the real
# broker, openssl s_client, curl and the real module:
#  - TLS 1.0, 1.1, non-AEAD and non-forward-secret suites are refused; each
#    refused offer is shown to work against openssl s_server, so the client
#    really offered it;
#  - oversize URL and headers, a non-JSON Content-Type and a 100 MB chunked
#    body get a JSON error, the last before the body is read;
#  - a 1 MiB token name adds a bounded number of bytes to the logs;
#  - an exact replay of a release is marked in the audit log;
#  - a release that cannot be audited is not made (503 audit_unavailable);
#  - a slowloris: connections past their deadline are closed although they
#    keep sending, and honest clients are served while it runs;
#  - (issue 13 item 4) a flood of bad requests and a flood of TLS handshakes
#    from one address meet the per-client rate limit (429, closed at
#    accept, counted in /metrics, logged once), honest clients are served
#    throughout (their p50/p99 printed), and the module takes a 429 as an
#    outage of that broker and goes on to the next;
#  - (issue 13 item 4) a storm of bad requests from one address on 256
#    connections at once: honest clients served, /v1/health answering,
#    the broker's memory bounded, the refusals in /metrics.
. "$(dirname "$0")/lib.sh"
need curl jq jose openssl timeout
SLOW="$top_builddir/tests/integration/slowclient"
[ -x "$SLOW" ] || bail "$SLOW not built"

setup_world
# An RSA server key, so that a suite without forward secrecy (RSA key
# exchange) can be offered at all.
make_leaf "$T/pki" broker-rsa broker-ca rsa:2048 || bail "cannot make the RSA broker certificate"
LIMITS="max_connections = 64
max_connections_per_ip = 8
handshake_timeout = 2
request_timeout = 3"
attack_conf() { # [audit_log]
	write_broker_conf
	# LIMITS' deadlines replace slow_broker_lines' (AK_SLOW: a TSan broker)
	sed -i -e "s|^cert = .*|cert = $T/pki/broker-rsa.crt|" -e "s|^key = .*|key = $T/pki/broker-rsa.key|" \
		-e '/^handshake_timeout = /d' -e '/^request_timeout = /d' \
		-e "s|^audit_log = .*|audit_log = ${1:-$T/audit.jsonl}|" \
		-e "/^\[broker\]/r /dev/stdin" "$T/broker.conf" <<<"$LIMITS"
}
attack_conf
start_broker
PORT=$(cat "$T/broker.port")
CURL="curl -s --cacert $T/pki/broker-ca.pem --max-time 20"

# ---- item 12: TLS 1.2+ with forward-secret AEAD suites only ----
openssl s_server -accept "127.0.0.1:0" -cert "$T/pki/broker-rsa.crt" -key "$T/pki/broker-rsa.key" \
	-cipher 'ALL:@SECLEVEL=0' -naccept 4 -www </dev/null >"$T/s_server.log" 2>&1 &
SSERVER=$!
AK_PIDS="$AK_PIDS $SSERVER"
for _ in $(seq 50); do grep -q '^ACCEPT' "$T/s_server.log" && break; sleep 0.1; done
CONTROL_PORT=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$T/s_server.log" | head -1)
[ -n "$CONTROL_PORT" ] || bail "openssl s_server did not start: $(cat "$T/s_server.log")"
handshake() { # port s_client-args...: the handshake's "Protocol/Ciphersuite", or fails
	local port=$1
	shift
	echo | timeout 10 openssl s_client -brief -connect "127.0.0.1:$port" "$@" >"$T/s_client.out" 2>&1 || return 1
	sed -n 's/^\(Protocol version\|Ciphersuite\): *//p' "$T/s_client.out" | head -2 | paste -sd/
}
tls_refused() { # description expected-"Protocol/Cipher" s_client-args...
	local d=$1 want=$2 got
	shift 2
	got=$(handshake "$CONTROL_PORT" "$@")
	if [ "$got" != "$want" ]; then
		not_ok "$d"; diag "the control server negotiated '$got', not '$want': the offer is not what the test means"
	elif handshake "$PORT" "$@" >/dev/null; then
		not_ok "$d"; diag "the broker accepted: $(handshake "$PORT" "$@")"
	else
		ok "$d"
	fi
}
tls_refused "TLS 1.0 is refused (offered: the control server negotiates it)" \
	"TLSv1/ECDHE-RSA-AES256-SHA" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
tls_refused "TLS 1.1 is refused" "TLSv1.1/ECDHE-RSA-AES256-SHA" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
tls_refused "TLS 1.2 without forward secrecy (RSA key exchange) is refused" \
	"TLSv1.2/AES128-GCM-SHA256" -tls1_2 -cipher AES128-GCM-SHA256
tls_refused "TLS 1.2 with a CBC (non-AEAD) suite is refused" \
	"TLSv1.2/ECDHE-RSA-AES128-SHA256" -tls1_2 -cipher 'ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA'
check "TLS 1.2 ECDHE with AES-GCM is accepted" test "$(handshake "$PORT" -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256)" = "TLSv1.2/ECDHE-RSA-AES128-GCM-SHA256"
got=$(handshake "$PORT" -tls1_3)
check "TLS 1.3 is accepted ($got)" test "${got%%/*}" = TLSv1.3
kill "$SSERVER" 2>/dev/null; wait "$SSERVER" 2>/dev/null

# ---- item 13: errors from the headers are JSON, before any body ----
status_json() { # curl-args...: "STATUS REASON" of a request
	$CURL -o "$T/resp.json" -w '%{http_code}' "$@" >"$T/status"
	printf '%s %s\n' "$(cat "$T/status")" "$(jq -r '.error // "not JSON"' "$T/resp.json" 2>/dev/null || echo "not JSON")"
}
expect_json() { # description "STATUS REASON" curl-args...
	local d=$1 want=$2 got
	shift 2
	got=$(status_json "$@")
	if [ "$got" = "$want" ]; then ok "$d"; else not_ok "$d"; diag "expected '$want', got '$got'"; head -c 300 "$T/resp.json" | diag_stream; fi
}
JSON='Content-Type: application/json'
expect_json "a 2 KiB URL: 414 with a JSON error" "414 bad_request" "$BROKER_URL/v1/public/$(printf 'a%.0s' $(seq 2048))"
expect_json "20 KiB of headers: 431 with a JSON error" "431 bad_request" \
	-H "X-Big: $(head -c 20000 /dev/zero | tr '\0' b)" "$BROKER_URL/v1/health"
expect_json "a text/plain body: 415 with a JSON error" "415 bad_request" \
	-H 'Content-Type: text/plain' --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge"
expect_json "a form body (curl -d): 415 with a JSON error" "415 bad_request" -d '{"token":"web"}' "$BROKER_URL/v1/challenge"
expect_json "application/json; charset=utf-8 is JSON" "200 not JSON" \
	-H 'Content-Type: application/json; charset=utf-8' --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge"
# 100 MB streamed with chunked transfer encoding: refused from the headers,
# so curl stops after a small part of it.
head -c 100000000 /dev/zero | $CURL -o "$T/resp.json" -w '%{http_code} %{size_upload}\n' -H "$JSON" \
	-X POST -T - "$BROKER_URL/v1/keys" >"$T/chunked" 2>"$T/chunked.err"
read -r code sent <"$T/chunked"
if [ "$code" = 411 ] && jq -e '.error == "bad_request"' "$T/resp.json" >/dev/null && [ "${sent%.*}" -lt 4000000 ]; then
	ok "a 100 MB chunked body: 411 with a JSON error after $sent bytes were sent"
else
	not_ok "a 100 MB chunked body is refused early"; diag "status $code after $sent bytes"; diag_stream <"$T/chunked.err"
fi

# ---- item 9: a 1 MiB token name adds a bounded number of bytes ----
big_token=$(head -c 1048000 /dev/zero | tr '\0' 'A')
printf '{"token":"%s"}' "$big_token" >"$T/bigtoken.json"
unset big_token
before=$(($(stat -c %s "$T/audit.jsonl") + $(stat -c %s "$T/broker.log")))
for _ in $(seq 10); do
	$CURL -o /dev/null -H "$JSON" --data-binary @"$T/bigtoken.json" "$BROKER_URL/v1/challenge"
done
grown=$(($(stat -c %s "$T/audit.jsonl") + $(stat -c %s "$T/broker.log") - before))
check "10 challenges with a 1 MiB token name add $grown bytes to the logs (under 10 KiB)" test "$grown" -lt 10240
check "the audit line notes the token's length" grep -q '(1048000 bytes)' "$T/audit.jsonl"

# ---- item 13: an exact replay of a release is marked ----
# keys_request: a fresh challenge and a /v1/keys body made by hand for it
# (ephemeral key a.jwk, simulated evidence) in $T/keys.json
jose jwk gen -i '{"kty":"EC","crv":"P-384"}' -o "$T/a.jwk"
jose jwk pub -i "$T/a.jwk" -o "$T/a.pub.jwk"
keys_request() {
	local nonce bind
	nonce=$($CURL -H "$JSON" --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge" | jq -r .nonce)
	bind=$("$AK_TOOL" binding --nonce "$nonce" --token web --jwk "$T/a.pub.jwk")
	"$AK_TOOL" sim report --dir "$T/sim" --report-data "$bind" --measurement "$MEASUREMENT" -o "$T/ev.json"
	jq -cn --arg n "$nonce" --slurpfile k "$T/a.pub.jwk" --slurpfile e "$T/ev.json" \
		'{token:"web", nonce:$n, tee:"snp", evidence:$e[0], pubkey:$k[0]}' >"$T/keys.json"
}
keys_request
expect_json "a release made by hand" "200 not JSON" -H "$JSON" --data-binary @"$T/keys.json" "$BROKER_URL/v1/keys"
expect_json "its exact replay is served (the nonce is still valid)" "200 not JSON" -H "$JSON" --data-binary @"$T/keys.json" "$BROKER_URL/v1/keys"
check "the audit log marks the replay, not the first release" bash -c \
	"jq -s -e '[.[] | select(.event == \"release\")] | length == 2 and (.[0].replay | not) and .[1].replay == true' '$T/audit.jsonl'"

# ---- item 10: no audit line, no release ----
stop_broker
attack_conf /dev/full
start_broker
lines_before=$(wc -l <"$T/broker.log")
keys_request
expect_json "with the audit log on a full device: 503 audit_unavailable" "503 audit_unavailable" \
	-H "$JSON" --data-binary @"$T/keys.json" "$BROKER_URL/v1/keys"
check "the refusal carries no key" bash -c "! jq -e .keys '$T/resp.json'"
check "the plain log names the refusal and never says released" bash -c \
	"tail -n +$((lines_before + 1)) '$T/broker.log' >'$T/log.tail' && grep -q audit_unavailable '$T/log.tail' && ! grep -q released '$T/log.tail'"

# ---- item 8: slow clients ----
stop_broker
LIMITS_SAVED=$LIMITS
LIMITS="max_connections = 1
threads = 2"
attack_conf
refuse "max_connections below threads is refused at start" timeout 10 "$AK_BROKER" -f -c "$T/broker.conf"
check "... naming both keys" grep -q 'max_connections (1) is below threads (2)' "$T/check.log"
LIMITS=$LIMITS_SAVED
attack_conf
start_broker
PORT=$(cat "$T/broker.port")
log_mark=$(wc -l <"$T/broker.log")
"$SLOW" dribble 127.0.0.3 "$PORT" tls 500 12 >"$T/dribble-tls.out" 2>&1
check "a request that sends a header byte every 0.5 s is closed at its deadline ($(cat "$T/dribble-tls.out"))" \
	grep -q '^closed by the server' "$T/dribble-tls.out"
"$SLOW" dribble 127.0.0.4 "$PORT" raw 500 12 >"$T/dribble-raw.out" 2>&1
check "a TLS handshake that sends a byte every 0.5 s is closed at its deadline ($(cat "$T/dribble-raw.out"))" \
	grep -q '^closed by the server' "$T/dribble-raw.out"

# A slowloris from 127.0.0.2 keeps trying 150 connections for 8 s, while
# an honest client on 127.0.0.1 asks for challenges and the real module
# logs in. Honest requests take well under a second; 5 s each is the bound,
# and a client held off by the slowloris would wait until it ends.
honest() { # seconds: HTTP status of one challenge
	curl -s --cacert "$T/pki/broker-ca.pem" --max-time "$1" -o /dev/null -w '%{http_code}' \
		-H "$JSON" --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge"
}
"$SLOW" hold 127.0.0.2 "$PORT" 150 8 300 >"$T/slowloris.out" 2>&1 &
SLOWPID=$!
AK_PIDS="$AK_PIDS $SLOWPID"
sleep 1
served=0
for _ in $(seq 5); do
	[ "$(honest 5)" = 200 ] && served=$((served + 1))
	sleep 0.2
done
check "5 of 5 honest challenges answered within 5 s each during the slowloris" test "$served" = 5
if timeout 10 "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/login.out" 2>&1; then
	ok "a real login through the module succeeds within 10 s during the slowloris"
else
	not_ok "a real login through the module succeeds within 10 s during the slowloris"; diag_stream <"$T/login.out"
fi
kill -0 "$SLOWPID" 2>/dev/null || diag "the slowloris ended before the honest requests did"
wait "$SLOWPID"
diag "$(cat "$T/slowloris.out")"
check "the slowloris was held to the per-client limit (8; 10 allowed: a close and the next accept may overlap)" bash -c \
	"grep -Eq 'at most ([0-9]|10) open at once' '$T/slowloris.out'"
check "the broker is still serving" bash -c "$CURL $BROKER_URL/v1/health | jq -e '.status == \"ok\"'"
check "the per-address limit kept the broker away from max_connections (no early closing)" bash -c \
	"! tail -n +$((log_mark + 1)) '$T/broker.log' | grep -q 'max_connections is near'"
check "the deadlines are logged in a few lines, not one per connection" \
	test "$(grep -c 'past their deadline' "$T/broker.log")" -le 5
mhd_lines=$(tail -n +$((log_mark + 1)) "$T/broker.log" | grep -c 'libmicrohttpd:')
check "libmicrohttpd's messages are logged 20 a minute, not one per refused connection ($mhd_lines lines)" \
	test "$mhd_lines" -le 21

# ---- issue 13 item 4: floods from one address ----
# The per-client rate limit (rate_limit = 20/s, rate_burst = 40 here, below
# what the slowest build's attacker reaches; the defaults are 100 and 200):
# 127.0.0.5 sends bad requests as fast as it can, 16 pipelined at a time,
# then 127.0.0.6 opens TLS connections as fast as it can, while an honest
# client on 127.0.0.1 asks for 20 challenges in a row during each. The
# honest latencies are printed (docs/security.md records them), never
# asserted; every honest answer must be a 200.
stop_broker
LIMITS="$LIMITS
rate_limit = 20
rate_burst = 40
metrics_listen = 127.0.0.1:0
metrics_port_file = $T/metrics.port"
attack_conf
start_broker
PORT=$(cat "$T/broker.port")
METRICS_URL="http://127.0.0.1:$(cat "$T/metrics.port")"
log_mark=$(wc -l <"$T/broker.log")
honest_run() { # NAME: 20 honest challenges; their statuses and times to $T/NAME.times
	local i out
	: >"$T/$1.times"
	for i in $(seq 20); do
		out=$(curl -s --cacert "$T/pki/broker-ca.pem" --max-time 10 -o /dev/null \
			-w '%{http_code} %{time_total}' -H "$JSON" --data-binary '{"token":"web"}' \
			"$BROKER_URL/v1/challenge")
		echo "$out" >>"$T/$1.times"
	done
}
latency() { # NAME: "p50 p99" of the honest times, in ms
	awk '{ print $2 * 1000 }' "$T/$1.times" | sort -g |
		awk '{ v[NR] = $1 } END { i = int(0.99 * NR); if (i < 0.99 * NR) i++;
			printf "p50 %.1f ms, p99 %.1f ms", v[int((NR + 1) / 2)], v[i] }'
}
# Deeply nested and huge JSON: 500,000 nested arrays in a 1 MB body, and a
# 1 MiB body of one string, each answered with a JSON 400 naming the
# fault, the broker alive afterwards.
python3 -c 'import sys; sys.stdout.write("[" * 500000 + "]" * 500000)' >"$T/nested.json"
code=$($CURL -o "$T/nested.out" -w '%{http_code}' -H "$JSON" --data-binary @"$T/nested.json" \
	"$BROKER_URL/v1/challenge")
check "500,000 nested arrays: 400 with a JSON error (got $code: $(head -c 160 "$T/nested.out"))" \
	bash -c "test '$code' = 400 && jq -e '.error == \"bad_request\"' '$T/nested.out' >/dev/null"
python3 -c 'import sys; sys.stdout.write("{\"token\":\"" + "a" * (1024 * 1024 - 14) + "\"}")' >"$T/huge.json"
code=$($CURL -o "$T/huge.out" -w '%{http_code}' -H "$JSON" --data-binary @"$T/huge.json" \
	"$BROKER_URL/v1/challenge")
check "a 1 MiB JSON string as the token: a JSON error (got $code: $(head -c 160 "$T/huge.out"))" \
	bash -c "test '$code' = 404 -o '$code' = 400 && jq -e '.error' '$T/huge.out' >/dev/null"
check "the broker is still serving after them" bash -c "$CURL $BROKER_URL/v1/health | jq -e '.status == \"ok\"'"
# TLS renegotiation asked by the client (TLS 1.2): never a second
# handshake on the connection, so one connection cannot make the broker
# sign again and again; the rate limit bounds new connections.
(echo R; sleep 3) | timeout 15 openssl s_client -tls1_2 -connect "127.0.0.1:$PORT" \
	-CAfile "$T/pki/broker-ca.pem" >"$T/reneg.out" 2>&1
diag "renegotiation: $(grep -E 'RENEGOTIATING|error|errno|closed|DONE|Secure Renegotiation' "$T/reneg.out" | head -5 | paste -sd'|')"
check "a client's renegotiation is not served" bash -c \
	"grep -q RENEGOTIATING '$T/reneg.out' && ! grep -A3 RENEGOTIATING '$T/reneg.out' | grep -qi 'verify return:1'"

honest_run quiet
diag "honest challenges with no attack: $(latency quiet)"
for attack in flood handshakes; do
	src=127.0.0.5
	[ "$attack" = handshakes ] && src=127.0.0.6
	"$SLOW" "$attack" "$src" "$PORT" 8 >"$T/$attack.out" 2>&1 &
	apid=$!
	AK_PIDS="$AK_PIDS $apid"
	sleep 1
	honest_run "$attack"
	wait "$apid"
	diag "$(cat "$T/$attack.out")"
	diag "honest challenges during the $attack: $(latency "$attack")"
	check "$attack from $src: the 20 honest challenges were all answered 200" \
		test "$(grep -c '^200 ' "$T/$attack.times")" = 20
done
check "the flood was mostly answered 429 or cut at accept, not served" bash -c \
	"grep -Eq 'answered: [0-9]+ 2xx, [1-9][0-9]* 429' '$T/flood.out'"
check "the flood got no 2xx (its requests are bad ones)" \
	grep -q 'answered: 0 2xx' "$T/flood.out"
# at most rate_burst + rate_limit x its 8 s (40 + 20 x 8, 60 more for
# slack) handshakes finish however fast the attacker is (an ASan build's
# on a loaded machine tries 100 connections a second, the plain build's
# 2,500: hence a limit of 20 here), and some were closed at accept
check "the handshake flood was held to the rate limit: at most 260 handshakes finished, the rest closed at accept" \
	awk '/^handshakes/ { exit !($4 <= 260 && $6 > 0) }' "$T/handshakes.out"
curl -s "$METRICS_URL/metrics" >"$T/metrics.txt"
mval() { awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }' "$T/metrics.txt"; }
check "/metrics counts the refused requests ($(mval 'attestkey_rate_limited_total{what="request"}'))" \
	test "$(mval 'attestkey_rate_limited_total{what="request"}')" -gt 0
check "/metrics counts the connections closed at accept ($(mval 'attestkey_rate_limited_total{what="connection"}'))" \
	test "$(mval 'attestkey_rate_limited_total{what="connection"}')" -gt 0
check "/metrics counts the two clients that went over the limit" \
	test "$(mval attestkey_rate_limited_clients_total)" -ge 2
check "the log names the flooding address once it went over, not once a request" bash -c \
	"n=\$(tail -n +$((log_mark + 1)) '$T/broker.log' | grep -c 'rate limit: client 127.0.0.5 is over 20 requests a second'); test \$n -ge 1 && test \$n -le 20"
check "the flood's first 429: error rate_limited, with Retry-After" bash -c \
	"grep '^first 429' '$T/flood.out' | tr '\\n' ' ' | grep -i 'retry-after: 1' | grep -q '\"error\":\"rate_limited\"'"
sleep 3 # 20 tokens a second: the bucket (40) is full again
check "the address is served again once it slows down" \
	test "$(curl -s --cacert "$T/pki/broker-ca.pem" --interface 127.0.0.5 -o /dev/null -w '%{http_code}' \
		-H "$JSON" --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge")" = 200

# ---- issue 13 item 4: a storm of bad requests from one address ----
# 127.0.0.7 keeps 256 connections in flight (slowclient storm: one thread
# per CPU, nothing blocking), each sending the flood's bad request as soon
# as its handshake is done and the next after each answer, opened again as
# soon as the broker closes it: the issue's 10,000 bad requests a second,
# as far as this machine lets one address send them. It starts half a
# second before the honest client and is stopped (SIGTERM; 30 s at most)
# once the honest client is done, however slow the build. What must
# hold however fast the attacker was: the honest client's 20 challenges
# are all answered 200, /v1/health answers during the storm, the broker's
# memory stays bounded, /metrics counts the refusals, and no more
# handshakes finish than the rate limit allows. The attacker's rate and
# the honest latencies are printed (docs/security.md), never asserted.
curl -s "$METRICS_URL/metrics" >"$T/metrics.txt"
refused_req=$(mval 'attestkey_rate_limited_total{what="request"}')
refused_conn=$(mval 'attestkey_rate_limited_total{what="connection"}')
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$BROKER_PID/status"; }
rss_before=$(kib VmRSS)
hwm_before=$(kib VmHWM)
"$SLOW" storm 127.0.0.7 "$PORT" 30 256 >"$T/storm.out" 2>&1 &
apid=$!
AK_PIDS="$AK_PIDS $apid"
sleep 0.5
honest_run storm
# from an address of its own, so as not to take the honest client's tokens
health=$($CURL --interface 127.0.0.8 -o "$T/health.json" -w '%{http_code}' "$BROKER_URL/v1/health")
kill -0 "$apid" 2>/dev/null || diag "the storm ended (30 s) before the honest requests did"
kill -TERM "$apid" 2>/dev/null
wait "$apid"
rss_after=$(kib VmRSS)
hwm_after=$(kib VmHWM)
diag "$(cat "$T/storm.out")"
diag "honest challenges during the storm: $(latency storm)"
diag "broker VmRSS $rss_before KiB before the storm, $rss_after KiB after (VmHWM $hwm_before -> $hwm_after KiB)"
storm_n() { sed -n "s/.* \([0-9]*\) $1.*/\1/p" "$T/storm.out"; } # the count before a phrase
check "the storm from 127.0.0.7 reached the broker: $(storm_n 'connections closed at accept') connections closed at accept" \
	test "$(storm_n 'connections closed at accept')" -gt 0
check "storm: the 20 honest challenges were all answered 200" test "$(grep -c '^200 ' "$T/storm.times")" = 20
check "storm: /v1/health answered ok during it" \
	bash -c "test '$health' = 200 && jq -e '.status == \"ok\"' '$T/health.json' >/dev/null"
check "storm: none of its requests was served (no 2xx)" grep -q 'answered: 0 2xx' "$T/storm.out"
# at most rate_burst + rate_limit x its time (40 + 20 x s, 60 more for
# slack) handshakes finish, however many connections it opened
most=$(sed -n 's/.* attempts in \([0-9]*\).*/\1/p' "$T/storm.out")
most=$((40 + 20 * (${most:-0} + 1) + 60))
check "storm: held to the rate limit, at most $most handshakes finished ($(storm_n 'handshakes finished'))" \
	test "$(storm_n 'handshakes finished')" -le "$most"
# 64 MiB; in the sanitizer build ASan keeps freed memory in its
# quarantine (256 MiB by default) before reusing it, and its peak grew by
# 16 to 35 MiB in the storm: the bound allows for the quarantine there
bound=65536
[ -z "$AK_RUN" ] || bound=$((65536 + 262144))
check "storm: the broker's resident memory grew by less than $((bound / 1024)) MiB ($rss_before -> $rss_after KiB)" \
	test $((rss_after - rss_before)) -lt "$bound"
check "storm: ... and its peak too (VmHWM $hwm_before -> $hwm_after KiB)" \
	test $((hwm_after - hwm_before)) -lt "$bound"
curl -s "$METRICS_URL/metrics" >"$T/metrics.txt"
check "storm: /metrics counts its connections closed at accept (+$(($(mval 'attestkey_rate_limited_total{what="connection"}') - refused_conn)))" \
	test "$(mval 'attestkey_rate_limited_total{what="connection"}')" -gt "$refused_conn"
check "storm: /metrics counts its requests answered 429 (+$(($(mval 'attestkey_rate_limited_total{what="request"}') - refused_req)))" \
	test "$(mval 'attestkey_rate_limited_total{what="request"}')" -gt "$refused_req"
check "the broker is still serving after the storm" bash -c "$CURL $BROKER_URL/v1/health | jq -e '.status == \"ok\"'"

# ---- a slowloris from 40 addresses ----
# In a network namespace the test creates (10.9.0.0/16 local on its
# loopback), 40 addresses hold 8 connections each (their per-address
# ceiling), 320 against max_connections = 64: the per-address limits do
# not help, the table fills. Near the ceiling (3/4 of it) the broker gives
# a connection that is not being answered 1 s instead of its deadlines,
# and refuses at accept a new connection from an address that holds its
# fair share (64 / the addresses holding one) already, so the attackers'
# reconnections do not fill the table nor wait in the accept queue, and
# the honest client, holding none, is accepted at once. Its p50/p99 are
# printed, never asserted.
# AK_BROKER_BEFORE=/path/to/another/attestkey-broker runs the same attack
# against that broker first (the numbers side by side in docs/security.md).
# AK_SLOWLORIS_ADDRS=N (1-250, default 40) attacks from N addresses instead:
# more than the table's 3/4 (48) is the case where every attacker holds its
# fair share of one (docs/security.md).
NADDR=${AK_SLOWLORIS_ADDRS:-40}
case $NADDR in [1-9] | [1-9][0-9] | 1[0-9][0-9] | 2[0-4][0-9] | 250) ;; *) bail "AK_SLOWLORIS_ADDRS must be 1-250" ;; esac
many_slowloris() { # BROKER NAME: the attack on BROKER; honest times in $T/NAME.times
	local broker=$1 name=$2 i pids="" hpids
	stop_broker
	# Long deadlines: the test's 2 s and 3 s (and the defaults, 5 s and
	# 10 s, once) cut honest TLS handshakes of an ASan broker on a machine
	# at load average 25-36, which is not what this attack is about (the
	# deadlines have their own tests above); the early closing and the
	# fair share are.
	LIMITS="max_connections = 64
max_connections_per_ip = 8
handshake_timeout = 10
request_timeout = 15
metrics_listen = 127.0.0.1:0
metrics_port_file = $T/metrics.port"
	attack_conf
	rm -f "$T/broker.port" "$T/metrics.port"
	unshare -n sh -c 'ip link set lo up && ip route add local 10.9.0.0/16 dev lo && exec "$0" -f -c "$1"' \
		"$broker" "$T/broker.conf" >>"$T/broker.log" 2>&1 &
	BROKER_PID=$!
	AK_PIDS="$AK_PIDS $BROKER_PID"
	for _ in $(seq 100); do [ -s "$T/broker.port" ] && [ -s "$T/metrics.port" ] && break; sleep 0.1; done
	[ -s "$T/broker.port" ] || bail "the broker in its namespace did not start"
	PORT=$(cat "$T/broker.port")
	write_module_conf
	NS="nsenter --net=/proc/$BROKER_PID/ns/net"
	log_mark=$(wc -l <"$T/broker.log")
	for i in $(seq "$NADDR"); do
		$NS "$SLOW" hold "10.9.1.$i" "$PORT" 8 12 300 >"$T/$name.$i.out" 2>&1 &
		pids="$pids $!"
	done
	AK_PIDS="$AK_PIDS $pids"
	sleep 2
	# Honest clients arrive on a schedule, not after the previous answer
	# (a slow broker would otherwise be sampled mostly after the attack):
	# a challenge every 0.4 s for 8 s, each from an address of its own
	# (10.9.2.N: 20 guests), and the real module's login from 127.0.0.1,
	# all within the attack's 12 s.
	(timeout 60 $NS "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$name.login" 2>&1
		r=$?
		[ $r = 0 ] && echo ok >>"$T/$name.login" || echo "exit status $r" >>"$T/$name.login") &
	hpids=$!
	for i in $(seq 20); do
		$NS curl -s --cacert "$T/pki/broker-ca.pem" --max-time 10 -o /dev/null \
			--interface "10.9.2.$i" -w '%{http_code} %{time_total}\n' -H "$JSON" \
			--data-binary '{"token":"web"}' "https://127.0.0.1:$PORT/v1/challenge" \
			>"$T/$name.honest.$i" &
		hpids="$hpids $!"
		sleep 0.4
	done
	# shellcheck disable=SC2086
	wait $hpids
	cat "$T/$name".honest.* >"$T/$name.times"
	$NS curl -s "http://127.0.0.1:$(cat "$T/metrics.port")/metrics" >"$T/$name.metrics"
	# shellcheck disable=SC2086
	wait $pids
	tail -n +$((log_mark + 1)) "$T/broker.log" >"$T/$name.log"
	diag "$name: honest challenges during the $NADDR-address slowloris: $(latency "$name"), $(grep -c '^200 ' "$T/$name.times") of 20 answered 200"
	diag "$name: $(cat "$T/$name".*.out | awk '{ h += $4; c += $7 } END { printf "'"$NADDR"' addresses: %d handshakes done, %d connections refused or closed by the server", h, c }')"
}
if ! unshare -n true 2>/dev/null || ! command -v nsenter >/dev/null || ! command -v ip >/dev/null; then
	skip "a slowloris from $NADDR addresses" "cannot create a network namespace here (unshare -n as root, nsenter, ip)"
else
	if [ -n "${AK_BROKER_BEFORE:-}" ]; then
		many_slowloris "$AK_BROKER_BEFORE" before
		diag "before: $(grep -c 'max_connections is near: closed' "$T/before.log") early-closing line(s), login: $(tail -1 "$T/before.login")"
	fi
	many_slowloris "$AK_BROKER" many
	if [ "$(tail -1 "$T/many.login")" = ok ]; then
		ok "a real login through the module succeeds during the $NADDR-address slowloris"
	else
		not_ok "a real login through the module succeeds during the $NADDR-address slowloris"; diag_stream <"$T/many.login"
	fi
	check "the 20 honest challenges during the $NADDR-address slowloris were all answered 200" \
		test "$(grep -c '^200 ' "$T/many.times")" = 20
	check "the broker said it was near max_connections and closed slow connections early" \
		grep -q 'max_connections is near: closed' "$T/many.log"
	check "the broker said it refused connections of addresses holding their fair share ($(grep -o 'refused [0-9]* new.*' "$T/many.log" | head -1))" \
		grep -Eq 'max_connections is near: refused [1-9][0-9]* new connection\(s\) at accept from addresses holding their fair share' "$T/many.log"
	fair=$(awk '$1 == "attestkey_connections_refused_total{why=\"fair_share\"}" { print $2 }' "$T/many.metrics")
	check "/metrics counts the connections refused for their fair share (${fair:-none})" \
		test "${fair:-0}" -gt 0
fi

# The module meets a 429 as "this broker cannot serve now": alone, its
# login fails naming the limit; with a second broker listed, it goes on
# there. Broker 1 allows one request (rate_burst = 1), so the challenge
# passes and the release is refused 429.
stop_broker
LIMITS="$LIMITS_SAVED
rate_limit = 1
rate_burst = 1"
attack_conf
start_broker
sleep 1.1 # the bucket of 127.0.0.1 is full (1) again after start_broker's checks
if timeout 20 "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/login429.out" 2>&1; then
	not_ok "a login refused 429 by the only broker fails"
else
	ok "a login refused 429 by the only broker fails"
fi
check "... and the module's line names the limit" grep -q 'rate_limited' "$T/login429.out"
sed -e 's/^rate_limit = 1$/rate_limit = 0/' -e "s|^port_file = .*|port_file = $T/broker2.port|" \
	-e "s|^audit_log = .*|audit_log = $T/audit2.jsonl|" "$T/broker.conf" >"$T/broker2.conf"
"$AK_BROKER" -f -c "$T/broker2.conf" >>"$T/broker2.log" 2>&1 &
AK_PIDS="$AK_PIDS $!"
for _ in $(seq 100); do [ -s "$T/broker2.port" ] && break; sleep 0.1; done
sed -i "s|^brokers = .*|brokers = $BROKER_URL, https://127.0.0.1:$(cat "$T/broker2.port")|" "$T/attestkey.conf"
sleep 1.1
if timeout 20 "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/login429.out" 2>&1; then
	ok "with a second broker listed, the login goes on there after the 429"
else
	not_ok "with a second broker listed, the login goes on there after the 429"; diag_stream <"$T/login429.out"
fi
check "... and broker 2 made the release" grep -q '"event":"release"' "$T/audit2.jsonl"

# Control: without the per-client limits (connections and rate) the same
# slowloris from one address fills the table, so the checks of the
# one-address slowloris above can fail: the broker reaches 3/4 of
# max_connections and says so (the early closing near the ceiling, shown
# with 40 addresses above, then keeps honest clients served).
stop_broker
LIMITS="${LIMITS_SAVED/max_connections_per_ip = 8/max_connections_per_ip = 0}
rate_limit = 0"
attack_conf
start_broker
PORT=$(cat "$T/broker.port")
log_mark=$(wc -l <"$T/broker.log")
"$SLOW" hold 127.0.0.2 "$PORT" 150 8 300 >"$T/slowloris.out" 2>&1 &
SLOWPID=$!
AK_PIDS="$AK_PIDS $SLOWPID"
sleep 2
codes=""
for _ in 1 2 3; do codes="$codes $(honest 5)"; done
wait "$SLOWPID"
diag "control: $(cat "$T/slowloris.out"); honest challenges:$codes"
# Counted by the broker, not by the attacker (which sees only the
# connections whose handshake it finished, few on a loaded machine): the
# broker refused 127.0.0.2 for holding its fair share, a share above 8.
share=$(tail -n +$((log_mark + 1)) "$T/broker.log" | sed -n 's/.*holding their fair share (\([0-9]*\) each.*/\1/p' | head -1)
check "control: with max_connections_per_ip = 0 one address holds more than 8 connections (refused at a fair share of ${share:-none})" \
	test "${share:-0}" -gt 8
check "control: ... and takes the broker near max_connections" bash -c \
	"tail -n +$((log_mark + 1)) '$T/broker.log' | grep -q 'max_connections is near: closed'"
finish
