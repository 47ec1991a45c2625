# SPDX-License-Identifier: Apache-2.0
# nginx with a key that only the attested guest receives, through libp11's
# engine: used by tests/integration/nginx.sh and the demo.

# write_engine_conf [FILE [MODULE]]: an openssl.cnf (default $T/openssl.cnf)
# loading libp11's engine on MODULE (default: our module)
write_engine_conf() {
	cat >"${1:-$T/openssl.cnf}" <<EOC
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = ${2:-$AK_MODULE}
init = 1
EOC
}

# write_nginx_conf PORT: two workers (or $NGINX_WORKERS), TLS key by PKCS#11
# URI; $NGINX_MAIN_EXTRA and $NGINX_SERVER_EXTRA, if set, are added to the
# main context and to the server block
write_nginx_conf() {
	mkdir -p "$T/nginx/logs" "$T/nginx/tmp"
	cat >"$T/nginx/nginx.conf" <<EOC
daemon off;
master_process on;
worker_processes ${NGINX_WORKERS:-2};
${NGINX_MAIN_EXTRA:-}
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log info;
# the workers need the module's config path after fork (libp11 re-initialises)
env ATTESTKEY_CONF;
env OPENSSL_CONF;
events { worker_connections 64; }
http {
	log_format ak '\$pid \$ssl_protocol \$ssl_session_reused \$status';
	access_log $T/nginx/logs/access.log ak;
	client_body_temp_path $T/nginx/tmp/body;
	proxy_temp_path $T/nginx/tmp/proxy;
	fastcgi_temp_path $T/nginx/tmp/fastcgi;
	uwsgi_temp_path $T/nginx/tmp/uwsgi;
	scgi_temp_path $T/nginx/tmp/scgi;
	server {
		listen 127.0.0.1:$1 ssl reuseport;
		ssl_certificate $T/keys/web/tls.crt;
		ssl_certificate_key "engine:pkcs11:pkcs11:token=web;object=tls;type=private;pin-value=1234";
		${NGINX_SERVER_EXTRA:-}
		location / { return 200 "hello from a key that never touched this disk\n"; }
	}
}
EOC
}

# start_nginx: start nginx on a free port; NGINX_PORT, NGINX_PID set. nginx
# is started by its absolute path, so that a binary upgrade (SIGUSR2, which
# execve()s argv[0]) can start a new master. $NGINX_READY_OPTS, if set, are
# curl's options for the check that nginx serves (default: --cacert of the
# test's web CA; lease-nginx.sh serves a self-signed rotated certificate).
# Returns non-zero (and leaves nginx's own words in $T/nginx/start.log) if
# nginx did not come up.
start_nginx() {
	local try
	write_engine_conf
	for try in 1 2 3 4 5; do
		NGINX_PORT=$((20000 + RANDOM % 30000))
		write_nginx_conf "$NGINX_PORT"
		OPENSSL_CONF="$T/openssl.cnf" $AK_RUN "$(command -v nginx)" -p "$T/nginx" -c "$T/nginx/nginx.conf" \
			-e "$T/nginx/logs/error.log" >"$T/nginx/start.log" 2>&1 &
		NGINX_PID=$!
		for _ in $(seq 100); do
			kill -0 "$NGINX_PID" 2>/dev/null || break
			# shellcheck disable=SC2086
			curl -s -o /dev/null ${NGINX_READY_OPTS:---cacert $T/pki/web-ca.pem} \
				"https://localhost:$NGINX_PORT/" && break
			sleep 0.1
		done
		if kill -0 "$NGINX_PID" 2>/dev/null; then
			AK_PIDS="$AK_PIDS $NGINX_PID"
			return 0
		fi
		wait "$NGINX_PID" 2>/dev/null
		grep -q "Address already in use" "$T/nginx/start.log" "$T/nginx/logs/error.log" 2>/dev/null || return 1
	done
	return 1
}

stop_nginx() {
	[ -n "${NGINX_PID:-}" ] && kill -QUIT "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	NGINX_PID=""
}
