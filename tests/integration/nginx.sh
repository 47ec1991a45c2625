#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# nginx end to end: two workers serve TLS with a key released by the broker
# after SNP attestation; one release for the whole nginx; a policy change
# makes the next start fail, naming the refused measurement.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
need nginx curl openssl
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"

setup_world
start_broker
if start_nginx; then ok "nginx starts with the attested key"; else
	not_ok "nginx starts with the attested key"; diag_stream <"$T/nginx/start.log"
	diag_stream <"$T/nginx/logs/error.log"; finish; fi

# reuseport spreads connections over both workers by source port: with 40
# new connections the chance that one worker gets all of them is 2^-39.
for i in $(seq 40); do
	curl -s --cacert "$T/pki/web-ca.pem" "https://localhost:$NGINX_PORT/" >"$T/body.$i" 2>>"$T/curl.err"
done
check "curl --cacert succeeds (40 requests)" bash -c "cat '$T'/body.* | grep -c 'never touched' | grep -qx 40"
check "nginx runs 2 workers" bash -c "test \$(pgrep -P $NGINX_PID | wc -l) -eq 2"
check "both workers signed handshakes with the key (2 pids in the access log)" \
	bash -c "test \$(awk '{ print \$1 }' '$T/nginx/logs/access.log' | sort -u | wc -l) -eq 2"
check "the served certificate is the released key's" bash -c "
	openssl s_client -connect 127.0.0.1:$NGINX_PORT -servername localhost </dev/null 2>/dev/null |
	openssl x509 -noout -fingerprint -sha256 | cmp -s - <(openssl x509 -in '$T/keys/web/tls.crt' -noout -fingerprint -sha256)"
check "the broker saw exactly one release for nginx with 2 workers" test "$(releases)" -eq 1
check "TLS 1.2 with an ECDHE-RSA suite works too (RSA PKCS#1 signing)" \
	curl -s -o /dev/null --tls-max 1.2 --cacert "$T/pki/web-ca.pem" "https://localhost:$NGINX_PORT/"
stop_nginx

# The owner changes the token's policy; the next start of nginx fails.
write_broker_conf
sed -i "s/^measurements = .*/measurements = $OTHER_MEASUREMENT/" "$T/broker.conf"
restart_broker
if start_nginx; then not_ok "nginx refuses to start once the policy excludes the guest"; stop_nginx
else ok "nginx refuses to start once the policy excludes the guest"; fi
check "nginx's output names the refused measurement" grep -q "measurement_not_allowed.*$MEASUREMENT" "$T/nginx/start.log" "$T/nginx/logs/error.log"
finish
