#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `attestkey tdx verify` on every real TDX quote of tests/data/tdx (../shared's),
# reaching exactly the verdict and TCB status its README states (issue 9
# items 5 and 6), the policy from an INI file, collateral expiry, broken
# collateral, and the exit codes 0 accept / 1 refuse / 2 usage.
. "$(dirname "$0")/lib.sh"

need jq
V=${ATTESTKEY_VECTORS:-$top_srcdir/tests/data}
[ -f "$V/tdx/v4-spr-go-tdx-guest/quote.dat" ] || bail "no TDX vectors at $V"
R=$V/intel-roots
SPR=$V/tdx/v4-spr-go-tdx-guest
V5=$V/tdx/v5-tdx15-go-tdx-guest
GCP=$V/tdx/v4-gcp-cos113-go-tdx-guest
DBG=$V/tdx/v4-debug-trustee
T2023=1687132800 # 2023-06-19: the 2023 TCB info and QE identity are valid
T2025=1759190400 # 2025-09-30: the 2025-09 TCB infos are valid
T2026=1769990400 # 2026-02-02: v5's TCB info is valid (its QE identity is from 2023)
MRTD_SPR=6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb
MRTD_V5=7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876
MRTD_GCP=dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a
MRTD_DBG=705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031
RD_V5=945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a

# tdxv NAME EXIT JQ-CONDITION ARGS...: `tdx verify --json ARGS` exits EXIT
# and its one JSON object meets the jq condition.
tdxv() {
	local name=$1 want=$2 cond=$3 rc
	shift 3
	"$AK_TOOL" tdx verify --json "$@" >"$T/$name.json" 2>"$T/$name.err"
	rc=$?
	if [ "$rc" = "$want" ]; then
		ok "$name: exit $want"
	else
		not_ok "$name: exit $rc, expected $want"
		diag_stream <"$T/$name.err"
	fi
	if jq -e "$cond" "$T/$name.json" >/dev/null 2>&1; then
		ok "$name: the JSON verdict is as expected"
	else
		not_ok "$name: the JSON verdict is not as expected"
		diag "condition: $cond"
		diag_stream <"$T/$name.json"
		diag_stream <"$T/$name.err"
	fi
}

# ---- the README's verdicts --------------------------------------------------
tdxv spr-2023 1 '.verdict == "refuse" and .reason == "tcb_status_not_allowed"
	and .tcb_status == "TCBLevelNotSupported" and .collateral_expired == false
	and .mrtd == "'$MRTD_SPR'" and .fmspc == "50806f000000" and .debug == false' \
	--roots "$R" --collateral "$SPR" --time $T2023 "$SPR/quote.dat"
tdxv spr-2025 1 '.verdict == "refuse" and .tcb_status == "TCBLevelNotSupported"' \
	--roots "$R" --collateral "$SPR" --tcb-info "$SPR/tcb_info_2025-09.json" \
	--time $T2025 --allow-expired-collateral "$SPR/quote.dat"
tdxv v5 0 '.verdict == "accept" and .reason == "ok" and .tcb_status == "UpToDate"
	and .module_tcb_status == "UpToDate" and .body_type == 3 and .quote_version == 5
	and .mrtd == "'$MRTD_V5'" and .report_data == "'$RD_V5'"
	and .collateral_expired == true and (.expired | test("qe_identity"))' \
	--roots "$R" --collateral "$V5" --time $T2026 --allow-expired-collateral "$V5/quote.dat"
tdxv v5-expired-refused 1 '.verdict == "refuse" and .reason == "collateral_expired"
	and .tcb_status == "UpToDate" and .collateral_expired == true' \
	--roots "$R" --collateral "$V5" --time $T2026 "$V5/quote.dat"
tdxv gcp-2025 0 '.verdict == "accept" and .tcb_status == "UpToDate"
	and .fmspc == "00806f050000" and .mrtd == "'$MRTD_GCP'"
	and .report_data == ("0" * 128)' \
	--roots "$R" --tcb-info "$GCP/tcb_info_2025-09.json" \
	--qe-identity "$SPR/qe_identity.json" --time $T2025 --allow-expired-collateral \
	"$GCP/quote.dat"
tdxv debug-2023 1 '.verdict == "refuse" and .reason == "debug_not_allowed"
	and .tcb_status == "UpToDate" and .debug == true and .collateral_expired == false
	and .mrtd == "'$MRTD_DBG'" and (.td_attributes | test("1$"))
	and ([.policy_checks[] | select(.check == "debug")][0] | .pass == false and .reason != null)
	and ([.policy_checks[] | select(.check == "tcb_status")][0].pass == true)' \
	--roots "$R" --collateral "$SPR" --time $T2023 "$DBG/quote.dat"
tdxv debug-2025 1 '.verdict == "refuse" and .tcb_status == "OutOfDate"
	and (.advisory_ids | index("INTEL-SA-00837") != null)' \
	--roots "$R" --collateral "$SPR" --tcb-info "$SPR/tcb_info_2025-09.json" \
	--time $T2025 --allow-expired-collateral "$DBG/quote.dat"

