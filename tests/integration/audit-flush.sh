#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 10/11: the fail-closed audit's flushes, seen from outside the broker.
# The broker runs under strace, on a slow disk (tests/integration/slowsync.c
# makes each fdatasync 100 ms longer), while guests log in concurrently; from the
# trace alone (the system calls the kernel saw, in their order):
# - every release's audit line was covered by a successful fdatasync(2)
#   that started after the line was written and finished before the thread
#   that wrote it sent anything to a client (the answer carrying the keys);
# - only releases are flushed: no fdatasync(2) for a challenge's line;
# - concurrent releases share a flush (group commit): fewer flushes than
#   releases.
# The same checker on a broker with audit_fsync = never must find releases
# answered without a flush: the check can fail.
. "$(dirname "$0")/lib.sh"
need strace awk

SLOWSYNC="$top_builddir/tests/integration/.libs/slowsync.so"
[ -f "$SLOWSYNC" ] || bail "$SLOWSYNC not built"
export AK_SLOWSYNC_MS=100
setup_world
LOGINS=${AUDIT_FLUSH_LOGINS:-6}
ROUNDS=${AUDIT_FLUSH_ROUNDS:-4}

# traced_broker POLICY: the broker under strace, audit_fsync = POLICY, 4
# threads so that releases overlap
traced_broker() {
	write_broker_conf
	sed -i "s|^audit_log = .*|audit_log = $T/audit.jsonl\naudit_fsync = $1|" "$T/broker.conf"
	sed -i '/^\[broker\]/a threads = 4' "$T/broker.conf"
	: >"$T/audit.jsonl"
	rm -f "$T/broker.port" "$T/trace.$1"
	# a slow disk (SLOWSYNC): flushes last long enough for releases to
	# overlap them
	strace -f -ttt -T -s 200 -e trace=writev,fdatasync,sendmsg,sendto -o "$T/trace.$1" \
		env LD_PRELOAD="$SLOWSYNC" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$AK_BROKER" -f -c "$T/broker.conf" >>"$T/broker.log" 2>&1 &
	STRACE_PID=$!
	AK_PIDS="$AK_PIDS $STRACE_PID"
	for _ in $(seq 150); do [ -s "$T/broker.port" ] && break; sleep 0.1; done
	[ -s "$T/broker.port" ] || bail "the broker under strace did not start"
	# the broker is strace's child: stopping it ends strace (a signal to
	# strace would leave the broker running, detached)
	BROKER_PID=$(cat "/proc/$STRACE_PID/task/$STRACE_PID/children" 2>/dev/null | awk '{print $1}')
	[ -n "$BROKER_PID" ] || bail "cannot find the broker under strace"
	AK_PIDS="$BROKER_PID $AK_PIDS"
	write_module_conf
}
stop_traced() { kill "$BROKER_PID"; wait "$STRACE_PID"; }

# logins NAME: ROUNDS rounds of LOGINS concurrent C_Logins (new processes)
logins() {
	local r i pids
	for r in $(seq "$ROUNDS"); do
		pids=""
		for i in $(seq "$LOGINS"); do
			"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.$r.$i.out" 2>&1 &
			pids="$pids $!"
		done
		# shellcheck disable=SC2086
		wait $pids
	done
	cat "$T/$1".*.out >"$T/$1.all"
}

