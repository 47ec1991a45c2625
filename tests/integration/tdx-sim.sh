#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# TDX end to end on the simulated TD (attestkey sim init --tee tdx): C_Login
# through the module's sim collector, a real v4 quote verified by the real
# broker against the sim's root and collateral, and every TDX refusal: MRTD,
# debug TD, RTMR, TCB status, a broker without [tdx] roots, another binding.
. "$(dirname "$0")/lib.sh"
need curl jq jose

setup_world_tdx

# expect_refusal NAME REASON_REGEX: the login fails, the module names the
# reason and holds no key, the broker audits the refusal (among the lines
# since: the module's public-object refresh may write one after it)
expect_refusal() {
	local name=$1 why=$2 before
	before=$(wc -l <"$T/audit.jsonl" 2>/dev/null || echo 0)
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$name.out" 2>"$T/$name.err"
	check "$name: C_Login returns CKR_FUNCTION_REJECTED" grep -q "^login: CKR_FUNCTION_REJECTED\$" "$T/$name.out"
	check "$name: the module names the reason ($why)" grep -Eq "$why" "$T/$name.err"
	check "$name: the module holds no key afterwards" grep -q "private_keys: 0" "$T/$name.out"
	check "$name: the broker audited the refusal" bash -c "tail -n +$((before + 1)) '$T/audit.jsonl' |
		jq -se 'any(.[]; .event == \"refuse\" and .reason == \"${why%%.*}\")'"
	diag_stream <"$T/$name.err"
}
login_ok() { # NAME: the login succeeds and releases keys
	"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>&1
	check "$1: login succeeds and releases keys" grep -q "private_keys: [1-9]" "$T/$1.out"
	diag_stream <"$T/$1.out"
}
# the last release line of the audit log
last_release() { grep '"event": *"release"' "$T/audit.jsonl" | tail -n 1; }
FMSPC=$(jq -r .fmspc "$T/tdxsim/chip.json" | tr A-F a-f)

# 0. the baseline: token web allows the sim TD's MRTD
start_broker
login_ok baseline
last_release >"$T/release.json"
check "baseline: the audit line names MRTD, FMSPC and TCB status" jq -e \
	".mrtd == \"$TDX_MRTD\" and .fmspc == \"$FMSPC\" and .tcb_status == \"UpToDate\"" "$T/release.json"
CURL="curl -s --cacert $T/pki/broker-ca.pem -H Content-Type:application/json"
check "the challenge offers tdx next to snp" bash -c \
	"$CURL --data-binary '{\"token\":\"web\"}' $BROKER_URL/v1/challenge | jq -e '.tee == [\"snp\",\"tdx\"]'"

# 1. wrong MRTD: the token allows another TD
write_broker_conf
sed -i "s/^mrtd = .*/mrtd = $OTHER_MRTD/" "$T/broker.conf"
restart_broker
expect_refusal mrtd "measurement_not_allowed.*$TDX_MRTD"

# 2. a debug TD (TD_ATTRIBUTES.DEBUG)
write_broker_conf
restart_broker "debug = true"
expect_refusal debug "debug_not_allowed"

# 3. RTMRs: the policy names RTMR2; the TD's matches, then does not
RTMR2=$(printf 'e%.0s' $(seq 96))
write_broker_conf "rtmr2 = $RTMR2"
restart_broker "rtmr2 = $RTMR2"
login_ok rtmr-match
write_module_conf "rtmr2 = $(printf 'f%.0s' $(seq 96))"
expect_refusal rtmr "policy_mismatch.*RTMR2"

# 4. TCB status: a TDX module TCB below the sim TCB info's UpToDate level
#    is OutOfDate, not accepted by default, accepted when the token says so
write_broker_conf
restart_broker "tee_tcb_svn = 01000500000000000000000000000000"
expect_refusal tcb-status "tcb_status_not_allowed.*OutOfDate"
write_broker_conf "tcb_status = UpToDate, OutOfDate"
restart_broker "tee_tcb_svn = 01000500000000000000000000000000"
login_ok tcb-status-allowed
last_release >"$T/release.json"
check "tcb-status-allowed: the audit line says OutOfDate" jq -e '.tcb_status == "OutOfDate"' "$T/release.json"

