#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 11, item 1: the audit trail that cannot be skipped.
# - every decision has a random id: the release's is in the module's log
#   line and in the broker's audit line, a refusal's in the C_Login failure
#   message and in the audit line of the refusal;
# - an audit log that cannot be written (/dev/full, a full tmpfs) refuses
#   the release with 503 audit_unavailable, the module says so, the broker's
#   log keeps the refusal and the unwritten line;
# - SIGHUP after logrotate's mv: new lines go to the new file;
# - audit_syslog: the line goes to the syslog socket too, and when either
#   output fails the release is refused.
. "$(dirname "$0")/lib.sh"

setup_world
start_broker
CURL="curl -s --cacert $T/pki/broker-ca.pem"

# login NAME: one C_Login (p11probe, a new process); stdout and stderr kept
login() { "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>"$T/$1.err"; }
# audit_with ID [FILE]: the audit line of that id
audit_with() { grep -F "\"id\":\"$1\"" "${2:-$T/audit.jsonl}"; }

# 1. a release: its id in the module's line and in the audit line
login ok
check "login succeeds" grep -q "private_keys: [1-9]" "$T/ok.out"
rid=$(grep -Eo "release id $ID_RE" "$T/ok.err" | awk '{print $3}')
check "the module logs the release id (128 bits, hex)" test -n "$rid"
audit_with "$rid" >"$T/ok.line"
check "the broker's audit line of that release has the same id" \
	jq -e '.event == "release" and .reason == "ok" and .token == "web"' "$T/ok.line"
check "the audit line names the evidence type, envelope, measurement, chip id and SNP TCB" \
	jq -e --arg m "$MEASUREMENT" '.tee == "snp" and (.alg | length > 0) and .measurement == $m
		and (.chip_id | length == 128) and (.reported_tcb | test("^[0-9a-f]{16}$"))
		and (.committed_tcb | length == 16) and (.launch_tcb | length == 16)
		and (.keys | length == 2) and .peer == "127.0.0.1"' "$T/ok.line"
check "every decision has its own id (challenge and release of one login differ)" \
	test "$(jq -r .id "$T/audit.jsonl" | sort | uniq -d | wc -l)" -eq 0
check "every audit line has an id" test "$(jq -r 'select(.id | test("^[0-9a-f]{32}$")) | .id' "$T/audit.jsonl" | wc -l)" -eq "$(wc -l <"$T/audit.jsonl")"

# 2. a refusal: its id in the C_Login failure message and in the audit line
write_broker_conf
sed -i "s/^measurements = .*/measurements = $OTHER_MEASUREMENT/" "$T/broker.conf"
restart_broker
login refused
check "a refused C_Login says why" grep -q "measurement_not_allowed" "$T/refused.err"
fid=$(grep -Eo "refusal id $ID_RE" "$T/refused.err" | awk '{print $3}')
check "the C_Login failure message carries the broker's refusal id" test -n "$fid"
check "the broker's audit line of that refusal has the same id" \
	refusal_audit "$T/refused.err" '.event == "refuse" and .reason == "measurement_not_allowed"'
got=$(post /v1/challenge '{"token":"nosuch"}')
check "a refusal body carries the id ($got)" \
	sh -c "jq -e '.error == \"unknown_token\" and (.id | test(\"^[0-9a-f]{32}\$\"))' '$T/resp.json'"

# 3. /dev/full as the audit log: every write fails
expect_unavailable() {
	local name=$1
	[ -n "${2:-}" ] || login "$name"
	check "$name: C_Login fails" grep -q "^login: CKR_FUNCTION_REJECTED$" "$T/$name.out"
	check "$name: the module names audit_unavailable and the refusal id" \
		grep -Eq "audit_unavailable: .*\(refusal id $ID_RE\) \(HTTP 503 from" "$T/$name.err"
	check "$name: the module holds no key afterwards" grep -q "private_keys: 0" "$T/$name.out"
	uid=$(grep -Eo "refusal id $ID_RE" "$T/$name.err" | awk '{print $3}')
	check "$name: the broker's log names the refusal with its id" \
		grep -Eq "refused audit_unavailable: .*id $uid\)$" "$T/broker.log"
	# a refusal's line is written, not flushed: only where writes fail
	# (not where only the flush does) does the log keep it
	[ "$name" = failsync ] ||
		check "$name: the broker's log keeps the refusal's audit line no output took" \
			grep -q "audit line not written: .*\"id\":\"$uid\",\"event\":\"refuse\",.*\"reason\":\"audit_unavailable\"" "$T/broker.log"
	diag_stream <"$T/$name.err"
}
write_broker_conf
sed -i "s|^audit_log = .*|audit_log = /dev/full|" "$T/broker.conf"
restart_broker
expect_unavailable devfull
got=$(post /v1/challenge '{"token":"web"}')
check "devfull: a challenge (nothing released) is still answered ($got)" test "$got" = "200 -"

# 4. a tiny tmpfs that fills up (root, and mount permitted)
FULL="$T/tiny"
mkdir -p "$FULL"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=16k tmpfs "$FULL" 2>"$T/mount.err"; then
	trap 'stop_broker; umount "$FULL" 2>/dev/null; cleanup' EXIT
	write_broker_conf
	sed -i "s|^audit_log = .*|audit_log = $FULL/audit.jsonl|" "$T/broker.conf"
	restart_broker
	login tmpfs-ok
	check "tmpfs: a login succeeds while the file system has room" grep -q "private_keys: [1-9]" "$T/tmpfs-ok.out"
	# fill it to the last block; the audit file's last page still takes
	# a few lines, then the logins are refused
	dd if=/dev/zero of="$FULL/fill" bs=1k >/dev/null 2>&1
	n=0
	while [ $n -lt 30 ]; do
		n=$((n + 1))
		login tmpfs
		grep -q "^login: CKR_OK$" "$T/tmpfs.out" || break
		rid=$(grep -Eo "release id $ID_RE" "$T/tmpfs.err" | awk '{print $3}')
		audit_with "$rid" "$FULL/audit.jsonl" >/dev/null || { not_ok "tmpfs: release $rid is in the audit file"; break; }
	done
	diag "tmpfs: the file system was full after $n login(s)"
	expect_unavailable tmpfs done
	# room again: the next release is audited on a line of its own, after
	# the line the full file system cut (if it cut one)
	rm -f "$FULL/fill"
	login tmpfs-again
	check "tmpfs: with room again, the login succeeds" grep -q "^login: CKR_OK$" "$T/tmpfs-again.out"
	rid=$(grep -Eo "release id $ID_RE" "$T/tmpfs-again.err" | awk '{print $3}')
	check "tmpfs: and its audit line is whole JSON" \
		sh -c "grep -F '\"id\":\"$rid\"' '$FULL/audit.jsonl' | jq -e '.event == \"release\"'"
	bad=$(grep -v '^$' "$FULL/audit.jsonl" | while IFS= read -r l; do
		printf '%s\n' "$l" | jq -e . >/dev/null 2>&1 || echo cut; done | wc -l)
	check "tmpfs: every other audit line is JSON, but at most one cut short ($bad)" test "$bad" -le 1
	stop_broker
	umount "$FULL"
else
	skip "tmpfs: a full file system refuses the release" "cannot mount a tmpfs here (not root, or mount not permitted: $(head -c 200 "$T/mount.err" 2>/dev/null))"
fi

# 5. SIGHUP after logrotate's mv: new lines go to the new file
write_broker_conf
restart_broker
login before-rotate
mv "$T/audit.jsonl" "$T/audit.jsonl.1"
kill -HUP "$BROKER_PID"
for _ in $(seq 100); do grep -q "audit log reopened" "$T/broker.log" && break; sleep 0.1; done
check "SIGHUP: the broker says it reopened the audit log" grep -q "audit log reopened: $T/audit.jsonl" "$T/broker.log"
login after-rotate
rid=$(grep -Eo "release id $ID_RE" "$T/after-rotate.err" | awk '{print $3}')
check "SIGHUP: the next release is in the new file" audit_with "$rid" "$T/audit.jsonl"
refuse "SIGHUP: and not in the rotated one" audit_with "$rid" "$T/audit.jsonl.1"

# 5b. conf/logrotate as shipped (its path and postrotate pointed at this
# broker): rotated, the broker reopens, no line lost
if command -v logrotate >/dev/null 2>&1; then
	awk -v path="$T/audit.jsonl" -v pid="$BROKER_PID" '
		/^\/var\/log\/attestkey\/audit.log/ { sub(/^[^ ]+/, path) }
		/^\tpostrotate/ { print; print "\t\tkill -HUP " pid; skip = 1; next }
		/^\tendscript/ { skip = 0 }
		!skip { print }' "$top_srcdir/conf/logrotate" >"$T/logrotate.conf"
	chmod 644 "$T/logrotate.conf"
	lines=$(wc -l <"$T/audit.jsonl")
	check "logrotate: conf/logrotate rotates the audit log" \
		logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf"
	rotated=$(ls "$T"/audit.jsonl-* 2>/dev/null | head -n 1)
	check "logrotate: the rotated file holds every line written before" \
		test -n "$rotated" -a "$(wc -l <"${rotated:-/dev/null}")" -eq "$lines"
	for _ in $(seq 100); do [ "$(grep -c "audit log reopened" "$T/broker.log")" -ge 2 ] && break; sleep 0.1; done
	login after-logrotate
	rid=$(grep -Eo "release id $ID_RE" "$T/after-logrotate.err" | awk '{print $3}')
	check "logrotate: the next release is in the new file the broker created" audit_with "$rid" "$T/audit.jsonl"
else
	skip "logrotate: conf/logrotate rotates the audit log" "logrotate is not installed"
fi

# 6. audit_syslog: a syslog socket of ours (python3 receives the datagrams)
if command -v python3 >/dev/null 2>&1; then
	SOCK="$T/log.sock"
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b"\n")
' "$SOCK" "$T/syslog.txt" &
	SYSLOG_PID=$!
	AK_PIDS="$AK_PIDS $SYSLOG_PID"
	for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
	write_broker_conf
	sed -i "s|^audit_log = .*|audit_log = $T/audit.jsonl\naudit_syslog = local0\naudit_syslog_socket = $SOCK|" "$T/broker.conf"
	restart_broker
	login syslog
	rid=$(grep -Eo "release id $ID_RE" "$T/syslog.err" | awk '{print $3}')
	check "syslog: the release is in the audit file" audit_with "$rid"
	# <134>: facility local0 (16 * 8) + severity info (6)
	check "syslog: and on the syslog socket, facility local0" \
		grep -Eq "^<134>.* attestkey-broker\[[0-9]+\]: audit: \{.*\"id\":\"$rid\"" "$T/syslog.txt"
	kill "$SYSLOG_PID"
	wait "$SYSLOG_PID" 2>/dev/null
	expect_unavailable syslog-gone
	stop_broker
	rm -f "$SOCK"
	write_broker_conf
	sed -i "s|^audit_log = .*|audit_log = $T/audit.jsonl\naudit_syslog = yes\naudit_syslog_socket = $SOCK|" "$T/broker.conf"
	refuse "syslog: the broker does not start without its syslog socket" \
		timeout 20 "$AK_BROKER" -f -c "$T/broker.conf"
	check "syslog: and names the socket" grep -q "audit_syslog: cannot connect to the syslog socket '$SOCK'" "$T/check.log"
