#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# SIGTERM drains (issue 13 item 5, rolling restarts): the broker stops
# accepting connections at once, lets the release it is answering finish
# and reach the module, then exits. The release is held in flight by a slow
# disk (tests/integration/slowsync.c: each fdatasync of the audit log takes
# 3 s more), and SIGTERM comes once its audit line is written, before its
# flush ends.
. "$(dirname "$0")/lib.sh"
need curl jq
SLOWSYNC="$top_builddir/tests/integration/.libs/slowsync.so"
[ -f "$SLOWSYNC" ] || bail "$SLOWSYNC not built"

setup_world
write_broker_conf
rm -f "$T/broker.port"
AK_SLOWSYNC_MS=3000 LD_PRELOAD="$SLOWSYNC" \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	"$AK_BROKER" -f -c "$T/broker.conf" >>"$T/broker.log" 2>&1 &
BROKER_PID=$!
AK_PIDS="$AK_PIDS $BROKER_PID"
for _ in $(seq 100); do [ -s "$T/broker.port" ] && break; sleep 0.1; done
[ -s "$T/broker.port" ] || bail "the broker did not start"
PORT=$(cat "$T/broker.port")
write_module_conf

timeout 30 "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/login.out" 2>"$T/login.err" &
login=$!
for _ in $(seq 200); do grep -q '"event":"release"' "$T/audit.jsonl" 2>/dev/null && break; sleep 0.05; done
check "a release is being answered (its audit line is written, its flush not done)" \
	grep -q '"event":"release"' "$T/audit.jsonl"
t0=$(date +%s.%N)
kill -TERM "$BROKER_PID"
sleep 0.3
code=$(curl -s --cacert "$T/pki/broker-ca.pem" --max-time 3 -o /dev/null -w '%{http_code}' \
	"https://127.0.0.1:$PORT/v1/health")
rc=$?
check "while it drains, a new connection is not taken (got $code)" test "$code" = 000
# refused at once (curl: 7, could not connect), not left waiting in the
# listening socket's queue: a client goes on to another replica
check "... but refused (curl exit status $rc, 7 is 'could not connect')" test "$rc" = 7
if wait "$login"; then
	ok "the login whose release was in flight at SIGTERM succeeds"
else
	not_ok "the login whose release was in flight at SIGTERM succeeds"; diag_stream <"$T/login.err"
fi
rid=$(grep -Eo "release id $ID_RE" "$T/login.err" | awk '{ print $3 }' | head -n 1)
check "the release the module got is the one audited ($rid)" \
	jq -s -e --arg id "$rid" 'any(.[]; .id == $id and .event == "release")' "$T/audit.jsonl"
for _ in $(seq 150); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
check "the broker exits after the drain" bash -c "! kill -0 $BROKER_PID 2>/dev/null"
wait "$BROKER_PID"
check "... with status 0" test $? = 0
diag "from SIGTERM to exit: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')"
finish