# ---- collateral expiry at the real time ---------------------------------------
tdxv now-expired 1 '.verdict == "refuse" and .reason == "collateral_expired"
	and .collateral_expired == true and .tcb_status == "UpToDate"' \
	--roots "$R" --collateral "$V5" "$V5/quote.dat"
tdxv now-allowed 0 '.verdict == "accept" and .tcb_status == "UpToDate"
	and .collateral_expired == true' \
	--roots "$R" --collateral "$V5" --allow-expired-collateral "$V5/quote.dat"

# ---- the JSON contract: every field present ----------------------------------
tdxv fields 0 '. as $o | all(["verdict","reason","tcb_status","collateral_expired","expired",
	"advisory_ids","fmspc","pck_serial","mrtd","rtmr0","rtmr1","rtmr2","rtmr3",
	"report_data","td_attributes","debug","tee_tcb_svn"][]; . as $k | $o | has($k))' \
	--roots "$R" --collateral "$V5" --time $T2026 --allow-expired-collateral "$V5/quote.dat"

# ---- REPORTDATA binding ---------------------------------------------------------
tdxv report-data 0 '.verdict == "accept"' --roots "$R" --collateral "$V5" \
	--time $T2026 --allow-expired-collateral --report-data "$RD_V5" "$V5/quote.dat"
tdxv report-data-mismatch 1 '.reason == "binding_mismatch" and .tcb_status == "UpToDate"' \
	--roots "$R" --collateral "$V5" --time $T2026 --allow-expired-collateral \
	--report-data "${RD_V5%?}0" "$V5/quote.dat"

# ---- a token's policy from an INI file -------------------------------------------
policy() {
	printf '[token vm]\npin = 1234\n%s\n' "$@" >"$T/policy.ini"
}
V5ARGS=(--roots "$R" --collateral "$V5" --time $T2026 --policy-ini "$T/policy.ini" --token vm)
policy "mrtd = $MRTD_V5" "allow_expired_collateral = true"
tdxv ini-mrtd 0 '.verdict == "accept" and .token == "vm"
	and ([.policy_checks[] | select(.check == "mrtd")][0].pass == true)' "${V5ARGS[@]}" "$V5/quote.dat"
policy "mrtd = $MRTD_SPR" "allow_expired_collateral = true"
tdxv ini-mrtd-other 1 '.reason == "measurement_not_allowed"
	and ([.policy_checks[] | select(.check == "mrtd")][0] | .pass == false and .reason != null)' "${V5ARGS[@]}" "$V5/quote.dat"
policy "mrtd = $MRTD_V5"
tdxv ini-expired 1 '.reason == "collateral_expired"' "${V5ARGS[@]}" "$V5/quote.dat"
tdxv ini-expired-flag 0 '.verdict == "accept"' "${V5ARGS[@]}" --allow-expired-collateral \
	"$V5/quote.dat"
policy "mrtd = any" "allow_expired_collateral = true" "rtmr0 = $MRTD_V5"
tdxv ini-rtmr0 1 '.reason == "policy_mismatch"
	and ([.policy_checks[] | select(.check == "rtmr0")][0] | .pass == false and .reason != null)' "${V5ARGS[@]}" "$V5/quote.dat"
policy "mrtd = $MRTD_DBG" "allow_debug = true" "allow_expired_collateral = true" \
	"tcb_status = UpToDate, OutOfDate"
tdxv ini-outofdate-allowed 0 '.verdict == "accept" and .tcb_status == "OutOfDate"' \
	--roots "$R" --collateral "$SPR" --tcb-info "$SPR/tcb_info_2025-09.json" --time $T2025 \
	--policy-ini "$T/policy.ini" --token vm "$DBG/quote.dat"
policy "tcb_status = Sometimes"
"$AK_TOOL" tdx verify "${V5ARGS[@]}" "$V5/quote.dat" >"$T/bad-ini.out" 2>&1
check "a bad policy value: exit 1" test $? = 1
check "a bad policy value: the message names the key" grep -q "tcb_status" "$T/bad-ini.out"
"$AK_TOOL" tdx verify --roots "$R" --collateral "$V5" --policy-ini "$T/policy.ini" \
	--token nosuch "$V5/quote.dat" >"$T/no-token.out" 2>&1
check "an unknown token: exit 1, named" grep -q "no \[token nosuch\]" "$T/no-token.out"

