#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 12 under nginx (docs/lifecycle.md "Fork", "Rotation in place"):
# two workers with reattest_after_fork = no (the default) and a lease of
# 3 s. The master renews, the workers never do and keep the keys they
# inherited; curl in a loop sees every handshake succeed (a TLS handshake
# verifies the server's signature against the certificate it sent, so a
# success means key and certificate matched). Rotation: after the master's
# renewal swapped in the new key, a hook writes the certificate the token
# now holds into nginx's ssl_certificate; nginx -s reload is refused by
# libp11 (it caches the public key of a handle), the old workers serve old
# key + old certificate throughout, and no handshake fails; a new master
# serves the new key with the new certificate. With rotate_in_place = no a
# rotation waits for the next login and a reload keeps the pair together.
# Revocation: the master's keys are wiped at its next renewal; the workers
# sign until their inherited lease ends plus max_offline, then every
# handshake fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
. "$(dirname "$0")/lease-lib.sh"
need nginx curl openssl
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"

lease_world 3
# nginx serves a copy of the certificate: the rotation hook replaces it
mkdir -p "$T/nginx"
cp "$T/keys/web/tls.crt" "$T/nginx/served.crt"
eval "orig_$(declare -f write_nginx_conf)"
write_nginx_conf() {
	orig_write_nginx_conf "$@"
	sed -i "s|ssl_certificate $T/keys/web/tls.crt;|ssl_certificate $T/nginx/served.crt;|" "$T/nginx/nginx.conf"
}
LOG="$T/nginx/logs/error.log" # nginx puts its workers' stderr, the module's log, there

if start_nginx; then ok "nginx starts with the attested key"; else
	not_ok "nginx starts with the attested key"; diag_stream <"$T/nginx/start.log"
	diag_stream <"$LOG"; finish; fi
master=$NGINX_PID

# 1. renewals in the master, none in the workers, no failed handshake
curl_loop renew &
loop=$!
check "renew: the master renews twice while curl loops" wait_for "$LOG" "lease renewed in pid $master:" 2
stop_loop "$loop"
check "renew: every handshake succeeded" all_200 renew
check "renew: only the master renewed" \
	test "$(renewal_ids "$LOG" | wc -l)" = "$(renewal_ids "$LOG" "$master" | wc -l)"
check "renew: each renewal is audited" all_audited "$LOG" "$master"

# 2. rotation. The master's next renewal swaps the key behind its handle;
# the workers keep the keys they inherited, with the certificate nginx read
# at start: consistent. nginx -s reload cannot bring the new key: libp11 in
# the master caches each key's public part by handle, and its check of the
# new certificate against it fails (nginx keeps the old configuration).
# (A reload with the old certificate file would be worse: new workers
# with the new key and the old certificate; docs/lifecycle.md.) The new
# key reaches nginx with a new master, which logs in afresh.
old_fp=$(served_fp)
curl_loop rotate &
loop=$!
"$AK_TOOL" key rotate --store "file:$T/keys/web" --cert self-signed --subject /CN=localhost tls \
	>"$T/rotate.log" 2>&1
check "rotate: attestkey key rotate makes a new version" grep -q 'rotated to version 2' "$T/rotate.log"
new_cert_fp() { openssl x509 -in "$T/keys/web/tls.crt" -noout -fingerprint -sha256; }
check "rotate: a renewal of the master swapped in the new key and certificate" \
	wait_token_cert "$(new_cert_fp)"
check "rotate: the workers still serve the old certificate (with the old key)" \
	test "$(served_fp)" = "$old_fp"
# the hook: the certificate the token now holds into nginx's file
token_cert_pem >"$T/nginx/served.crt.new" && mv "$T/nginx/served.crt.new" "$T/nginx/served.crt"
before=$(workers_started)
kill -HUP "$master"
check "rotate: nginx -s reload is refused by libp11's cached public key (nginx goes on)" \
	wait_for "$LOG" 'SSL_CTX_use_PrivateKey.*key values mismatch'
