#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every refusal of issue 2, end to end: C_Login fails with the documented
# CKR, the module logs one line naming the reason, the broker audits the
# refusal, and the module holds no key afterwards.
. "$(dirname "$0")/lib.sh"

setup_world

# expect_refusal NAME CKR REASON_REGEX: run a login and check all four things
expect_refusal() {
	local name=$1 ckr=$2 why=$3
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$name.out" 2>"$T/$name.err"
	check "$name: C_Login returns $ckr" grep -q "^login: $ckr\$" "$T/$name.out"
	check "$name: the module names the reason ($why)" grep -Eq "$why" "$T/$name.err"
	check "$name: the module holds no key afterwards" grep -q "private_keys: 0" "$T/$name.out"
	diag_stream <"$T/$name.err"
}

# 0. the baseline works, so the refusals below are the checks' doing
start_broker
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/ok.out" 2>&1
check "baseline: login succeeds and releases keys" grep -q "private_keys: [1-9]" "$T/ok.out"

# 1. wrong measurement: the token's policy allows another one
write_broker_conf
sed -i "s/^measurements = .*/measurements = $OTHER_MEASUREMENT/" "$T/broker.conf"
restart_broker
expect_refusal measurement CKR_FUNCTION_REJECTED "measurement_not_allowed.*$MEASUREMENT"
check "measurement: the broker audited the refusal" grep -q '"measurement_not_allowed"' "$T/audit.jsonl"

# 2. debug bit set in the guest policy
write_broker_conf
restart_broker "policy = 0xb0000"
expect_refusal debug CKR_FUNCTION_REJECTED "debug_not_allowed"

# 3. expired nonce: the (simulated) chip takes longer than the nonce lives
BROKER_TTL=1 write_broker_conf
restart_broker "delay_ms = 2500"
expect_refusal expired-nonce CKR_FUNCTION_REJECTED "nonce_expired"

# 4. untrusted root: the broker trusts another chip's ARK
mkdir -p "$T/other-sim"
"$AK_TOOL" sim init "$T/other-sim" >/dev/null
BROKER_ROOTS="$T/other-sim/ark.pem" write_broker_conf
restart_broker
expect_refusal untrusted-root CKR_FUNCTION_REJECTED "untrusted_chain"

# 5. the broker presents a certificate not signed by the module's CA
write_broker_conf
MODULE_CA="$T/pki/web-ca.pem" restart_broker
before=$(wc -l <"$T/audit.jsonl")
expect_refusal broker-cert CKR_DEVICE_ERROR "certificate|SSL|TLS"
check "broker-cert: nothing reached the broker" test "$(wc -l <"$T/audit.jsonl")" -eq "$before"
finish
