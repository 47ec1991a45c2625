#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 12 (docs/lifecycle.md "Offline grace", "Fork"): a broker that does
# not answer is not a refusal. With a lease of 3 s and max_offline = 4 s
# the keys sign past the end of the lease while renewals are retried, and
# are wiped at lease end + max_offline (CKR_DEVICE_REMOVED, a log line of
# its own, the secure heap back to its pre-login use); a broker back
# inside the grace renews and the keys stay. A fork child that does not
# re-attest signs on its inherited keys past the lease and loses them at
# lease end + max_offline; one that re-attests renews on its own.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease-lib.sh"

lease_world 3
port=$(cat "$T/broker.port")
# restart the broker on the port the running module knows
restart_same_port() {
	sed -i "s/^listen = .*/listen = 127.0.0.1:$port/" "$T/broker.conf"
	start_broker
}

# 1. outage beyond the grace
token_conf "max_offline = 4"
LEASEHOST_LEASE=3 "$HOST" "$AK_MODULE" sign 11 1234 >"$T/out.out" 2>"$T/out.err" &
host=$!
AK_PIDS="$AK_PIDS $host"
check "outage: the application logged in" wait_ready "$T/out.out"
stop_broker
wait "$host"
check "outage: the renewals failed and were retried" \
	test "$(grep -c 'lease renewal failed' "$T/out.err")" -ge 2
check "outage: a failure is not a refusal: the keys signed after the lease ended" \
	test "$(field "$T/out.out" ok_after_lease)" -gt 0
check "outage: after lease end + max_offline signing fails with CKR_DEVICE_REMOVED" \
	test "$(field "$T/out.out" first_failure)" = CKR_DEVICE_REMOVED
check "outage: and never succeeds again" test "$(field "$T/out.out" ok_after_failure)" = 0
check "outage: one line of its own says why" \
	test "$(grep -c 'keys wiped: no broker renewed their lease within max_offline = 4 s' "$T/out.err")" = 1
check "outage: no other wipe line" test "$(grep -c 'keys wiped' "$T/out.err")" = 1
check "outage: the secure heap is back at its pre-login use" heap_back "$T/out.out"

# 2. outage inside the grace: the broker comes back, renewal resumes
restart_same_port
token_conf "max_offline = 30"
LEASEHOST_LEASE=3 "$HOST" "$AK_MODULE" sign 11 1234 >"$T/back.out" 2>"$T/back.err" &
host=$!
AK_PIDS="$AK_PIDS $host"
check "back: the application logged in" wait_ready "$T/back.out"
stop_broker
check "back: the renewals fail while the broker is away" wait_for "$T/back.err" 'lease renewal failed' 2
restart_same_port
check "back: the broker listens again on its port" test "$(cat "$T/broker.port")" = "$port"
wait "$host"
check "back: a renewal succeeded after the restart" \
	bash -c "sed -n '/lease renewal failed/,\$p' '$T/back.err' | grep -q 'lease renewed in pid'"
check "back: each renewal is audited" all_audited "$T/back.err" "" 1
check "back: not one signature failed" test "$(field "$T/back.out" signs_failed)" = 0
check "back: the keys signed after the first lease ended" \
	test "$(field "$T/back.out" ok_after_lease)" -gt 0
refuse "back: nothing was wiped" grep -q 'keys wiped' "$T/back.err"

# 3. a fork child without reattest_after_fork (the default): the parent
# renews, the child signs on the keys it inherited, past their lease, and
# loses them at lease end + max_offline
token_conf "max_offline = 4"
LEASEHOST_LEASE=3 "$HOST" "$AK_MODULE" fork 10 1234 >"$T/fork.out" 2>"$T/fork.err"
child=$(field "$T/fork.out" child_pid)
check "fork: the child logs in from the inherited keys" grep -q '^child_login: CKR_OK$' "$T/fork.out"
check "fork: the child signs past the lease it inherited" \
	test "$(field "$T/fork.out" child_ok_after_lease)" -gt 0
check "fork: the child never renews" test "$(renewal_ids "$T/fork.err" "$child" | wc -l)" = 0
check "fork: the parent goes on renewing after fork()" \
	test "$(renewal_ids "$T/fork.err" | wc -l)" -ge 1
check "fork: at lease end + max_offline the child's keys are wiped" \
	test "$(field "$T/fork.out" child_first_failure)" = CKR_DEVICE_REMOVED
check "fork: the child's log line names the reason" \
	grep -q "keys wiped: the lease this process inherited at fork() ended 4 s ago" "$T/fork.err"
check "fork: the wipe freed the child's secure heap" \
	test "$(field "$T/fork.out" child_secure_end)" -lt "$(field "$T/fork.out" child_secure_before_login)"
check "fork: the child exits" test "$(field "$T/fork.out" child_exit)" = 0

# 4. reattest_after_fork = yes: the child logs in itself and renews on its
# own thread, so its keys outlive lease end + max_offline
sed -i 's/^\[module\]$/[module]\nreattest_after_fork = yes/' "$T/attestkey.conf"
LEASEHOST_LEASE=7 "$HOST" "$AK_MODULE" fork 9 1234 >"$T/refork.out" 2>"$T/refork.err"
child=$(field "$T/refork.out" child_pid)
check "reattest: the child logs in" grep -q '^child_login: CKR_OK$' "$T/refork.out"
check "reattest: the child renews on its own" all_audited "$T/refork.err" "$child"
check "reattest: not one of the child's signatures failed" \
	test "$(field "$T/refork.out" child_signs_failed)" = 0
check "reattest: the child signed past lease end + max_offline" \
	test "$(field "$T/refork.out" child_ok_after_lease)" -gt 0

check "no sanitizer report" bash -c "! grep -q 'ERROR: \(Address\|Leak\|Thread\)Sanitizer\|runtime error' '$T'/*.err"
finish
