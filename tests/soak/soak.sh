#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make soak (issue 13 item 5): a bounded run (SOAK_SECONDS, default 600) of
# everything at once against real brokers, and what must hold at its end:
#  - a long-lived application (leasehost) signs without pause under a
#    5 s lease: renewals every few seconds, each a whole attested login;
#  - fresh processes log in one after another (p11probe), each a release;
#  - the key is rotated in the file store every ROTATE_EVERY s
#    (attestkey key rotate), so renewals bring new versions in place;
#  - broker B is restarted (SIGTERM, start) every RESTART_EVERY s; half
#    the logins list B first and go on at A while B is away, the other
#    half and the long-lived application list A first.
# At the end: zero failed logins and signatures, every signature verified
# against the certificate served around it, the audit logs' releases match
# the releases the module logged one to one, and the resident memory of
# broker A (never restarted) and of the long-lived application is flat:
# the median of the last third of the samples within 10 % (and 2 MiB) of
# the median of the first third after a warm-up. Prints the figures as
# markdown (docs/security.md "Soak" records a run). Not part of make check.
set -u
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/lease-lib.sh"
need jq openssl
SECS=${SOAK_SECONDS:-600}
ROTATE_EVERY=${SOAK_ROTATE_EVERY:-60}
RESTART_EVERY=${SOAK_RESTART_EVERY:-45}
SAMPLE_EVERY=10
ID_RE='[0-9a-f]{32}'

lease_world 5
stop_broker
# A and B: the same configuration, their own port files and audit logs
for r in a b; do
	sed -e "s|^port_file = .*|port_file = $T/broker-$r.port|" \
		-e "s|^audit_log = .*|audit_log = $T/audit-$r.jsonl|" "$T/broker.conf" >"$T/broker-$r.conf"
done
start_replica() { # NAME: start it and wait for its port; PID_NAME
	local pid
	rm -f "$T/broker-$1.port"
	"$AK_BROKER" -f -c "$T/broker-$1.conf" >>"$T/broker-$1.log" 2>&1 &
	pid=$!
	AK_PIDS="$AK_PIDS $pid"
	for _ in $(seq 100); do
		[ -s "$T/broker-$1.port" ] && break
		kill -0 "$pid" 2>/dev/null || bail "broker $1 exited: $(tail -n 3 "$T/broker-$1.log")"
		sleep 0.1
	done
	[ -s "$T/broker-$1.port" ] || bail "broker $1 did not start listening"
	eval "PID_$1=$pid"
}
start_replica a
start_replica b
write_module_conf
# B first: while B restarts, the module goes on at A. B keeps its port
# (listen is set to it after the first start) so the list stays valid.
port_b=$(cat "$T/broker-b.port")
sed -i "s|^listen = .*|listen = 127.0.0.1:$port_b|" "$T/broker-b.conf"
url_a=https://127.0.0.1:$(cat "$T/broker-a.port") url_b=https://127.0.0.1:$port_b
sed -i "s|^brokers = .*|brokers = $url_b, $url_a|" "$T/attestkey.conf"
# A first for the long-lived application and every other login, so that A,
# whose memory is watched, serves all along
sed "s|^brokers = .*|brokers = $url_a, $url_b|" "$T/attestkey.conf" >"$T/attestkey-a.conf"

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

ATTESTKEY_CONF="$T/attestkey-a.conf" LEASEHOST_LABEL=tls "$HOST" "$AK_MODULE" sign "$SECS" 1234 >"$T/host.out" 2>"$T/host.err" &
host=$!
AK_PIDS="$AK_PIDS $host"
wait_ready "$T/host.out" || bail "the long-lived application did not log in: $(tail -n 3 "$T/host.err")"

mkdir -p "$T/run"
logins=0 failed=0 rotations=0 restarts=0
t0=$(date +%s)
next_sample=$t0 next_rotate=$((t0 + ROTATE_EVERY)) next_restart=$((t0 + RESTART_EVERY))
echo "seconds rss_broker_a_kib rss_application_kib" >"$T/rss.txt"
while now=$(date +%s) && [ $((now - t0)) -lt "$SECS" ]; do
	logins=$((logins + 1))
	conf="$T/attestkey.conf"
	[ $((logins % 2)) = 1 ] && conf="$T/attestkey-a.conf"
	if ! ATTESTKEY_CONF=$conf timeout 30 "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/run/$logins.out" 2>"$T/run/$logins.err"; then
		failed=$((failed + 1))
		echo "login $logins failed: $(tail -n 2 "$T/run/$logins.err")" >&2
	fi
	if [ "$now" -ge "$next_sample" ]; then
		echo "$((now - t0)) $(rss "$PID_a") $(rss "$host")" >>"$T/rss.txt"
		next_sample=$((next_sample + SAMPLE_EVERY))
	fi
	if [ "$now" -ge "$next_rotate" ]; then
		"$AK_TOOL" key rotate --store "file:$T/keys/web" --cert self-signed --subject /CN=localhost \
			tls >>"$T/rotate.log" 2>&1 || bail "attestkey key rotate failed: $(tail -n 2 "$T/rotate.log")"
		rotations=$((rotations + 1))
		next_rotate=$((next_rotate + ROTATE_EVERY))
	fi
	if [ "$now" -ge "$next_restart" ]; then
		kill -TERM "$PID_b"
		wait "$PID_b" 2>/dev/null
		start_replica b
		restarts=$((restarts + 1))
		next_restart=$((next_restart + RESTART_EVERY))
	fi