# ---- broken evidence and collateral -------------------------------------------------
mkdir -p "$T/col"
cp "$SPR"/* "$T/col/"
# one hex digit of the TCB info's signature changed
sed -i -E 's/("signature":")0/\11/; t; s/("signature":")./\10/' "$T/col/tcb_info.json"
check "the collateral copy differs" bash -c "! cmp -s '$T/col/tcb_info.json' '$SPR/tcb_info.json'"
tdxv tcb-info-signature 1 '.verdict == "refuse" and .reason == "bad_signature"
	and .tcb_status == null' --roots "$R" --collateral "$T/col" --time $T2023 "$DBG/quote.dat"
head -c 700 "$SPR/quote.dat" >"$T/short.dat"
tdxv truncated 1 '.reason == "evidence_malformed" and .mrtd == null and .tcb_status == null' --roots "$R" --collateral "$SPR" "$T/short.dat"
cp "$SPR/quote.dat" "$T/flipped.dat"
printf '\xff' | dd of="$T/flipped.dat" bs=1 seek=$((48 + 136)) conv=notrunc 2>/dev/null
tdxv mrtd-flipped 1 '.reason == "bad_signature" and (.message | test("quote signature"))' \
	--roots "$R" --collateral "$SPR" --time $T2023 "$T/flipped.dat"
tdxv foreign-root 1 '.reason == "untrusted_chain"' --roots "$V/amd-roots/ark-milan.pem" \
	--collateral "$SPR" --time $T2023 "$SPR/quote.dat"
tdxv no-collateral 1 '.reason == "collateral_unavailable" and .tcb_status == null
	and .fmspc == "50806f000000"' --roots "$R" --time $T2023 "$SPR/quote.dat"

"$AK_TOOL" tdx verify --roots "$R" --collateral "$T/none" "$SPR/quote.dat" >"$T/nodir.out" 2>&1
check "--collateral: a missing directory exits 1" test $? = 1
check "--collateral: a missing directory is named" grep -q "$T/none: not a readable directory" "$T/nodir.out"

# evidence JSON {"quote": base64url} reads like the raw quote
printf '{"quote":"%s"}\n' "$(basenc --base64url -w0 <"$DBG/quote.dat" | tr -d =)" >"$T/ev.json"
tdxv evidence-json 1 '.reason == "debug_not_allowed" and .tcb_status == "UpToDate"' \
	--roots "$R" --collateral "$SPR" --time $T2023 "$T/ev.json"

# ---- readable output ------------------------------------------------------------------
"$AK_TOOL" tdx verify --roots "$R" --collateral "$SPR" --time $T2023 "$DBG/quote.dat" \
	>"$T/text.out" 2>/dev/null
check "text: exit 1 on refusal" test $? = 1
for want in "TEE: *Intel TDX" "MRTD: *$MRTD_DBG" "TEE_TCB_SVN 0300050" "FMSPC 50806f000000" \
	"TCB status: UpToDate" "tcb_status *pass" "debug *fail" \
	"Verdict: *refuse: debug_not_allowed"; do
	check "text names '$want'" grep -q "$want" "$T/text.out"
done
"$AK_TOOL" tdx verify --roots "$R" --collateral "$V5" --time $T2026 \
	--allow-expired-collateral "$V5/quote.dat" >"$T/text-ok.out" 2>/dev/null
check "text: exit 0 on accept" test $? = 0
check "text: Verdict accept" grep -q "^Verdict: *accept" "$T/text-ok.out"

# ---- dump ---------------------------------------------------------------------------------
"$AK_TOOL" tdx dump "$SPR/quote.dat" >"$T/dump.out" 2>&1
check "dump: exit 0" test $? = 0
check "dump: MRTD" grep -q "^mrtd *$MRTD_SPR" "$T/dump.out"
check "dump: the 39 trailing bytes" grep -q "^trailing *39 bytes" "$T/dump.out"
"$AK_TOOL" tdx dump "$V5/quote.dat" >"$T/dump5.out" 2>&1
check "dump: v5 TDX 1.5 fields" grep -q "^mrservicetd" "$T/dump5.out"
"$AK_TOOL" tdx dump "$T/short.dat" >/dev/null 2>&1
check "dump: a truncated quote exits 1" test $? = 1

# ---- usage errors exit 2 ----------------------------------------------------------------
usage() {
	local name=$1
	shift
	"$AK_TOOL" "$@" >/dev/null 2>&1
	check "usage: $name exits 2" test $? = 2
}
usage "no QUOTE" tdx verify --roots "$R"
usage "two QUOTEs" tdx verify "$SPR/quote.dat" "$V5/quote.dat"
usage "an unknown option" tdx verify --frobnicate "$SPR/quote.dat"
usage "--time not a number" tdx verify --time soon "$SPR/quote.dat"
usage "--report-data not hex" tdx verify --report-data zz "$SPR/quote.dat"
usage "--policy-ini without --token" tdx verify --policy-ini "$T/policy.ini" "$SPR/quote.dat"
usage "--token without --policy-ini" tdx verify --token vm "$SPR/quote.dat"
usage "tdx alone" tdx
usage "tdx dump without QUOTE" tdx dump
"$AK_TOOL" tdx verify --help >/dev/null 2>&1
check "--help exits 0" test $? = 0
"$AK_TOOL" tdx verify --json --roots "$R" "$T/none.dat" >/dev/null 2>&1
check "a missing QUOTE file exits 1" test $? = 1

finish
