#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `attestkey az-snp verify` and `attestkey az-tdx verify` on Azure vTPM
# evidence made here without Azure: an RSA AK made by openssl, runtime data
# naming it (jq), a hardware report whose report_data is SHA-256 of that
# runtime data from the simulated SNP chip (`sim report`) or the simulated
# TDX guest (`sim quote`, with the TDREPORT an HCL would hold), the HCL
# report around it, a TPMS_ATTEST marshaled with printf and signed by the
# AK with `openssl dgst`. Accepted under the sim roots; refused when the AK
# is not the HCL's, the TDREPORT is not the quote's, or the nonce differs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snp-lib.sh"
need openssl xxd sha256sum

# hex: stdin as lower-case hex on one line
hex() { xxd -p | tr -d '\n'; }
# b64url: stdin as base64url without padding
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# le32 N / be N BYTES: N as hex bytes
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
be() { printf "%0$(($2 * 2))x" "$1"; }
unhex() { xxd -r -p; }

"$AK_TOOL" sim init "$T/snp" >/dev/null || bail "sim init"
"$AK_TOOL" sim init --tee tdx "$T/tdx" >/dev/null || bail "sim init --tee tdx"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/ak.pem" 2>/dev/null ||
	bail "openssl genpkey"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other.pem" 2>/dev/null ||
	bail "openssl genpkey"
n=$(openssl rsa -in "$T/ak.pem" -noout -modulus 2>/dev/null | cut -d= -f2 | unhex | b64url)
jq -cn --arg n "$n" '{keys: [{kid: "HCLAkPub", key_ops: ["sign"], kty: "RSA", e: "AQAB", n: $n}],
	"vm-configuration": {"console-enabled": false, "secure-boot": true, "tpm-enabled": true,
	vmUniqueId: "SIM-VM"}, "user-data": "00"}' | tr -d '\n' >"$T/runtime.json"
RD="$(sha256sum "$T/runtime.json" | cut -c1-64)$(printf '0%.0s' $(seq 64))"
RTLEN=$(stat -c %s "$T/runtime.json")

# hcl NAME TYPE HWFILE: the HCL report around a 1184-byte hardware report
hcl() {
	{
		printf 'HCLA' && le32 1 | unhex && le32 1184 | unhex && le32 2 | unhex
		head -c 16 /dev/zero
		cat "$3"
		{ le32 $((20 + RTLEN)); le32 1; le32 "$2"; le32 1; le32 "$RTLEN"; } | unhex
		cat "$T/runtime.json"
	} >"$T/$1.hcl"
}

# PCRs 0..23 = 32 bytes of their number; the quote selects 0..7 and 11
for i in $(seq 0 23); do printf '%064x\n' 0 | sed "s/0/$(printf '%x' $((i % 16)))/g"; done |
	jq -R . | jq -cs . >"$T/pcrs.json"
digest=$(for i in 0 1 2 3 4 5 6 7 11; do jq -r ".[$i]" "$T/pcrs.json"; done | tr -d '\n' | unhex |
	sha256sum | cut -c1-64)
NONCE=$(printf 'login binding' | sha256sum | cut -c1-64)
# quote NAME KEY: TPMS_ATTEST (extraData = NONCE) and its signature by KEY
quote() {
	{
		be $((0xff544347)) 4; be $((0x8018)) 2 # magic, TPM_ST_ATTEST_QUOTE
		be 4 2; be $((0x81000003)) 4          # qualifiedSigner: the AK's handle
		be 32 2; printf '%s' "$NONCE"          # extraData
		be 123456 8; be 1 4; be 0 4; be 1 1    # clockInfo
		be 0 8                                 # firmwareVersion
		be 1 4; be 11 2; be 3 1; printf 'ff0800' # one bank, SHA-256, PCRs 0-7, 11
		be 32 2; printf '%s' "$digest"         # pcrDigest
	} | unhex >"$T/$1.msg"
	openssl dgst -sha256 -sign "$2" -out "$T/$1.sig" "$T/$1.msg" || bail "openssl dgst -sign"
}
quote good "$T/ak.pem"
quote other "$T/other.pem"
Q=(--tpm-quote "$T/good.msg" --tpm-sig "$T/good.sig" --pcrs "$T/pcrs.json")

# ---- az-snp: the sim chip signs the HCL's report -----------------------------
"$AK_TOOL" sim report --dir "$T/snp" --report-data "$RD" --report-out "$T/snp.bin" \
	-o "$T/snp.json" >/dev/null || bail "sim report"