# 5. a broker without [tdx] roots does not verify TDX
BROKER_TDX_ROOTS="" write_broker_conf
restart_broker
check "without [tdx] roots the challenge offers snp only" bash -c \
	"$CURL --data-binary '{\"token\":\"web\"}' $BROKER_URL/v1/challenge | jq -e '.tee == [\"snp\"]'"
# The module sees "tee": ["snp"] in the challenge and sends no TDX evidence
# (the broker's own tee_unsupported refusal: test_broker_handler).
before=$(wc -l <"$T/audit.jsonl")
"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/no-tdx-roots.out" 2>"$T/no-tdx-roots.err"
check "no-tdx-roots: C_Login returns CKR_FUNCTION_REJECTED" \
	grep -q "^login: CKR_FUNCTION_REJECTED\$" "$T/no-tdx-roots.out"
check "no-tdx-roots: the module names the broker's list" \
	grep -q "does not verify 'tdx' evidence (it verifies: snp)" "$T/no-tdx-roots.err"
# since the login: its challenge, perhaps the module's background
# public-object refresh ("public"), and no release or refusal
check "no-tdx-roots: no release was asked for" bash -c \
	"tail -n +$((before + 1)) '$T/audit.jsonl' |
	jq -se 'any(.[]; .event == \"challenge\") and all(.[]; .event == \"challenge\" or .event == \"public\")'"
diag_stream <"$T/no-tdx-roots.err"

# 6. another sim's root: the quote does not chain to what the broker trusts
"$AK_TOOL" sim init --tee tdx "$T/other-tdx" >/dev/null
BROKER_TDX_ROOTS="$T/other-tdx/root_ca.pem" write_broker_conf
restart_broker
expect_refusal untrusted-root "untrusted_chain"

