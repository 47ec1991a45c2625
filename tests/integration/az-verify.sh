#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `attestkey az-snp verify` on the real Azure evidence of tests/data/azure
# (an HCL report, its TPM quote whose nonce is "challenge", the PCRs and the
# VCEK chain): accepted with Milan's ARK as installed (data/amd) at a time
# inside the VCEK's validity; each part mutated refused with its reason;
# the --json fields; the vTPM policy keys; usage errors (exit 2).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snp-lib.sh"

AZ="$top_srcdir/tests/data/azure/snp-milan"
[ -f "$AZ/hcl-report.bin" ] || skip_all "no Azure vector in $AZ"
cp "$AZ"/* "$T/" && chmod u+w "$T"/* || bail "cannot copy the vector"
# No network: the VCEK comes with the evidence; a fetch would meet a closed port.
NOW=(--time 1704067200 --kds http://127.0.0.1:9)
NONCE=6368616c6c656e6765 # "challenge"

# parts NAME: the evidence files, NAME-* copies when they exist
parts() {
	local f out=()
	for f in hcl-report.bin tpm-quote.msg tpm-quote.sig pcrs-sha256.json; do
		if [ -f "$T/$1-$f" ]; then out+=("$T/$1-$f"); else out+=("$T/$f"); fi
	done
	P=(--hcl "${out[0]}" --tpm-quote "${out[1]}" --tpm-sig "${out[2]}" --pcrs "${out[3]}"
		--vcek "$T/vcek-ask-ark.pem")
}

# azv NAME VERDICT REASON [az-snp|az-tdx] ARGS...: `attestkey KIND verify --json`
# says VERDICT with REASON and exits 0 (accept) or 1 (refuse); JSON in $T/NAME.json
azv() {
	local name=$1 want=$2 reason=$3 kind=$4 rc want_rc=1
	shift 4
	"$AK_TOOL" "$kind" verify --json "$@" >"$T/$name.json" 2>"$T/$name.err"
	rc=$?
	[ "$want" = accept ] && want_rc=0
	if [ $rc -ne $want_rc ]; then
		not_ok "$name: exit status $rc for $want"
		diag "command: attestkey $kind verify --json $*"
		diag_stream <"$T/$name.err"
		diag_stream <"$T/$name.json"
	elif jq -e --arg v "$want" --arg r "$reason" '.verdict == $v and .reason == $r' \
		"$T/$name.json" >/dev/null 2>&1; then
		ok "$name: $want ($reason)"
	else
		not_ok "$name: expected $want ($reason)"
		diag_stream <"$T/$name.json"
	fi
}
# mutant NAME FILE: a copy of FILE as NAME-FILE, for flip/patch
mutant() { cp "$T/$2" "$T/$1-$2"; }

# ---- the real vector ---------------------------------------------------------
parts real
azv real accept ok az-snp "${P[@]}" --roots "$AMD/ark-milan.pem" --nonce "$NONCE" "${NOW[@]}"
json real "tee, HCL bound, quote verified, all 24 PCRs" \
	'.tee == "az-snp-vtpm" and .hcl_bound and .quote_verified and .pcr_mask == "0xffffff" and (.pcrs | length) == 24'
json real "PCR 7 as in the PCR list" \
	".pcrs.pcr7 == \"$(jq -r '.[7]' "$T/pcrs-sha256.json")\""
json real "vm-configuration and vmUniqueId" \
	'.vm_configuration.secure_boot == true and .vm_configuration.tpm_enabled == true and .vm_configuration.console_enabled == true and .vm_unique_id == "911B0EF8-9DBA-48B0-B275-4E4DF2D39252"'
json real "the SNP report as snp verify shows it: Milan, VCEK from the evidence, ARK-Milan, policy checks" \
	'.snp.verdict == "accept" and .snp.product == "Milan" and .snp.report_version == 2 and .snp.guest_svn == 5 and .snp.guest_policy == "0x3001f" and .snp.chain.source == "table" and .snp.chain.root == "ARK-Milan" and (.snp.policy_checks | length) >= 5'
json real "report_data is SHA-256 of the runtime data, then zeros" \
	".snp.report_data == \"$(dd if="$T/hcl-report.bin" bs=1 skip=$((0x4d4)) count=1110 status=none | sha256sum | cut -c1-64)$(printf '0%.0s' $(seq 64))\""
azv default-roots accept ok az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"
azv no-nonce accept ok az-snp "${P[@]}" "${NOW[@]}"
check "text output: exit 0 and the verdict" \
	bash -c '"$0" az-snp verify "${@}" | grep -q "^Verdict: *accept"' "$AK_TOOL" "${P[@]}" --nonce "$NONCE" "${NOW[@]}"
azv vcek-expired refuse untrusted_chain az-snp "${P[@]}" --nonce "$NONCE" --time 1950000000 --kds http://127.0.0.1:9
azv genoa-root refuse untrusted_chain az-snp "${P[@]}" --roots "$AMD/ark-genoa.pem" --nonce "$NONCE" "${NOW[@]}"

# ---- each part mutated -------------------------------------------------------
# a byte of the runtime data (a digit of "user-data": still JSON)
mutant rt hcl-report.bin
off=$(grep -abo '"user-data":"0' "$T/rt-hcl-report.bin" | cut -d: -f1)
patch "$T/rt-hcl-report.bin" $((off + 13)) 31
parts rt
azv runtime refuse binding_mismatch az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"
json runtime "named as the HCL runtime data" '(.message | test("HCL runtime data")) and .hcl_bound == false'

mutant snp hcl-report.bin
flip "$T/snp-hcl-report.bin" $((0x20 + 0x90)) # the measurement
parts snp
azv snp-report refuse bad_signature az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"

mutant q tpm-quote.msg
flip "$T/q-tpm-quote.msg" $((0x3b)) # clockInfo.clock
parts q
azv quote refuse bad_signature az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"
json quote "the TPM quote's signature named, the HCL still bound" \
	'(.message | test("TPM quote signature")) and .hcl_bound and (.quote_verified | not)'

mutant s tpm-quote.sig
flip "$T/s-tpm-quote.sig" 100
parts s
azv signature refuse bad_signature az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"

jq -c '.[11] = "00000000000000000000000000000000000000000000000000000000000000ff"' \
	"$T/pcrs-sha256.json" >"$T/p-pcrs-sha256.json"
parts p
azv pcr refuse evidence_malformed az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"
json pcr "pcrDigest named" '.message | test("pcrDigest")'

parts real
azv nonce refuse binding_mismatch az-snp "${P[@]}" --nonce 6368616c6c656e6766 "${NOW[@]}"
json nonce "extraData and the expected nonce named" \
	'.message | test("extraData 6368616c6c656e6765 is not the expected nonce 6368616c6c656e6766")'

# the evidence type and the HCL report_type disagree
azv as-tdx refuse evidence_malformed az-tdx "${P[@]/--vcek/--td-quote}" \
	--roots "$top_srcdir/data/intel/Intel_SGX_Root_CA.pem" --nonce "$NONCE" --time 1704067200
json as-tdx "report_type named" '.message | test("report_type 2 \\(SNP\\) is not that of evidence type az-tdx-vtpm")'
json as-tdx "no hardware report object, under the tdx key" '.tee == "az-tdx-vtpm" and has("tdx") and .tdx == null and (has("snp") | not)'
mutant tdx hcl-report.bin
patch "$T/tdx-hcl-report.bin" $((0x4c8)) 04
parts tdx
azv report-type refuse evidence_malformed az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"

mutant magic hcl-report.bin
patch "$T/magic-hcl-report.bin" 0 58
parts magic
azv magic refuse evidence_malformed az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"
json magic "the magic named" '.message | test("magic")'

head -c 60 "$T/tpm-quote.msg" >"$T/short-tpm-quote.msg"
parts short
azv quote-short refuse evidence_malformed az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}"
json quote-short "the truncated field named" '.message | test("TPM quote is truncated in")'

# ---- policy ------------------------------------------------------------------
parts real
pcr7=$(jq -r '.[7]' "$T/pcrs-sha256.json")
printf '[token t]\nmeasurements = any\npcr7 = %s\naz_secure_boot = true\naz_tpm_enabled = true\n' \
	"$pcr7" >"$T/good.ini"
azv policy accept ok az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}" --policy-ini "$T/good.ini" --token t
json policy "the vTPM check listed as passed" '.token == "t" and (.policy_checks[] | select(.check == "vtpm") | .pass)'
printf '[token t]\nmeasurements = any\npcr7 = %s\n' "$(printf '11%.0s' $(seq 32))" >"$T/pcr.ini"
azv policy-pcr refuse policy_mismatch az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}" --policy-ini "$T/pcr.ini" --token t
json policy-pcr "PCR 7, actual and expected named" ".message | test(\"PCR 7 is $pcr7, expected 1111\")"
printf '[token t]\nmeasurements = any\naz_console_enabled = false\n' >"$T/console.ini"
azv policy-console refuse policy_mismatch az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}" --policy-ini "$T/console.ini" --token t
json policy-console "console-enabled named" '.message | test("console-enabled is true, expected false")'
printf '[token t]\nmeasurements = %s\n' "$(printf 'ab%.0s' $(seq 48))" >"$T/meas.ini"
azv policy-measurement refuse measurement_not_allowed az-snp "${P[@]}" --nonce "$NONCE" "${NOW[@]}" --policy-ini "$T/meas.ini" --token t
printf '[token t]\npcr7 = xyz\n' >"$T/bad.ini"
refuse "a bad pcr7 value is refused" "$AK_TOOL" az-snp verify "${P[@]}" "${NOW[@]}" --policy-ini "$T/bad.ini" --token t
check "... naming the key" grep -q "pcr7: 'xyz' is not 64 hex digits" "$T/check.log"

# ---- usage and file errors ---------------------------------------------------
usage() {
	local d=$1 rc
	shift
	"$AK_TOOL" "$@" >/dev/null 2>"$T/usage.err"
	rc=$?
	if [ $rc -eq 2 ]; then ok "usage: $d (exit 2)"; else not_ok "usage: $d: exit $rc"; fi
}
usage "no --hcl" az-snp verify --tpm-quote "$T/tpm-quote.msg" --tpm-sig "$T/tpm-quote.sig" --pcrs "$T/pcrs-sha256.json"
usage "--nonce not hex" az-snp verify "${P[@]}" --nonce zz
usage "--td-quote for az-snp" az-snp verify "${P[@]}" --td-quote "$T/tpm-quote.msg"
usage "az-tdx without --td-quote" az-tdx verify --hcl "$T/hcl-report.bin" --tpm-quote "$T/tpm-quote.msg" --tpm-sig "$T/tpm-quote.sig" --pcrs "$T/pcrs-sha256.json"
usage "no subcommand" az-snp
echo '["zz"]' >"$T/bad-pcrs.json"
refuse "a PCR list that is not hex" "$AK_TOOL" az-snp verify "${P[@]/$T\/pcrs-sha256.json/$T/bad-pcrs.json}" "${NOW[@]}"
check "... naming the entry" grep -q "entry 0 is not 64 hex digits" "$T/check.log"
refuse "a missing HCL file" "$AK_TOOL" az-snp verify "${P[@]/$T\/hcl-report.bin/$T/nonexistent}" "${NOW[@]}"
check "... naming the option and file" grep -q -- "--hcl $T/nonexistent" "$T/check.log"

finish