hcl snp 2 "$T/snp.bin"
cat "$T/snp/vcek.pem" "$T/snp/ask.pem" >"$T/chain.pem"
S=(--hcl "$T/snp.hcl" --vcek "$T/chain.pem" --roots "$T/snp/ark.pem" --kds http://127.0.0.1:9)
azv() {
	local name=$1 want=$2 reason=$3 kind=$4 rc want_rc=1
	shift 4
	"$AK_TOOL" "$kind" verify --json "$@" >"$T/$name.json" 2>"$T/$name.err"
	rc=$?
	[ "$want" = accept ] && want_rc=0
	if [ $rc -eq $want_rc ] && jq -e --arg v "$want" --arg r "$reason" \
		'.verdict == $v and .reason == $r' "$T/$name.json" >/dev/null 2>&1; then
		ok "$name: $want ($reason)"
	else
		not_ok "$name: exit $rc, expected $want ($reason)"
		diag_stream <"$T/$name.err"
		diag_stream <"$T/$name.json"
	fi
}
azv sim-snp accept ok az-snp "${S[@]}" "${Q[@]}" --nonce "$NONCE"
json sim-snp "9 PCRs quoted, vm-configuration as written, the sim chip's chain" \
	'.pcr_mask == "0x0008ff" and (.pcrs | length) == 9 and .vm_configuration.console_enabled == false and .vm_unique_id == "SIM-VM" and .snp.chain.verified'
printf '[token t]\nmeasurements = any\npcr11 = %s\naz_console_enabled = false\n' \
	"$(jq -r '.[11]' "$T/pcrs.json")" >"$T/t.ini"
azv sim-snp-policy accept ok az-snp "${S[@]}" "${Q[@]}" --nonce "$NONCE" --policy-ini "$T/t.ini" --token t
printf '[token t]\nmeasurements = any\npcr12 = %s\n' "$(jq -r '.[12]' "$T/pcrs.json")" >"$T/t12.ini"
azv sim-snp-pcr-not-quoted refuse policy_mismatch az-snp "${S[@]}" "${Q[@]}" --nonce "$NONCE" --policy-ini "$T/t12.ini" --token t
azv sim-snp-other-ak refuse bad_signature az-snp "${S[@]}" --tpm-quote "$T/other.msg" \
	--tpm-sig "$T/other.sig" --pcrs "$T/pcrs.json" --nonce "$NONCE"
azv sim-snp-nonce refuse binding_mismatch az-snp "${S[@]}" "${Q[@]}" --nonce "$(printf other | sha256sum | cut -c1-64)"
azv sim-snp-amd-roots refuse untrusted_chain az-snp --hcl "$T/snp.hcl" --vcek "$T/chain.pem" \
	--kds http://127.0.0.1:9 "${Q[@]}" --nonce "$NONCE"

# ---- az-tdx: the sim TD quote, and the TDREPORT the HCL holds ----------------
MRTD=$(printf 'ab%.0s' $(seq 48))
"$AK_TOOL" sim quote --dir "$T/tdx" --report-data "$RD" --mrtd "$MRTD" -o "$T/td.quote" \
	>/dev/null || bail "sim quote"
# tdreport FILE REPORTDATA MRTD: 1184 bytes, REPORTDATA at 128, MRTD at 528
tdreport() {
	head -c 1184 /dev/zero >"$1"
	patch "$1" 128 "$2"
	patch "$1" 528 "$3"
}
tdreport "$T/tdr.bin" "$RD" "$MRTD"
hcl tdx 4 "$T/tdr.bin"
D=(--hcl "$T/tdx.hcl" --td-quote "$T/td.quote" --roots "$T/tdx/root_ca.pem" --collateral "$T/tdx/collateral")
azv sim-tdx accept ok az-tdx "${D[@]}" "${Q[@]}" --nonce "$NONCE"
json sim-tdx "the TD quote as tdx verify shows it" \
	".tee == \"az-tdx-vtpm\" and .tdx.mrtd == \"$MRTD\" and .tdx.tcb_status == \"UpToDate\" and .tdx.report_data == \"$RD\" and .hcl_bound and .quote_verified"
printf '[token t]\nmrtd = %s\naz_secure_boot = true\n' "$MRTD" >"$T/tdx.ini"
azv sim-tdx-policy accept ok az-tdx "${D[@]}" "${Q[@]}" --nonce "$NONCE" --policy-ini "$T/tdx.ini" --token t
printf '[token t]\nmrtd = %s\n' "$(printf 'cd%.0s' $(seq 48))" >"$T/tdx-other.ini"
azv sim-tdx-mrtd refuse measurement_not_allowed az-tdx "${D[@]}" "${Q[@]}" --nonce "$NONCE" --policy-ini "$T/tdx-other.ini" --token t
tdreport "$T/tdr2.bin" "$RD" "$(printf 'cd%.0s' $(seq 48))"
hcl tdx2 4 "$T/tdr2.bin"
azv sim-tdx-tdreport-mrtd refuse binding_mismatch az-tdx --hcl "$T/tdx2.hcl" --td-quote "$T/td.quote" \
	--roots "$T/tdx/root_ca.pem" --collateral "$T/tdx/collateral" "${Q[@]}" --nonce "$NONCE"
json sim-tdx-tdreport-mrtd "MRTD named" '.message | test("TDREPORT has MRTD")'
"$AK_TOOL" sim quote --dir "$T/tdx" --report-data "$(printf '11%.0s' $(seq 64))" --mrtd "$MRTD" \
	-o "$T/td-other.quote" >/dev/null || bail "sim quote"
azv sim-tdx-other-quote refuse binding_mismatch az-tdx --hcl "$T/tdx.hcl" --td-quote "$T/td-other.quote" \
	--roots "$T/tdx/root_ca.pem" --collateral "$T/tdx/collateral" "${Q[@]}" --nonce "$NONCE"
json sim-tdx-other-quote "the HCL runtime data named" '.message | test("HCL runtime data")'
azv sim-tdx-as-snp refuse evidence_malformed az-snp --hcl "$T/tdx.hcl" --vcek "$T/chain.pem" \
	--roots "$T/snp/ark.pem" "${Q[@]}" --nonce "$NONCE"

finish