# 7. a quote for another binding: made for ephemeral key A, sent with key B
write_broker_conf
restart_broker
jose jwk gen -i '{"kty":"EC","crv":"P-384"}' -o "$T/a.jwk"
jose jwk pub -i "$T/a.jwk" -o "$T/a.pub.jwk"
jose jwk gen -i '{"kty":"EC","crv":"P-384"}' -o "$T/b.jwk"
jose jwk pub -i "$T/b.jwk" -o "$T/b.pub.jwk"
NONCE=$($CURL --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge" | jq -r .nonce)
BIND=$("$AK_TOOL" binding --nonce "$NONCE" --token web --jwk "$T/a.pub.jwk")
check "sim quote writes evidence JSON for the binding" \
	"$AK_TOOL" sim quote --dir "$T/tdxsim" --report-data "$BIND" --mrtd "$TDX_MRTD" --json -o "$T/ev.json"
keys() { # PUBKEY-FILE: POST /v1/keys with the quote; prints "status reason"
	jq -cn --arg n "$NONCE" --slurpfile k "$1" --slurpfile e "$T/ev.json" \
		'{token:"web", nonce:$n, tee:"tdx", evidence:$e[0], pubkey:$k[0]}' >"$T/body.json"
	$CURL -o "$T/resp.json" -w '%{http_code} ' --data-binary @"$T/body.json" "$BROKER_URL/v1/keys"
	jq -r '.error // "-"' "$T/resp.json"
}
check "the quote sent with key B: 403 binding_mismatch" test "$(keys "$T/b.pub.jwk")" = "403 binding_mismatch"
check "the same quote sent with key A: released" test "$(keys "$T/a.pub.jwk")" = "200 -"
check "the CLI verifies the sim quote under the sim root (exit 0, UpToDate)" bash -c "
	'$AK_TOOL' sim quote --dir '$T/tdxsim' --report-data '$BIND' --mrtd '$TDX_MRTD' -o '$T/quote.dat' &&
	'$AK_TOOL' tdx verify --roots '$T/tdxsim/root_ca.pem' --collateral '$T/tdxsim/collateral' \
		--report-data '$BIND' --json '$T/quote.dat' | jq -e '.verdict == \"accept\" and .tcb_status == \"UpToDate\"'"

# 8. the CLI: TCB info whose UpToDate level is above the platform's makes
#    its quotes OutOfDate; bad options are usage errors (exit 2)
"$AK_TOOL" sim init --tee tdx "$T/ahead" --tcb-info-tee-tcb-svn 04000500000000000000000000000000 >/dev/null
"$AK_TOOL" sim quote --dir "$T/ahead" --report-data 01 -o "$T/ahead.dat"
check "a platform below its TCB info's UpToDate level: OutOfDate, refused by default" bash -c "
	'$AK_TOOL' tdx verify --roots '$T/ahead/root_ca.pem' --collateral '$T/ahead/collateral' --json '$T/ahead.dat' >'$T/ahead.json'
	test \$? -eq 1 && jq -e '.tcb_status == \"OutOfDate\" and .reason == \"tcb_status_not_allowed\"' '$T/ahead.json'"
"$AK_TOOL" sim init --tee tdx "$T/opts" --sgx-tcb 04040303030201030000000000000000 --pce-svn 13 \
	--collateral-days 5 >/dev/null
check "sim init --sgx-tcb/--pce-svn reach chip.json" jq -e \
	'.cpusvn == "04040303030201030000000000000000" and .pcesvn == 13' "$T/opts/chip.json"
check "sim init --collateral-days 5: nextUpdate 5 days after issueDate" jq -e \
	'.tcbInfo | ((.nextUpdate | fromdate) - (.issueDate | fromdate)) == 432000' "$T/opts/collateral/tcb_info.json"
R48() { printf "$1%.0s" $(seq 96); }
"$AK_TOOL" sim quote --dir "$T/opts" --report-data 02 --mrconfigid "$(R48 1)" --mrowner "$(R48 2)" \
	--mrownerconfig "$(R48 3)" --td-attributes 0x40000000 --debug -o "$T/opts.dat"
check "sim quote's registers and attributes reach the quote; its TCB is UpToDate" bash -c "
	'$AK_TOOL' tdx verify --roots '$T/opts/root_ca.pem' --collateral '$T/opts/collateral' --json '$T/opts.dat' |
	jq -e '.mrconfigid == \"$(R48 1)\" and .mrowner == \"$(R48 2)\" and .mrownerconfig == \"$(R48 3)\" and
		.td_attributes == \"0000000040000001\" and .debug == true and .tcb_status == \"UpToDate\"'"
usage() { "$AK_TOOL" "$@" >/dev/null 2>&1; test $? -eq 2; }
check "sim init --tee tdx with an SNP option: usage error" usage sim init --tee tdx --product Genoa "$T/x"
check "sim init with a TDX option but no --tee tdx: usage error" usage sim init --tee-tcb-svn 01 "$T/x"
check "sim init --tee with an unknown TEE: usage error" usage sim init --tee sgx "$T/x"
check "sim init --tee-tcb-svn longer than 16 bytes: usage error" usage sim init --tee tdx --tee-tcb-svn "$(printf '0%.0s' $(seq 34))" "$T/x"
check "sim quote without -o: usage error" usage sim quote --dir "$T/tdxsim" --report-data 01
check "sim quote --rtmr 4=...: usage error" usage sim quote --dir "$T/tdxsim" --report-data 01 --rtmr 4=01 -o "$T/x.dat"
check "sim quote on an SNP sim directory: fails naming it" bash -c "
	'$AK_TOOL' sim quote --dir '$T/sim' --report-data 01 -o '$T/x.dat' 2>&1 | grep -q 'not a simulated TDX platform'"
check "the module refuses [sim] tee = sgx, naming the key" bash -c "
	printf '[module]\ntee = sim\n[sim]\ntee = sgx\ndir = $T/tdxsim\n' >'$T/bad.conf'
	ATTESTKEY_CONF='$T/bad.conf' '$AK_PROBE' '$AK_MODULE' login 1234 2>&1 | grep -q \"tee = 'sgx' is not snp or tdx\""

# 9. expired collateral (TCB info, QE identity and CRLs dated 60 days back):
#    refused by default, accepted when the token allows it
"$AK_TOOL" sim init --tee tdx "$T/tdxsim" --collateral-age 60 >/dev/null
write_broker_conf
restart_broker
expect_refusal expired-collateral "collateral_expired"
write_broker_conf "allow_expired_collateral = true"
restart_broker
login_ok expired-collateral-allowed
finish
