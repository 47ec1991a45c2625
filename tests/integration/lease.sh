#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 12, the module side (docs/lifecycle.md): with a lease of 3 s the
# module renews in the background while a thread signs without a failure,
# each renewal audited as a release; a policy change at the broker wipes
# the keys at the next renewal (CKR_DEVICE_REMOVED, one log line with the
# refusal id, the secure heap back to its pre-login use) and the next
# C_Login is refused; with CKF_LIBRARY_CANT_CREATE_OS_THREADS the renewal
# runs inline and the module starts no thread; C_Finalize during a
# renewal returns; C_Logout during a renewal abandons it and waits for it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease-lib.sh"

lease_world 3

# 1. renewal while signing
before=$(releases)
"$HOST" "$AK_MODULE" sign 8 1234 >"$T/renew.out" 2>"$T/renew.err"
check "renew: the login succeeds" grep -q '^login: CKR_OK$' "$T/renew.out"
check "renew: the signing thread found the key" grep -q '^key_found: yes$' "$T/renew.out"
check "renew: it signed" test "$(field "$T/renew.out" signs_ok)" -gt 0
check "renew: not one signature failed across the renewals" test "$(field "$T/renew.out" signs_failed)" = 0
check "renew: every signature verifies with the certificate served" \
	test "$(field "$T/renew.out" verify_mismatch)" = 0
n=$(renewal_ids "$T/renew.err" | wc -l)
diag "$n renewal(s) in 8 s with a lease of 3 s"
check "renew: the module logged at least 2 renewals, each with its release id" test "$n" -ge 2
check "renew: each renewal is a release in the broker's audit" all_audited "$T/renew.err"
check "renew: the audit counts the login and the renewals" test "$(($(releases) - before))" -ge $((n + 1))
check "renew: C_Logout leaves the secure heap as before the login (keys and the kept PIN gone)" \
	test "$(field "$T/renew.out" secure_after_logout)" = "$(field "$T/renew.out" secure_before_login)"
check "renew: C_Finalize returns" grep -q '^finalize: CKR_OK$' "$T/renew.out"

# 2. revocation: the policy changes while the application signs
cp "$T/broker.conf" "$T/broker.conf.good"
"$HOST" "$AK_MODULE" sign 9 1234 >"$T/revoke.out" 2>"$T/revoke.err" &
host=$!
AK_PIDS="$AK_PIDS $host"
check "revoke: the application logged in" wait_ready "$T/revoke.out"
sed -i "s/^measurements = .*/measurements = $OTHER_MEASUREMENT/" "$T/broker.conf"
check "revoke: the broker reloads the new policy" hup
wait "$host"
check "revoke: signing went on until the renewal" test "$(field "$T/revoke.out" signs_ok)" -gt 0
check "revoke: then signing fails with CKR_DEVICE_REMOVED" \
	test "$(field "$T/revoke.out" first_failure)" = CKR_DEVICE_REMOVED
check "revoke: and never succeeds again" test "$(field "$T/revoke.out" ok_after_failure)" = 0
check "revoke: one log line says why" test "$(grep -c 'keys wiped' "$T/revoke.err")" = 1
check "revoke: it names the reason" grep -q "keys wiped: broker refused the challenge\|keys wiped: broker refused the release: measurement_not_allowed" "$T/revoke.err"
rid=$(sed -n 's/.*keys wiped: .*(refusal id \([0-9a-f]*\)).*/\1/p' "$T/revoke.err")
check "revoke: with the broker's refusal id, which its audit carries" audited "${rid:-none}" refuse
diag "secure heap: before login $(field "$T/revoke.out" secure_before_login), after $(field "$T/revoke.out" secure_after_login), at the end $(field "$T/revoke.out" secure_end)"
check "revoke: the keys were in the secure heap" \
	test "$(field "$T/revoke.out" secure_after_login)" -gt "$(field "$T/revoke.out" secure_before_login)"
check "revoke: the secure heap is back at its pre-login use" heap_back "$T/revoke.out"
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/relogin.out" 2>"$T/relogin.err"
check "revoke: a new C_Login is refused while the policy refuses" \
	grep -q '^login: CKR_FUNCTION_REJECTED$' "$T/relogin.out"
