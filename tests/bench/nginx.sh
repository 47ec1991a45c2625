#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, item 2 of issue 4: full TLS handshakes per second of nginx
# (2 workers, loopback, no session reuse) with the same RSA-2048 and P-256
# keys from a PEM file, from attestkey through libp11's engine, and from
# SoftHSMv2 through the same engine. Three nginx run side by side; in every
# round each of them is loaded by tests/bench/tlsload for the same time
# slice, in an order that rotates. Afterwards every access-log line is
# checked: no handshake may have been resumed ($ssl_session_reused).
. "$(dirname "$0")/bench-lib.sh"
. "$(dirname "$0")/../integration/nginx-lib.sh"
need nginx softhsm2-util
TLSLOAD=${TLSLOAD:-$top_builddir/tests/bench/tlsload}
ROUNDS=${BENCH_ROUNDS:-5}
SLICE_MS=${BENCH_SLICE_MS:-3000}
CONNS=${BENCH_CONNS:-4}
[ -n "${BENCH_QUICK:-}" ] && { ROUNDS=${BENCH_ROUNDS:-3}; SLICE_MS=${BENCH_SLICE_MS:-1000}; }
[ -x "$TLSLOAD" ] || bail "$TLSLOAD not built"
[ -f "$ENGINE_SO" ] || bail "libp11's engine $ENGINE_SO is not installed"

setup_world
start_broker
# the same two keys in a SoftHSM token "ref"
softhsm_token || bail "softhsm2-util --init-token failed"
softhsm2-util --import "$T/keys/web/tls.key" --token ref --label tls --id 01 --pin 1234 >/dev/null &&
	softhsm2-util --import "$T/keys/web/ec.key" --token ref --label ec --id 02 --pin 1234 >/dev/null ||
	bail "SoftHSM did not import the keys"

# start_one NAME RSA_KEY EC_KEY [single]: nginx NAME with two servers, on
# ports PORT_NAME_rsa and PORT_NAME_ec; 2 workers, or one process (no
# master, no fork) when the fourth argument is "single"
start_one() {
	local n=$1 d="$T/ngx-$1" pr pe pid procs="master_process on; worker_processes 2;"
	[ "${4:-}" = single ] && procs="master_process off;"
	pr=$((20000 + RANDOM % 30000))
	pe=$((pr + 1))
	mkdir -p "$d/logs" "$d/tmp"
	cat >"$d/nginx.conf" <<EOC
daemon off;
$procs
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
env ATTESTKEY_CONF;
env OPENSSL_CONF;
env SOFTHSM2_CONF;
events { worker_connections 512; }
http {
	log_format hs '\$ssl_protocol \$ssl_session_reused \$status';
	access_log $d/logs/access.log hs;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache off;
	ssl_session_tickets off;
	server {
		listen 127.0.0.1:$pr ssl;
		ssl_certificate $T/pki/tls.crt;
		ssl_certificate_key "$2";
		location / { return 200 "rsa\n"; }
	}
	server {
		listen 127.0.0.1:$pe ssl;
		ssl_certificate $T/pki/ec.crt;
		ssl_certificate_key "$3";
		location / { return 200 "ec\n"; }
	}
}
EOC
	if [ -f "$T/$n.cnf" ]; then
		OPENSSL_CONF="$T/$n.cnf" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" >"$d/start.log" 2>&1 &
	else
		nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" >"$d/start.log" 2>&1 &
	fi
	pid=$!
	AK_PIDS="$AK_PIDS $pid"
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		curl -s -o /dev/null --cacert "$T/pki/web-ca.pem" "https://localhost:$pr/" &&
			curl -s -o /dev/null --cacert "$T/pki/web-ca.pem" "https://localhost:$pe/" && break
		sleep 0.1
	done
	if ! curl -s -o /dev/null --cacert "$T/pki/web-ca.pem" "https://localhost:$pr/" ||
		! curl -s -o /dev/null --cacert "$T/pki/web-ca.pem" "https://localhost:$pe/"; then
		cat "$d/start.log" "$d/logs/error.log" >&2
		bail "nginx '$n' did not come up"
	fi
	eval "PORT_${n}_rsa=$pr PORT_${n}_ec=$pe"
}