else
	skip "syslog: the audit line on the syslog socket" "python3 is not installed"
fi

# 6b. the flush fails (fdatasync returns EIO, as after a failed write-back):
# audit_fsync = always refuses the release, never releases without flushing
FAILSYNC="$top_builddir/tests/integration/.libs/failsync.so"
# fsync_broker POLICY: the broker with that audit_fsync and the failing flush
fsync_broker() {
	stop_broker
	write_broker_conf
	sed -i "s|^audit_log = .*|audit_log = $T/audit.jsonl\naudit_fsync = $1|" "$T/broker.conf"
	rm -f "$T/broker.port"
	LD_PRELOAD="$FAILSYNC" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$AK_BROKER" -f -c "$T/broker.conf" >>"$T/broker.log" 2>&1 &
	BROKER_PID=$!
	AK_PIDS="$AK_PIDS $BROKER_PID"
	for _ in $(seq 100); do [ -s "$T/broker.port" ] && break; sleep 0.1; done
	[ -s "$T/broker.port" ] || bail "the broker with a failing fdatasync did not start"
	write_module_conf
}
if [ -f "$FAILSYNC" ]; then
	fsync_broker always
	expect_unavailable failsync
	check "failsync: the broker's log names the failed flush" \
		grep -q "cannot append to and flush the audit log '$T/audit.jsonl': Input/output error" "$T/broker.log"
	# the release's line reached the file unflushed; the refusal that
	# replaced it follows with the same id: an id's last line is the decision
	check "failsync: the last audit line of that id is the refusal" \
		sh -c "grep -F '\"id\":\"$uid\"' '$T/audit.jsonl' | tail -n 1 | jq -e '.event == \"refuse\" and .reason == \"audit_unavailable\"'"
	fsync_broker never
	login nosync
	check "failsync: with audit_fsync = never the release is made (no flush asked)" \
		grep -q "^login: CKR_OK$" "$T/nosync.out"
	stop_broker
else
	skip "failsync: a failed flush refuses the release" "$FAILSYNC is not built"
fi

# 7. the [broker] audit keys: bad values are refused, naming the key
write_broker_conf
sed -i "s|^audit_log = .*|audit_log = $T/audit.jsonl\naudit_fsync = sometimes|" "$T/broker.conf"
refuse "audit_fsync = sometimes is refused" "$AK_BROKER" --check-config -c "$T/broker.conf"
check "and the message names the key" grep -q "audit_fsync.*'sometimes' is not always or never" "$T/check.log"
write_broker_conf
sed -i "s|^audit_log = .*|audit_log = $T/audit.jsonl\naudit_fsync = never|" "$T/broker.conf"
restart_broker
login nofsync
check "audit_fsync = never: releases are audited (without fdatasync)" \
	audit_with "$(grep -Eo "release id $ID_RE" "$T/nofsync.err" | awk '{print $3}')"
finish
