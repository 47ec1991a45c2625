# SPDX-License-Identifier: Apache-2.0
# Shared by the lease tests (issue 12): sourced after lib.sh. A world whose
# broker grants leases of LEASE seconds, the signing host, and readers of
# its report and of the module's log.
HOST="$top_builddir/tests/integration/leasehost"
[ -x "$HOST" ] || bail "$HOST not built"
HOST=$(ak_valgrind leasehost "$HOST")
need jq

# lease_world [LEASE]: setup_world with [broker] lease = LEASE (default 3)
lease_world() {
	setup_world
	sed -i "s/^\[broker\]\$/[broker]\nlease = ${1:-3}/" "$T/broker.conf"
	start_broker
}
# token_conf LINE...: append lines to the module's [token web] (the last section)
token_conf() { printf '%s\n' "$@" >>"$T/attestkey.conf"; }
# field FILE NAME: the value of "NAME: value" in a leasehost report
field() { sed -n "s/^$2: //p" "$1" | head -n 1; }
# wait_for FILE REGEX [N]: until FILE has N (default 1) lines matching (60 s at most)
wait_for() {
	for _ in $(seq 600); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] && return 0
		sleep 0.1
	done
	return 1
}
# wait_ready FILE: until leasehost has logged in
wait_ready() { wait_for "$1" '^ready$'; }
# renewal_ids FILE [PID]: the release ids of the module's renewal lines (of PID)
renewal_ids() {
	sed -n "s/.*lease renewed in pid ${2:-[0-9]*}: .* release id \([0-9a-f]*\),.*/\1/p" "$1"
}
# audited ID EVENT: the broker's audit has an EVENT line with that id
# (jq -s: jq 1.6's -e looks at the last input only)
audited() {
	jq -s -e --arg id "$1" --arg ev "${2:-release}" 'any(.[]; .id == $id and .event == $ev)' \
		"$T/audit.jsonl" >/dev/null
}
# all_audited FILE [PID] [MIN]: at least MIN (default 2) renewals in FILE
# (of PID), each a release in the broker's audit
all_audited() {
	local id n=0
	for id in $(renewal_ids "$1" "${2:-}"); do
		audited "$id" || return 1
		n=$((n + 1))
	done
	[ "$n" -ge "${3:-2}" ]
}
# heap_back FILE: the secure heap ended where it was before the login
heap_back() { test "$(field "$1" secure_end)" = "$(field "$1" secure_before_login)"; }

# ---- under nginx (lease-nginx.sh, lease-vault-nginx.sh); NGINX_PORT, LOG ----
# curl_loop NAME: one request after another until $T/stop exists; each
# line of $T/NAME.codes is an HTTP status (000: the handshake failed).
# -k: the rotated certificate is self-signed; the handshake's signature is
# verified against the certificate sent all the same.
curl_loop() {
	rm -f "$T/stop"
	while [ ! -e "$T/stop" ]; do
		curl -k -s -o /dev/null -w '%{http_code}\n' --max-time 5 \
			"https://127.0.0.1:$NGINX_PORT/" >>"$T/$1.codes" 2>/dev/null
		sleep 0.05
	done
}
stop_loop() { touch "$T/stop"; wait "$1"; }
all_200() { [ -s "$T/$1.codes" ] && ! grep -qv '^200$' "$T/$1.codes"; }
served_fp() {
	openssl s_client -connect "127.0.0.1:$NGINX_PORT" -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
workers_started() { grep -c 'start worker process' "$LOG" 2>/dev/null || true; }
b64url_decode() {
	local s
	s=$(tr '_-' '/+')
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | base64 -d
}
# the certificate of "tls" in the token's public view, as the module wrote
# it after its last release or renewal (attestkey.conf(5) cache_dir)
token_cert_pem() {
	jq -r '.keys[] | select(.label == "tls") | .cert' "$T/cache/web.json" | b64url_decode |
		openssl x509 -inform DER 2>/dev/null
}

# wait_token_cert FP: until the token's public view holds the certificate
# of SHA-256 fingerprint FP (a renewal swapped it in; 30 s at most)
wait_token_cert() {
	for _ in $(seq 300); do
		[ "$(token_cert_pem | openssl x509 -noout -fingerprint -sha256 2>/dev/null)" = "$1" ] &&
			return 0
		sleep 0.1
	done
	return 1
}