write_engine_conf "$T/attestkey.cnf" "$AK_MODULE"
write_engine_conf "$T/softhsm.cnf" "$SOFTHSM_SO"
start_one file "$T/pki/tls.key" "$T/pki/ec.key"
start_one attestkey "engine:pkcs11:pkcs11:token=web;object=tls;type=private;pin-value=1234" \
	"engine:pkcs11:pkcs11:token=web;object=ec;type=private;pin-value=1234"
# SoftHSM 2.6.1 behind libp11 0.4.12 fails every handshake in a forked
# worker (CKR_OBJECT_HANDLE_INVALID when libp11 reloads the key after fork),
# so its nginx runs as one process: its row is a single core's worth
start_one softhsm "engine:pkcs11:pkcs11:token=ref;object=tls;type=private;pin-value=1234" \
	"engine:pkcs11:pkcs11:token=ref;object=ec;type=private;pin-value=1234" single

echo "## nginx full handshakes ($(bench_machine))"
echo
echo "nginx $(nginx -v 2>&1 | sed 's|.*/||'), 2 workers for file and attestkey, one process for SoftHSM (it fails in"
echo "forked workers, see tests/bench/README.md); tlsload with $CONNS connections, each a full"
echo "handshake (no session cache, no tickets) + GET / + close. $ROUNDS rounds of ${SLICE_MS} ms per"
echo "instance, rotated; medians, and medians of the per-round ratios."
echo
echo "| case | file hs/s | attestkey hs/s | SoftHSM hs/s | attestkey/file | SoftHSM/file | errors |"
echo "|---|---|---|---|---|---|---|"
names=(file attestkey softhsm)
for ver in 1.3 1.2; do
	for kt in rsa ec; do
		case_name="TLS$ver $([ $kt = rsa ] && echo RSA-2048 || echo P-256)"
		: >"$T/r.file"; : >"$T/r.attestkey"; : >"$T/r.softhsm"; : >"$T/q.ak"; : >"$T/q.sh"
		errs=0
		for r in $(seq "$ROUNDS"); do
			declare -A rate=()
			for k in 0 1 2; do
				n=${names[$(((r + k) % 3))]}
				port_var="PORT_${n}_$kt"
				out=$("$TLSLOAD" "${!port_var}" "$T/pki/web-ca.pem" "$ver" "$CONNS" "$SLICE_MS" 2>"$T/tls.err") ||
					{ cat "$T/tls.err" >&2; bail "tlsload against $n failed"; }
				rate[$n]=$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$out")
				errs=$((errs + $(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")))
				[ -s "$T/tls.err" ] && head -n 2 "$T/tls.err" >&2
				echo "${rate[$n]}" >>"$T/r.$n"
			done
			awk -v a="${rate[attestkey]}" -v b="${rate[file]}" 'BEGIN { printf "%.3f\n", a / b }' >>"$T/q.ak"
			awk -v a="${rate[softhsm]}" -v b="${rate[file]}" 'BEGIN { printf "%.3f\n", a / b }' >>"$T/q.sh"
		done
		mf=$(quantile 0.5 <"$T/r.file")
		ma=$(quantile 0.5 <"$T/r.attestkey")
		ms=$(quantile 0.5 <"$T/r.softhsm")
		qa=$(quantile 0.5 <"$T/q.ak")
		qs=$(quantile 0.5 <"$T/q.sh")
		echo "| $case_name | $mf | $ma | $ms | $qa | $qs | $errs |"
		met=$(awk -v q="$qa" 'BEGIN { print (q >= 0.95) ? "yes" : "no" }')
		csv_row nginx "$case_name" attestkey "$ma" file "$mf" handshakes/s "$qa" ">=0.95" "$met"
		csv_row nginx "$case_name" softhsm "$ms" file "$mf" handshakes/s "$qs" "" ""
	done
done
echo
# every request of the run: how many rode on a resumed session ("r")
total=0 resumed=0
for n in "${names[@]}"; do
	log="$T/ngx-$n/logs/access.log"
	total=$((total + $(wc -l <"$log")))
	resumed=$((resumed + $(awk '$2 == "r"' "$log" | wc -l)))
done
echo "Resumed handshakes: $resumed of $total requests (\$ssl_session_reused in the access logs)."
csv_row nginx "resumed handshakes" all "$resumed" requests "$total" count "" "=0" \
	"$([ "$resumed" = 0 ] && echo yes || echo no)"
echo
