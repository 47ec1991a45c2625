#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# nginx end to end on the simulated TDX guest: the TLS key is released by
# the broker after it verified a v4 TD quote (sim root, sim collateral) and
# the token's MRTD policy; curl fetches a page and the served certificate is
# the released key's; once the policy names another MRTD nginx cannot start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
need nginx curl openssl jq
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"

setup_world_tdx
start_broker
if start_nginx; then ok "nginx starts with a key released to the TD"; else
	not_ok "nginx starts with a key released to the TD"; diag_stream <"$T/nginx/start.log"
	diag_stream <"$T/nginx/logs/error.log"; finish; fi

check "curl --cacert fetches the page" bash -c \
	"curl -s --cacert '$T/pki/web-ca.pem' https://localhost:$NGINX_PORT/ | grep -q 'never touched'"
check "the served certificate is the released key's" bash -c "
	openssl s_client -connect 127.0.0.1:$NGINX_PORT -servername localhost </dev/null 2>/dev/null |
	openssl x509 -noout -fingerprint -sha256 | cmp -s - <(openssl x509 -in '$T/keys/web/tls.crt' -noout -fingerprint -sha256)"
check "the broker released once, on TDX evidence (MRTD, UpToDate)" bash -c "
	test \$(grep -c '\"event\": *\"release\"' '$T/audit.jsonl') -eq 1 &&
	grep '\"event\": *\"release\"' '$T/audit.jsonl' | jq -e '.mrtd == \"$TDX_MRTD\" and .tcb_status == \"UpToDate\"'"
stop_nginx

# The owner changes the token's MRTD; the next start of nginx fails.
write_broker_conf
sed -i "s/^mrtd = .*/mrtd = $OTHER_MRTD/" "$T/broker.conf"
restart_broker
if start_nginx; then not_ok "nginx refuses to start once the policy excludes the TD"; stop_nginx
else ok "nginx refuses to start once the policy excludes the TD"; fi
check "nginx's output names the refused MRTD" grep -q "measurement_not_allowed.*$TDX_MRTD" "$T/nginx/start.log" "$T/nginx/logs/error.log"
finish
