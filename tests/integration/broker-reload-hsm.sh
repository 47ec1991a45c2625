#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# SIGHUP with a PKCS#11 HSM key store (SoftHSMv2): the reloaded
# configuration opens the same module again while the running one still
# uses it, then the running one is freed; the module must stay initialised
# and logged in for the new store (one C_Initialize / C_Finalize per
# process, not per store), so logins after any number of reloads succeed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hsm-lib.sh"

setup_world
hsm_setup
hsm_broker_conf
start_broker

login() {
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>"$T/$1.err"
	grep -q "^login: CKR_OK\$" "$T/$1.out" && grep -q "private_keys: 2" "$T/$1.out"
}

check "before any reload: the HSM's keys are released" login first
check "SIGHUP reloads the configuration with the HSM store" hup
check "after the reload: the new store's keys are released" login second
for i in 1 2 3; do hup || break; done
check "three more reloads" test "$(reloads)" -ge 4
check "after them: still released" login third
grep -i "reload refused\|CKR_" "$T/broker.log" | diag_stream
kill "$BROKER_PID"
wait "$BROKER_PID"
check "the broker exits 0" test $? = 0
BROKER_PID=""
finish