# check_trace FILE: "releases flushes flushed_challenges unflushed" from the
# trace. A release line's write ends at its writev's exit; the answer is the
# writing thread's next send; a flush covers it when it started at or after
# that exit, ended at or before that send, and returned 0.
check_trace() {
	awk '
	function ts(s) { return s + 0 }
	{
		pid = $1; t = ts($2); rest = $0; sub(/^ *[0-9]+ +[0-9.]+ +/, "", rest)
		if (rest ~ /^<\.\.\. [a-z]+ resumed>/) {
			name = rest; sub(/^<\.\.\. /, "", name); sub(/ resumed>.*/, "", name)
			res = rest; sub(/.*\) += /, "", res); sub(/ .*/, "", res)
			if (pid in pname) finish(pid, pname[pid], pstart[pid], t, pfd[pid], pkind[pid], res)
			delete pname[pid]
			next
		}
		name = rest; sub(/\(.*/, "", name)
		fd = rest; sub(/^[a-z0-9_]+\(/, "", fd); sub(/[,)].*/, "", fd); sub(/ .*/, "", fd)
		kind = ""
		if (name == "writev" && rest ~ /\\"event\\":\\"release\\"/) kind = "release"
		else if (name == "writev" && rest ~ /\\"event\\":\\"challenge\\"/) kind = "challenge"
		if (rest ~ /<unfinished \.\.\.>$/) {
			pname[pid] = name; pstart[pid] = t; pfd[pid] = fd; pkind[pid] = kind
			next
		}
		if (rest !~ /= -?[0-9]+/) next
		res = rest; sub(/.*\) += /, "", res); sub(/ .*/, "", res)
		dur = rest; sub(/.*</, "", dur); sub(/>.*/, "", dur)
		finish(pid, name, t, t + dur, fd, kind, res)
	}
	function finish(pid, name, t0, t1, fd, kind, res) {
		if (kind == "release") { nr++; rpid[nr] = pid; rend[nr] = t1; auditfd = fd }
		else if (kind == "challenge") { nc++; cend[nc] = t1; cpid[nc] = pid; auditfd = fd }
		else if (name == "fdatasync") { nf++; fstart[nf] = t0; fend[nf] = t1; fres[nf] = res; ffd[nf] = fd; fpid[nf] = pid }
		else if (name == "sendmsg" || name == "sendto") { ns++; spid[ns] = pid; sstart[ns] = t0 }
	}
	END {
		flushes = 0
		for (j = 1; j <= nf; j++) if (ffd[j] == auditfd) flushes++
		unflushed = 0
		for (i = 1; i <= nr; i++) {
			send = -1
			for (k = 1; k <= ns; k++) if (spid[k] == rpid[i] && sstart[k] >= rend[i]) { send = sstart[k]; break }
			covered = 0
			for (j = 1; j <= nf; j++)
				if (ffd[j] == auditfd && fres[j] == 0 && fstart[j] >= rend[i] && (send < 0 || fend[j] <= send)) { covered = 1; break }
			if (!covered) unflushed++
		}
		# a challenge line flushed: a flush by the thread that wrote it,
		# after the line and before its answer
		cflush = 0
		for (i = 1; i <= nc; i++) {
			send = -1
			for (k = 1; k <= ns; k++) if (spid[k] == cpid[i] && sstart[k] >= cend[i]) { send = sstart[k]; break }
			for (j = 1; j <= nf; j++)
				if (ffd[j] == auditfd && fstart[j] >= cend[i] && (send < 0 || fstart[j] <= send) && fpid[j] == cpid[i]) { cflush++; break }
		}
		printf "%d %d %d %d\n", nr, flushes, cflush, unflushed
	}
	' "$1"
}

traced_broker always
logins always
stop_traced
got=$(grep -c "^login: CKR_OK$" "$T/always.all")
check "always: all $((LOGINS * ROUNDS)) concurrent logins succeed ($got)" test "$got" -eq $((LOGINS * ROUNDS))
read -r nr nf nc nu < <(check_trace "$T/trace.always")
diag "audit_fsync = always: $nr releases, $nf flushes of the audit log, $nc challenge lines flushed, $nu releases answered without a covering flush"
check "always: the trace shows every release's audit line ($nr)" test "$nr" -eq $((LOGINS * ROUNDS))
check "always: every release was answered only after a flush that covered its line" test "$nu" -eq 0
check "always: at least one flush" test "$nf" -gt 0
check "always: concurrent releases share flushes ($nf flushes for $nr releases)" test "$nf" -lt "$nr"
check "always: no challenge's thread flushed between its line and its answer ($nc)" test "$nc" -eq 0

traced_broker never
logins never
stop_traced
read -r nr nf nc nu < <(check_trace "$T/trace.never")
diag "audit_fsync = never: $nr releases, $nf flushes, $nu releases answered without a covering flush"
check "never: the checker sees the releases ($nr)" test "$nr" -eq $((LOGINS * ROUNDS))
check "never: and finds them answered without a flush (the check can fail)" test "$nu" -eq "$nr"
check "never: no fdatasync at all" test "$nf" -eq 0

finish