check "rotate: the old workers go on after the refused reload" test "$(workers_started)" = "$before"
n=$(wc -l <"$T/rotate.codes")
check "rotate: requests go on" wait_for "$T/rotate.codes" '^' $((n + 20))
stop_loop "$loop"
check "rotate: every handshake succeeded, before and after the swap and the refused reload" \
	all_200 rotate
diag "$(wc -l <"$T/rotate.codes") handshakes during the rotation"
# the new key reaches nginx with a new master, which logs in afresh and
# reads the new certificate file (here a restart; nginx's binary upgrade,
# SIGUSR2, does the same without a gap when nginx runs as a daemon)
stop_nginx
token_conf "max_offline = 10" "rotate_in_place = no"
NGINX_READY_OPTS=-k start_nginx || bail "nginx does not start again"
master=$NGINX_PID
check "rotate: a new master serves the new certificate" test "$(served_fp)" = "$(new_cert_fp)"
check "rotate: and signs with the new key (the handshake verifies)" \
	bash -c "curl -k -s -o /dev/null -w '%{http_code}' 'https://127.0.0.1:$NGINX_PORT/' | grep -qx 200"

# 2b. rotate_in_place = no (the new master): a rotation waits for the next
# login, so a reload with the certificate file as it is keeps key and
# certificate together
v2_fp=$(new_cert_fp)
curl_loop held &
loop=$!
"$AK_TOOL" key rotate --store "file:$T/keys/web" --cert self-signed --subject /CN=localhost tls \
	>"$T/rotate3.log" 2>&1
check "held: attestkey key rotate makes a third version" grep -q 'rotated to version 3' "$T/rotate3.log"
check "held: the master says a new version waits for the next login" \
	wait_for "$LOG" 'other key versions than this process holds'
before=$(workers_started)
kill -HUP "$master"
check "held: nginx -s reload starts 2 new workers" wait_for "$LOG" 'start worker process' $((before + 2))
n=$(wc -l <"$T/held.codes")
check "held: requests go on after the reload" wait_for "$T/held.codes" '^' $((n + 20))
stop_loop "$loop"
check "held: every handshake succeeded across the rotation and the reload" all_200 held
check "held: nginx serves the certificate of the key it holds" test "$(served_fp)" = "$v2_fp"

# 3. revocation (the new master has max_offline = 10): the master's keys
# are wiped at its next renewal; the workers, which never renew, sign until
# their inherited lease ends plus max_offline, then every handshake fails
cp "$T/broker.conf" "$T/broker.conf.good"
curl_loop revoke &
loop=$!
check "revoke: handshakes succeed first" wait_for "$T/revoke.codes" '^200$' 3
sed -i "s/^measurements = .*/measurements = $OTHER_MEASUREMENT/" "$T/broker.conf"
check "revoke: the broker reloads the new policy" hup
check "revoke: the master's keys are wiped at its renewal, with the refusal id" \
	wait_for "$LOG" "keys wiped: broker refused the release: measurement_not_allowed.*refusal id"
check "revoke: a worker's inherited keys are wiped at lease end + max_offline" \
	wait_for "$LOG" "keys wiped: the lease this process inherited at fork() ended 10 s ago"
check "revoke: handshakes fail then" wait_for "$T/revoke.codes" '^000$' 3
stop_loop "$loop"
check "revoke: once one failed, none succeeded again" \
	bash -c "! sed -n '/^000\$/,\$p' '$T/revoke.codes' | grep -qv '^000\$'"
# a reload forks workers from a master without keys: their login is refused
before=$(workers_started)
kill -HUP "$master"
check "revoke: after a reload the new workers start" wait_for "$LOG" 'start worker process' $((before + 2))
code=$(curl -k -s -o /dev/null -w '%{http_code}' --max-time 10 "https://127.0.0.1:$NGINX_PORT/")
check "revoke: their handshakes fail too (the broker refuses their login)" test "$code" = 000
cp "$T/broker.conf.good" "$T/broker.conf"
hup
stop_nginx
finish