done
wait "$host"
kill -TERM "$PID_b" "$PID_a"
wait "$PID_b" "$PID_a" 2>/dev/null

# what the module logged: each login's release id, each renewal's
grep -Eho "release id $ID_RE" "$T"/run/*.err | awk '{ print $3 }' >"$T/module.ids"
grep -Eho "release id $ID_RE" "$T/host.err" | awk '{ print $3 }' >>"$T/module.ids"
sort -u "$T/module.ids" -o "$T/module.ids"
jq -r 'select(.event == "release") | .id' "$T/audit-a.jsonl" "$T/audit-b.jsonl" | sort >"$T/audit.ids"
renewals=$(renewal_ids "$T/host.err" | wc -l)
dups=$(uniq -d "$T/audit.ids" | wc -l)
missing=$(comm -23 "$T/module.ids" "$T/audit.ids" | wc -l)
orphans=$(comm -13 "$T/module.ids" "$T/audit.ids" | wc -l)

# flat: median of the last third against the first third after 30 s
flat() { # COLUMN -> "first last verdict"
	awk -v c="$1" 'NR > 1 && $1 >= 30 { v[++n] = $c }
		function med(a, b,   i, k, t, w) { k = 0; for (i = a; i <= b; i++) w[++k] = v[i]
			for (i = 1; i <= k; i++) for (t = i + 1; t <= k; t++) if (w[t] < w[i]) { x = w[i]; w[i] = w[t]; w[t] = x }
			return w[int((k + 1) / 2)] }
		END { if (n < 6) { print "n/a n/a too-few-samples"; exit }
			f = med(1, int(n / 3)); l = med(n - int(n / 3) + 1, n)
			ok = (l - f <= f * 0.10 || l - f <= 2048) ? "flat" : "GROWS"
			print f, l, ok }' "$T/rss.txt"
}
read -r a_first a_last a_verdict < <(flat 2)
read -r h_first h_last h_verdict < <(flat 3)

echo "## Soak ($(date -u +%F), $(nproc) cores, ${SECS} s)"
echo
echo "| figure | value |"
echo "|---|---|"
echo "| logins (new processes) | $logins, $failed failed |"
echo "| long-lived application: signatures | $(field "$T/host.out" signs_ok) ok, $(field "$T/host.out" signs_failed) failed, $(field "$T/host.out" verify_mismatch) not matching the certificate served |"
echo "| its renewals (lease 5 s) | $renewals |"
echo "| its certificate keys seen | $(field "$T/host.out" spki_seen) ($rotations rotations) |"
echo "| broker B restarts | $restarts |"
echo "| releases the module logged / audited | $(wc -l <"$T/module.ids") / $(wc -l <"$T/audit.ids"): $missing missing from the audit, $dups audited twice, $orphans audited but not logged by the module |"
echo "| broker A resident memory, median first / last third | $a_first / $a_last KiB: $a_verdict |"
echo "| application resident memory, median first / last third | $h_first / $h_last KiB: $h_verdict |"
echo
echo "Samples (s, KiB): $(tail -n +2 "$T/rss.txt" | awk '{ printf "%s%s:%s/%s", (NR > 1 ? ", " : ""), $1, $2, $3 }')"
status=0
[ "$failed" = 0 ] || status=1
[ "$(field "$T/host.out" signs_failed)" = 0 ] || status=1
[ "$(field "$T/host.out" verify_mismatch)" = 0 ] || status=1
[ "$missing" = 0 ] && [ "$dups" = 0 ] && [ "$orphans" = 0 ] || status=1
[ "$a_verdict" = flat ] && [ "$h_verdict" = flat ] || status=1
[ "$renewals" -gt 0 ] || status=1
[ $status = 0 ] && echo "soak: every figure holds" || echo "soak: FAILED (see the table)"
exit $status
