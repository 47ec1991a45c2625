#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Fault injection (issue 13 item 3; the inventory of every fault and the
# test that injects it: docs/security.md "Fault injection"). The faults no
# other test injects, each met with a specific error within the configured
# timeout and no key held:
#  - the broker SIGKILLed, or SIGSTOPped, in the middle of one login (after
#    its challenge, while the module builds its evidence), or SIGKILLed while
#    the module waits for the release;
#  - a listening socket that never reads (the TLS handshake never starts);
#  - truncated, non-JSON, 100 MB and wrong-Content-Type answers, and a real
#    release made for another ephemeral key, replayed (httpfixture over TLS);
#    a release cut short in transit (Python's http.server over TLS);
#  - clock skew between replicas beyond the nonce window (libfaketime);
#  - nginx keeps serving on the key it holds after the broker is SIGKILLed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/httpfixture-lib.sh"
need curl jq openssl python3 jose ss

TIMEOUT=2 # the module's [module] timeout in these cases
DELAY_MS=2000 # the sim's evidence delay: the window between challenge and release

setup_world
CURL="curl -s --max-time 20 --cacert $T/pki/broker-ca.pem"
# login NAME: a C_Login through the module; its output in $T/NAME.out and
# .err, its wall time in whole seconds in $T/NAME.secs
login() {
	local t0=$SECONDS
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>"$T/$1.err"
	echo $((SECONDS - t0)) >"$T/$1.secs"
}
# unreached NAME URL WHY LIMIT: the login failed with CKR_DEVICE_ERROR, one line
# names URL and WHY, no private key is held, within LIMIT seconds
unreached() {
	local name=$1 url=$2 why=$3 limit=$4
	check "$name: C_Login returns CKR_DEVICE_ERROR" grep -q "^login: CKR_DEVICE_ERROR$" "$T/$name.out"
	check "$name: one line names the broker URL and why ($why)" \
		grep -Eq "token 'web': no key broker could be reached: $url: .*($why)" "$T/$name.err"
	check "$name: no key is held (none listed, C_Logout: CKR_USER_NOT_LOGGED_IN)" held_none "$name"
	check "$name: within the configured time + slack ($(cat "$T/$name.secs") s <= $limit s)" \
		test "$(cat "$T/$name.secs")" -le "$limit"
	diag_stream <"$T/$name.err"
}
# module_conf [DELAY_MS]: the module's configuration for the running broker,
# timeout = $TIMEOUT, and the sim's evidence delay when given
module_conf() {
	write_module_conf
	sed -i "s/^timeout = .*/timeout = $TIMEOUT/" "$T/attestkey.conf"
	[ -z "${1:-}" ] || sed -i "/^\[sim\]/a delay_ms = $1" "$T/attestkey.conf"
}
# held_none NAME: after the failed login NAME no private key is listed and
# C_Logout answers CKR_USER_NOT_LOGGED_IN (the module holds no key)
held_none() { grep -q "private_keys: 0" "$T/$1.out" && grep -q "^logout: CKR_USER_NOT_LOGGED_IN$" "$T/$1.out"; }
challenges() { grep -c '"event": *"challenge"' "$T/audit.jsonl" 2>/dev/null || true; }
# wait_challenge N: until the audit log counts N challenges (5 s at most)
wait_challenge() {
	for _ in $(seq 50); do
		[ "$(challenges)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# 0. the baseline: the same set-up logs in
start_broker
module_conf
login baseline
check "baseline: the login succeeds and holds keys" grep -q "private_keys: [1-9]" "$T/baseline.out"

# 1. the broker SIGKILLed between its challenge and the release
module_conf $DELAY_MS
n=$(challenges)
r=$(releases)
login killed &
probe=$!
check "killed: the broker issued the challenge" wait_challenge $((n + 1))
{ kill -KILL "$BROKER_PID"; wait "$BROKER_PID"; } 2>/dev/null
wait "$probe"
unreached killed "$BROKER_URL" "POST /v1/keys: (the connection closed before a complete answer|cannot connect: nothing accepts connections there)" $((DELAY_MS / 1000 + TIMEOUT + 5))
check "killed: the broker released nothing" test "$(releases)" = "$r"

# 2. the broker SIGSTOPped between its challenge and the release: the
# module's request is sent (the kernel takes it) and never answered
start_broker
module_conf $DELAY_MS
n=$(challenges)
login stopped &
probe=$!
check "stopped: the broker issued the challenge" wait_challenge $((n + 1))
kill -STOP "$BROKER_PID"
wait "$probe"
kill -CONT "$BROKER_PID"
unreached stopped "$BROKER_URL" "POST /v1/keys: no answer within the $TIMEOUT s timeout" $((DELAY_MS / 1000 + TIMEOUT + 5))
module_conf
login after-stop
check "stopped: continued, the broker serves the next login" grep -q "private_keys: [1-9]" "$T/after-stop.out"
stop_broker

# 2b. the broker SIGKILLed while the module waits for its release: stopped
# after its challenge, killed once its socket holds the module's request
# (Recv-Q above 0), so the connection resets under the waiting module; the
# module's timeout is 10 s here, so the reset, not the timeout, ends it
start_broker
module_conf $DELAY_MS
sed -i "s/^timeout = .*/timeout = 10/" "$T/attestkey.conf"
port=$(cat "$T/broker.port")
queued() { ss -Htn state established "sport = :$port" | awk '$1 > 0 { f = 1 } END { exit !f }'; }
n=$(challenges)
r=$(releases)
login reset &
probe=$!
check "reset: the broker issued the challenge" wait_challenge $((n + 1))
kill -STOP "$BROKER_PID"
for _ in $(seq 100); do queued && break; sleep 0.1; done
check "reset: the module's release request waits in the stopped broker's socket" queued
{ kill -KILL "$BROKER_PID"; wait "$BROKER_PID"; } 2>/dev/null
wait "$probe"
# what waits may be the request on the challenge's kept-alive connection
# (reset under it; libcurl may then retry on a fresh connection, which finds
# nothing listening) or the ClientHello of a fresh connection (reset in the
# handshake): each line is right
unreached reset "$BROKER_URL" "POST /v1/keys: (the connection closed before a complete answer|cannot connect: nothing accepts connections there|the TLS handshake failed)" $((DELAY_MS / 1000 + 5))
check "reset: the broker released nothing" test "$(releases)" = "$r"
start_broker

# 3. a socket that listens and never reads: the kernel completes the TCP
# handshake, the ClientHello is never answered
python3 -c '
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
' "$T/mute.port" &
AK_PIDS="$AK_PIDS $!"
for _ in $(seq 50); do [ -s "$T/mute.port" ] && break; sleep 0.1; done
[ -s "$T/mute.port" ] || bail "the mute socket did not listen"
MUTE="https://127.0.0.1:$(cat "$T/mute.port")"
module_conf
sed -i "s|^brokers = .*|brokers = $MUTE|" "$T/attestkey.conf"
login mute
unreached mute "$MUTE" "POST /v1/challenge: no answer within the $TIMEOUT s timeout" $((TIMEOUT + 5))
module_conf

# 4. a broker look-alike (httpfixture over TLS, the broker's certificate)
# answering the module's requests with broken bodies; the challenge it
# serves is a real one of the broker, the release a real one too, made for
# another ephemeral key (a captured release, replayed)
JSON='Content-Type: application/json'
mkdir -p "$T/bad/v1"
$CURL -H "$JSON" --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge" >"$T/challenge.json" ||
	bail "no challenge from the broker"
jose jwk gen -i '{"kty":"EC","crv":"P-256"}' -o "$T/other.jwk"
jose jwk pub -i "$T/other.jwk" -o "$T/other.pub.jwk"
# keys_request CHALLENGE: a /v1/keys body made by hand in $T/keys.json for
# the nonce of the challenge answer in file CHALLENGE (ephemeral key
# other.jwk, simulated evidence bound to it, a v2 envelope asked)
keys_request() {
	local nonce bind
	nonce=$(jq -r .nonce "$1")
	bind=$("$AK_TOOL" binding --nonce "$nonce" --token web --jwk "$T/other.pub.jwk")
	"$AK_TOOL" sim report --dir "$T/sim" --report-data "$bind" --measurement "$MEASUREMENT" -o "$T/ev.json" ||
		bail "attestkey sim report failed"
	jq -cn --arg n "$nonce" --slurpfile k "$T/other.pub.jwk" --slurpfile e "$T/ev.json" \
		'{token:"web", nonce:$n, tee:"snp", alg:"ak2-ECDH-ES+A256GCM", evidence:$e[0], pubkey:$k[0]}' >"$T/keys.json"
}
keys_request "$T/challenge.json"
$CURL -H "$JSON" --data-binary @"$T/keys.json" "$BROKER_URL/v1/keys" >"$T/other-release.json"
check "capture: the broker released to another ephemeral key (a v2 envelope)" \
	jq -e '.envelope.alg == "ak2-ECDH-ES+A256GCM" and (.keys | length) == 2' "$T/other-release.json"
cp "$T/challenge.json" "$T/bad/v1/challenge"
echo "Content-Type: application/json" >"$T/bad/v1/challenge.headers"
start_httpfixture bad "$T/bad" --post --cert "$T/pki/broker.crt" --key "$T/pki/broker.key"
BAD=https://${FIXTURE_URL#http://}
BAD_RE='$BAD_RE' # in a description: the look-alike's URL (its port changes from run to run)
# bad NAME WHY [CONTENT-TYPE]: $T/bad/v1/keys (already written) answers the
# module's release request; the login fails naming the fault
bad() {
	local name=$1 why=$2
	echo "Content-Type: ${3:-application/json}" >"$T/bad/v1/keys.headers"
	module_conf
	sed -i "s|^brokers = .*|brokers = $BAD|" "$T/attestkey.conf"
	login "$name"
	check "$name: C_Login fails" grep -q "^login: CKR_DEVICE_ERROR$" "$T/$name.out"
	check "$name: one line names the fault ($why)" grep -Eq "token 'web': .*${why//\$BAD_RE/$BAD}" "$T/$name.err"
	check "$name: no key is held (none listed, C_Logout: CKR_USER_NOT_LOGGED_IN)" held_none "$name"
	diag_stream <"$T/$name.err"
}
head -c 40 "$T/other-release.json" >"$T/bad/v1/keys"
bad truncated "$BAD_RE: POST /v1/keys: HTTP 200 with a body of 40 bytes that is not JSON"
printf 'keys: none\n' >"$T/bad/v1/keys"
bad not-json "$BAD_RE: POST /v1/keys: HTTP 200 with a body of 11 bytes that is not JSON"
truncate -s 100M "$T/bad/v1/keys"
bad oversize "$BAD_RE: POST /v1/keys: answer larger than 1048576 bytes, abandoned"
rm -f "$T/bad/v1/keys"
cp "$T/other-release.json" "$T/bad/v1/keys"
bad content-type "$BAD_RE: POST /v1/keys: HTTP 200 with Content-Type 'text/html', not application/json" text/html
bad other-key "key '[a-z]+' could not be decrypted"
check "the look-alike was asked for the challenge and the release each time" \
	test "$(fixture_fetches '^POST /v1/keys 200$')" = 5
stop_httpfixture

# a release cut short in transit: Content-Length 5000, 100 bytes, then the
# connection closes (libmicrohttpd always frames its answers whole, so this
# one is Python's http.server over TLS, with the broker's certificate)
python3 -c '
import http.server, os, ssl, sys
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = open(d + "/bad" + self.path, "rb").read()
        short = self.path == "/v1/keys"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(5000 if short else len(body)))
        self.end_headers()
        self.wfile.write(body[:100] if short else body)
        self.close_connection = short
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(d + "/pki/broker.crt", d + "/pki/broker.key")
s.socket = c.wrap_socket(s.socket, server_side=True)
open(d + "/cut.port.tmp", "w").write("%d\n" % s.server_address[1])
os.rename(d + "/cut.port.tmp", d + "/cut.port")
s.timeout = 60
s.serve_forever()
' "$T" 2>"$T/cut-server.err" &
AK_PIDS="$AK_PIDS $!"
for _ in $(seq 50); do [ -s "$T/cut.port" ] && break; sleep 0.1; done
[ -s "$T/cut.port" ] || bail "the cutting server did not listen: $(cat "$T/cut-server.err")"
CUT="https://127.0.0.1:$(cat "$T/cut.port")"
module_conf
sed -i "s|^brokers = .*|brokers = $CUT|" "$T/attestkey.conf"
login cut
check "cut: C_Login fails" grep -q "^login: CKR_DEVICE_ERROR$" "$T/cut.out"
check "cut: one line names the release cut short, after 100 of its 5000 bytes" \
	grep -q "no key broker could be reached: $CUT: POST /v1/keys: the connection closed before a complete answer, after 100 of its 5000 bytes" "$T/cut.err"
check "cut: no key is held (none listed, C_Logout: CKR_USER_NOT_LOGGED_IN)" held_none cut
diag_stream <"$T/cut.err"
module_conf

# 5. clock skew between replicas beyond the nonce window: a challenge of
# the broker, its release asked of a replica (same secret) whose clock is
# off (libfaketime); a replica 30 s ahead (inside the nonce's 60 s) is the
# control that the request made by hand is good
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
if [ -z "$FAKETIME_LIB" ]; then
	skip "skew: a replica's clock off by 10 minutes" "libfaketime is not installed (Debian: faketime)"
else
	# skewed OFFSET: a replica on the broker's secret, its clock off by OFFSET
	# (libfaketime preloaded into the broker itself, so that $! is the
	# broker); the release asked there for a fresh challenge of the broker;
	# sets got to "STATUS reason", the answer in $T/resp.json
	skewed() {
		local url pid
		sed "s|^port_file = .*|port_file = $T/skew.port|; s|^audit_log = .*|audit_log = $T/skew-audit.jsonl|" \
			"$T/broker.conf" >"$T/skew.conf"
		rm -f "$T/skew.port"
		LD_PRELOAD="$FAKETIME_LIB" FAKETIME="$1" \
			ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
			"$AK_BROKER" -f -c "$T/skew.conf" >>"$T/skew.log" 2>&1 &
		pid=$!
		AK_PIDS="$AK_PIDS $pid"
		echo "$pid" >>"$T/skew.pids"
		for _ in $(seq 100); do [ -s "$T/skew.port" ] && break; sleep 0.1; done
		url="https://127.0.0.1:$(cat "$T/skew.port" 2>/dev/null)"
		$CURL -H "$JSON" --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge" >"$T/skew-challenge.json"
		keys_request "$T/skew-challenge.json"
		$CURL -o "$T/resp.json" -w '%{http_code}' -H "$JSON" --data-binary @"$T/keys.json" "$url/v1/keys" >"$T/status"
		got="$(cat "$T/status") $(jq -r '.error // "-"' "$T/resp.json" 2>/dev/null)"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	}
	skewed +30s
	check "skew: control: a replica 30 s ahead releases ($got)" test "$got" = "200 -"
	skewed +10m
	check "skew: a replica 10 min ahead refuses 403 nonce_expired ($got)" test "$got" = "403 nonce_expired"
	check "skew: ... naming the nonce's age and lifetime" grep -Eq 'nonce expired [0-9]+ s ago \(lifetime 60 s\)' "$T/skew.log"
	skewed -10m
	check "skew: a replica 10 min behind refuses 403 nonce_expired ($got)" test "$got" = "403 nonce_expired"
	check "skew: ... naming a nonce issued in its future" grep -Eq 'nonce is issued (59[0-9]|60[0-9]) s in the future' "$T/skew.log"
	check "skew: the refusals are audited with their reason" \
		test "$(grep -c '"reason": *"nonce_expired"' "$T/skew-audit.jsonl")" = 2
	# shellcheck disable=SC2046
	refuse "skew: each replica stopped with its broker (none of the 3 left running)" \
		kill -0 $(cat "$T/skew.pids")
fi

# the broker that served sections 4 and 5 stops the ordinary way (SIGTERM):
# in the sanitizer build LeakSanitizer reports into its log at exit
stop_broker
start_broker
module_conf

# 6. nginx keeps serving on the key it holds when the broker dies
if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$ENGINE_SO" ]; then
	skip "nginx: serves after the broker is killed" "nginx or libengine-pkcs11-openssl is not installed"
else
	. "$(dirname "$0")/nginx-lib.sh"
	if start_nginx; then ok "nginx: starts with the attested key"; else
		not_ok "nginx: starts with the attested key"; diag_stream <"$T/nginx/start.log"; finish; fi
	{ kill -KILL "$BROKER_PID"; wait "$BROKER_PID"; } 2>/dev/null
	BROKER_PID=""
	n=0
	# 20 new connections: 20 handshakes signed by the workers' key
	for _ in $(seq 20); do
		curl -s --max-time 10 --cacert "$T/pki/web-ca.pem" "https://localhost:$NGINX_PORT/" |
			grep -q 'never touched' && n=$((n + 1))
	done
	check "nginx: 20 of 20 handshakes after the broker was killed ($n)" test "$n" = 20
	check "nginx: the served certificate is the released key's" bash -c "
		openssl s_client -connect 127.0.0.1:$NGINX_PORT -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 | cmp -s - <(openssl x509 -in '$T/keys/web/tls.crt' -noout -fingerprint -sha256)"
	stop_nginx
fi
# in the sanitizer build p11probe runs with LeakSanitizer on: a leak on any
# of the failed logins above would be reported in its stderr; the brokers'
# (sections 0, 2, 4 and 5) in the log
check "no sanitizer report (a leak, a memory error) in any login or broker run (ASan builds)" \
	bash -c "! grep -l 'ERROR: \\(Address\\|Leak\\)Sanitizer\\|runtime error' '$T'/*.err '$T/broker.log' '$T/skew.log' 2>/dev/null | grep -q ."
finish