cp "$T/broker.conf.good" "$T/broker.conf"
check "revoke: the broker reloads the old policy" hup
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/relogin2.out" 2>&1
check "revoke: then a new C_Login releases the keys again" grep -q '^login: CKR_OK$' "$T/relogin2.out"

# 3. CKF_LIBRARY_CANT_CREATE_OS_THREADS: inline renewals, no thread
LEASEHOST_NO_THREADS=1 "$HOST" "$AK_MODULE" sign 7 1234 >"$T/inline.out" 2>"$T/inline.err"
check "inline: the login succeeds" grep -q '^login: CKR_OK$' "$T/inline.out"
check "inline: not one signature failed" test "$(field "$T/inline.out" signs_failed)" = 0
check "inline: the operations renewed the lease at least twice" \
	test "$(renewal_ids "$T/inline.err" | wc -l)" -ge 2
check "inline: each renewal is audited" all_audited "$T/inline.err"
check "inline: the module started no thread" test "$(field "$T/inline.out" threads_max)" = 1

# 4. C_Finalize while a renewal runs (the simulated chip takes 2.5 s per
# report, so the renewal due at 1.8-2.4 s runs from the end of the login)
write_module_conf "delay_ms = 2500"
timeout 60 "$HOST" "$AK_MODULE" finalize 1 1234 >"$T/fin.out" 2>"$T/fin.err"
rc=$?
check "finalize: the application exits (no hang)" test "$rc" = 0
check "finalize: C_Finalize returns CKR_OK" grep -q '^finalize: CKR_OK$' "$T/fin.out"
check "finalize: the renewal thread existed" test "$(field "$T/fin.out" threads_after_login)" -ge 2
check "finalize: no thread is left" test "$(field "$T/fin.out" threads_after_finalize)" = 1
diag "C_Finalize took $(field "$T/fin.out" finalize_seconds) s; renewal lines: $(renewal_ids "$T/fin.err" | wc -l)"
write_module_conf

# 5. C_Logout while a renewal waits for the broker: the broker is stopped
# (SIGSTOP) once the application has logged in, so the renewal due at
# 1.8-2.4 s hangs in its request until the module's timeout; the
# application logs out at 5 s. C_Logout aborts that renewal and waits for
# it, so that the PIN it kept and any keys it was receiving are gone when
# C_Logout returns (before, they stayed until the timeout).
"$HOST" "$AK_MODULE" sign 5 1234 >"$T/logout.out" 2>"$T/logout.err" &
host=$!
AK_PIDS="$AK_PIDS $host"
check "logout: the application logged in" wait_ready "$T/logout.out"
kill -STOP "$BROKER_PID"
wait "$host"
kill -CONT "$BROKER_PID"
diag "secure heap: before login $(field "$T/logout.out" secure_before_login), after C_Logout $(field "$T/logout.out" secure_after_logout)"
check "logout: C_Logout returns CKR_OK" grep -q '^logout: CKR_OK$' "$T/logout.out"
# (leasehost's first login and logout, which sets its baseline, may meet a
# renewal too: under valgrind that login outlasts 60 % of the lease)
check "logout: a renewal was in flight after the measured login, and C_Logout abandoned it (one line says so)" \
	awk '/key\(s\) released by/ { n = 0 } /lease renewal in flight was abandoned: the token logged out/ { n++ }
		END { exit n != 1 }' "$T/logout.err"
check "logout: no renewal completed, and none was retried as an outage" \
	bash -c "! grep -q 'lease renewed in pid\|lease renewal failed' '$T/logout.err'"
check "logout: when C_Logout returns, the secure heap is back at its pre-login use (no PIN, no keys of the renewal)" \
	test "$(field "$T/logout.out" secure_after_logout)" = "$(field "$T/logout.out" secure_before_login)"
check "logout: C_Finalize returns" grep -q '^finalize: CKR_OK$' "$T/logout.out"
check "logout: the broker serves again" bash -c "curl -s --max-time 20 --cacert $T/pki/broker-ca.pem $BROKER_URL/v1/health | jq -e '.status == \"ok\"'"

check "no sanitizer report" bash -c "! grep -q 'ERROR: \(Address\|Leak\|Thread\)Sanitizer\|runtime error' '$T'/*.err"
finish
