#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Azure vTPM evidence (issue 14) against a real TPM 2.0 (swtpm on loopback),
# through tpm2-tss: `attestkey sim azure` provisions it as Azure's paravisor
# does (AK at 0x81000003, HCL report in NV 0x01400001 with the simulated
# SNP chip's report over SHA-256 of the runtime data), then `attestkey
# evidence --tee azure` collects az-snp-vtpm evidence, whose every part is
# checked here with openssl and the SNP verifier: the HCL report's binding
# of the runtime data, the AK from HCLAkPub, the quote's signature by it,
# extraData = SHA-256(binding) and pcrDigest over the PCR values. Then the
# configured PCR selection, re-provisioning, and the refusals: no TPM at
# the TCTI, NV index missing, AK handle missing, bad configuration. THIM
# and the TDX quote service are Azure IMDS look-alikes (httpfixture).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/httpfixture-lib.sh"
need jq basenc openssl xxd sha256sum

start_swtpm
"$AK_TOOL" sim init "$T/chip" >/dev/null || bail "attestkey sim init failed"
# Azure IMDS's THIM look-alike: the sim chip's VCEK chain, as Azure serves it
# (and like IMDS, 400 without "Metadata: true")
mkdir -p "$T/imds/metadata/THIM/amd"
jq -n --rawfile v "$T/chip/vcek.pem" --rawfile c "$T/chip/cert_chain.pem" \
	'{vcekCert: $v, tcbm: "7308000000000003", certificateChain: $c, cacheControl: "86400"}' \
	>"$T/imds/metadata/THIM/amd/certification"
cat "$T/chip/vcek.pem" "$T/chip/cert_chain.pem" >"$T/thim-chain.pem"
cat "$T/chip/vcek.pem" "$T/chip/ask.pem" >"$T/own-chain.pem" # azure_vcek_chain's
mkdir -p "$T/imds/acc"
start_httpfixture imds "$T/imds" --post --require-header "Metadata: true"
IMDS=$FIXTURE_URL
MEAS=$(printf 'a5%.0s' $(seq 48))
RD=$(printf '3c%.0s' $(seq 64))

b64d() { jq -r "$1" "$2" | basenc --base64url -d 2>/dev/null; }
hexof() { xxd -p "$@" | tr -d '\n'; }
# conf FILE [LINES]: a module configuration for the vTPM at $SWTPM_TCTI
conf() {
	local f=$1
	shift
	printf '[module]\nbrokers = https://127.0.0.1:9\nca = %s\ntee = azure\ntcti = %s\nazure_imds_url = %s\n' \
		"$T/chip/ark.pem" "$SWTPM_TCTI" "$IMDS" >"$f"
	for l in "$@"; do echo "$l" >>"$f"; done
	printf '[token web]\n' >>"$f"
}
# ev NAME [ARGS]: attestkey evidence --json; $T/NAME.json, $T/NAME.err
ev() {
	local name=$1
	shift
	"$AK_TOOL" evidence --report-data "$RD" --json "$@" >"$T/$name.json" 2>"$T/$name.err"
}
# split NAME: the evidence's parts into $T/NAME.{hcl,quote,sig,rt,hw}
split() {
	b64d .evidence.hcl_report "$T/$1.json" >"$T/$1.hcl"
	b64d .evidence.tpm_quote "$T/$1.json" >"$T/$1.quote"
	b64d .evidence.tpm_sig "$T/$1.json" >"$T/$1.sig"
	local vs
	vs=$((0x$(xxd -s $((0x4C0 + 16)) -l 4 -e "$T/$1.hcl" | awk '{print $2}')))
	tail -c +$((0x4C0 + 20 + 1)) "$T/$1.hcl" | head -c "$vs" >"$T/$1.rt"
	tail -c +$((0x20 + 1)) "$T/$1.hcl" | head -c 1184 >"$T/$1.hw"
}
# akpem NAME: HCLAkPub (a JWK) as a PEM public key, $T/NAME.ak.pem
akpem() {
	local n
	n=$(jq -r '.keys[] | select(.kid == "HCLAkPub") | .n' "$T/$1.rt" | basenc --base64url -d 2>/dev/null | hexof)
	[ "$(jq -r '.keys[] | select(.kid == "HCLAkPub") | .e' "$T/$1.rt")" = AQAB ] || return 1
	printf 'asn1=SEQUENCE:k\n[k]\nn=INTEGER:0x%s\ne=INTEGER:0x010001\n' "$n" >"$T/$1.asn"
	openssl asn1parse -genconf "$T/$1.asn" -out "$T/$1.ak.der" >/dev/null &&
		openssl rsa -RSAPublicKey_in -inform DER -in "$T/$1.ak.der" -pubout -out "$T/$1.ak.pem" 2>/dev/null
}
# quote_field NAME extra|select|digest: from TPMS_ATTEST (TPM 2.0 part 2,
# 10.12.12): magic, type, qualifiedSigner, extraData, clockInfo (17),
# firmwareVersion (8), TPML_PCR_SELECTION, pcrDigest
quote_field() {
	local q="$T/$1.quote" off n
	off=$((6 + 2 + 0x$(hexof -s 6 -l 2 "$q")))
	n=$((0x$(hexof -s "$off" -l 2 "$q")))
	[ "$2" = extra ] && { hexof -s $((off + 2)) -l "$n" "$q"; return; }
	off=$((off + 2 + n + 17 + 8))
	# one selection: count(4) hash(2) sizeofSelect(1) select(3)
	[ "$2" = select ] && { hexof -s "$off" -l 10 "$q"; return; }
	off=$((off + 10))
	hexof -s $((off + 2)) -l $((0x$(hexof -s "$off" -l 2 "$q"))) "$q"
}
# pcr_digest NAME PCR...: SHA-256 over those PCR values of the evidence
pcr_digest() {
	local name=$1 i
	shift
	for i in "$@"; do jq -r ".evidence.pcrs[$i]" "$T/$name.json"; done | tr -d '\n' | xxd -r -p |
		sha256sum | cut -d' ' -f1
}
# refusal DESCRIPTION PATTERN NAME ARGS...: evidence fails, one line matching
refusal() {
	local d=$1 pat=$2 name=$3
	shift 3
	if ev "$name" "$@"; then
		not_ok "$d"; diag "it succeeded"
	elif [ ! -s "$T/$name.json" ] && [ "$(grep -c . "$T/$name.err")" = 1 ] && grep -q "$pat" "$T/$name.err"; then
		ok "$d"
	else
		not_ok "$d"; diag_stream <"$T/$name.err"
	fi
}
nonce=$(printf '%s' "$RD" | xxd -r -p | sha256sum | cut -d' ' -f1)
# azv NAME VERDICT REASON az-snp|az-tdx EVIDENCE [ARGS]: `attestkey KIND
# verify --json` on the collected evidence says VERDICT (REASON)
azv() {
	local name=$1 want=$2 reason=$3 kind=$4 e=$5
	shift 5
	jq -c .evidence.pcrs "$T/$e.json" >"$T/$e.pcrs.json"
	"$AK_TOOL" "$kind" verify --json --hcl "$T/$e.hcl" --tpm-quote "$T/$e.quote" \
		--tpm-sig "$T/$e.sig" --pcrs "$T/$e.pcrs.json" "$@" >"$T/$name.v.json" 2>"$T/$name.v.err"
	if jq -e --arg v "$want" --arg r "$reason" '.verdict == $v and .reason == $r' \
		"$T/$name.v.json" >/dev/null 2>&1; then
		ok "$kind verify, $name: $want ($reason)"
	else
		not_ok "$kind verify, $name: expected $want ($reason)"
		diag_stream <"$T/$name.v.err"
		diag_stream <"$T/$name.v.json"
	fi
}

# --- provisioning and collection
check "sim azure provisions the TPM (AK, HCL report in NV)" \
	"$AK_TOOL" sim azure --tcti "$SWTPM_TCTI" --measurement "$MEAS" "$T/chip"
check "attestkey evidence --tee azure collects from the vTPM" \
	ev az --tee azure --tcti "$SWTPM_TCTI" --vcek-chain "$T/own-chain.pem"
split az
if [ "$(jq -r '.tee + " " + .interface' "$T/az.json")" = "az-snp-vtpm azure-vtpm" ]; then
	ok "the evidence is az-snp-vtpm, from the vTPM"
else
	not_ok "the evidence is az-snp-vtpm, from the vTPM"; diag "$(jq -c '{tee, interface}' "$T/az.json")"
fi
if [ "$(head -c 4 "$T/az.hcl")" = HCLA ] &&
	[ "$(hexof -s $((0x4C0 + 8)) -l 8 "$T/az.hcl")" = 0200000001000000 ]; then
	ok "HCL report: magic HCLA, report_type SNP, hash_type SHA-256"
else
	not_ok "HCL report: magic HCLA, report_type SNP, hash_type SHA-256"
fi
if jq -e '.keys[0].kid == "HCLAkPub" and .keys[0].kty == "RSA" and
	.["vm-configuration"] == {"console-enabled": false, "secure-boot": true, "tpm-enabled": true,
	"vmUniqueId": .["vm-configuration"].vmUniqueId} and (.["user-data"] | length) == 128' \
	"$T/az.rt" >/dev/null 2>&1; then
	ok "runtime data: HCLAkPub, vm-configuration and user-data as on Azure"
else
	not_ok "runtime data: HCLAkPub, vm-configuration and user-data as on Azure"; diag_stream <"$T/az.rt"
fi
want="$(sha256sum <"$T/az.rt" | cut -d' ' -f1)$(printf '0%.0s' $(seq 64))"
got=$(hexof -s 0x50 -l 64 "$T/az.hw")
if [ "$got" = "$want" ]; then
	ok "hardware report_data = SHA-256(runtime data) || 0^32"
else
	not_ok "hardware report_data = SHA-256(runtime data) || 0^32"; diag "got $got" "want $want"
fi
"$AK_TOOL" snp verify --roots "$T/chip/ark.pem" --ask "$T/chip/ask.pem" --vcek "$T/chip/vcek.der" \
	--report-data "$want" --json "$T/az.hw" >"$T/snp.json" 2>&1
if jq -e --arg m "$MEAS" '.verdict == "accept" and .measurement == $m' "$T/snp.json" >/dev/null 2>&1; then
	ok "the hardware report verifies with the sim chip's VCEK chain, with its measurement"
else
	not_ok "the hardware report verifies with the sim chip's VCEK chain, with its measurement"
	diag_stream <"$T/snp.json"
fi
akpem az || bail "cannot make a PEM key of HCLAkPub"
check "the quote's signature verifies with HCLAkPub (RSASSA-PKCS1-v1_5 SHA-256)" \
	openssl dgst -sha256 -verify "$T/az.ak.pem" -signature "$T/az.sig" "$T/az.quote"
cp "$T/az.quote" "$T/bad.quote"
printf '\x01' | dd of="$T/bad.quote" bs=1 seek=60 conv=notrunc 2>/dev/null
refuse "a quote changed in one byte does not verify" \
	openssl dgst -sha256 -verify "$T/az.ak.pem" -signature "$T/az.sig" "$T/bad.quote"
if [ "$(hexof -l 6 "$T/az.quote")" = ff5443478018 ]; then
	ok "TPMS_ATTEST: TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE"
else
	not_ok "TPMS_ATTEST: TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE"
fi
got=$(quote_field az extra)
if [ "$got" = "$nonce" ]; then
	ok "the quote's extraData is SHA-256(binding)"
else
	not_ok "the quote's extraData is SHA-256(binding)"; diag "got $got" "want $nonce"
fi
if [ "$(quote_field az select)" = 00000001000b03ffffff ] &&
	[ "$(quote_field az digest)" = "$(pcr_digest az $(seq 0 23))" ] &&
	[ "$(jq '.evidence.pcrs | length' "$T/az.json")" = 24 ]; then
	ok "the quote covers the 24 SHA-256 PCRs and its pcrDigest is theirs"
else
	not_ok "the quote covers the 24 SHA-256 PCRs and its pcrDigest is theirs"
	diag "select $(quote_field az select) digest $(quote_field az digest)"
fi
if cmp -s <(b64d .evidence.vcek "$T/az.json") "$T/own-chain.pem" && [ "$(fixture_fetches THIM)" = 0 ]; then
	ok "azure_vcek_chain is sent as vcek"
else
	not_ok "azure_vcek_chain is sent as vcek"
fi

b64d .evidence.vcek "$T/az.json" >"$T/az.vcek.pem"
azv collected accept ok az-snp az --vcek "$T/az.vcek.pem" --roots "$T/chip/ark.pem" \
	--kds http://127.0.0.1:9 --nonce "$nonce"
azv other-binding refuse binding_mismatch az-snp az --vcek "$T/az.vcek.pem" \
	--roots "$T/chip/ark.pem" --kds http://127.0.0.1:9 \
	--nonce "$(printf other | sha256sum | cut -c1-64)"
azv amd-roots refuse untrusted_chain az-snp az --vcek "$T/az.vcek.pem" \
	--kds http://127.0.0.1:9 --nonce "$nonce"

# --- the module's configuration: azure_pcrs, and the text output
conf "$T/pcrs.conf" "azure_pcrs = 4, 7, 11"
check "tee = azure with azure_pcrs = 4, 7, 11" ev pcrs --conf "$T/pcrs.conf"
split pcrs
if [ "$(quote_field pcrs select)" = 00000001000b03900800 ] &&
	[ "$(quote_field pcrs digest)" = "$(pcr_digest pcrs 4 7 11)" ] &&
	[ "$(quote_field pcrs extra)" = "$nonce" ]; then
	ok "the quote covers PCRs 4, 7 and 11 only, with their digest"
else
	not_ok "the quote covers PCRs 4, 7 and 11 only, with their digest"
	diag "select $(quote_field pcrs select)"
fi
b64d .evidence.vcek "$T/pcrs.json" >"$T/pcrs.vcek.pem"
azv pcrs-4-7-11 accept ok az-snp pcrs --vcek "$T/pcrs.vcek.pem" --roots "$T/chip/ark.pem" \
	--kds http://127.0.0.1:9 --nonce "$nonce"
"$AK_TOOL" evidence --conf "$T/pcrs.conf" >"$T/text.out" 2>&1
if grep -q '^tee: *az-snp-vtpm' "$T/text.out" && grep -q "^report_data: *$want" "$T/text.out" &&
	grep -q '^pcr23 ' "$T/text.out"; then
	ok "attestkey evidence prints the Azure evidence"
else
	not_ok "attestkey evidence prints the Azure evidence"; diag_stream <"$T/text.out"
fi

# --- attestkey doctor under tee = azure
conf "$T/doctor.conf" "azure_vcek_chain = $T/own-chain.pem"
conf "$T/doctor-noak.conf" "azure_ak_handle = 0x81000009"
chmod 600 "$T/doctor.conf" "$T/doctor-noak.conf"
ATTESTKEY_CONF="$T/doctor.conf" "$AK_TOOL" doctor >"$T/doctor.out" 2>&1
ATTESTKEY_CONF="$T/doctor-noak.conf" "$AK_TOOL" doctor >"$T/doctor-noak.out" 2>&1
if grep -q '^ok   evidence  az-snp-vtpm evidence from azure-vtpm' "$T/doctor.out" &&
	grep -q '^FAIL evidence  tee = azure, .*AK handle 0x81000009: the TPM has no such handle.*(and tcti, azure_\*)$' "$T/doctor-noak.out" &&
	! grep -q 'ERROR:esys\|WARNING:esys' "$T/doctor-noak.out"; then
	ok "attestkey doctor: the vTPM's evidence, and a missing AK named in one line"
else
	not_ok "attestkey doctor: the vTPM's evidence, and a missing AK named in one line"
	diag_stream <"$T/doctor.out"
	diag_stream <"$T/doctor-noak.out"
fi

# --- re-provisioning replaces the AK and the HCL report
check "sim azure again (a second boot)" \
	"$AK_TOOL" sim azure --tcti "$SWTPM_TCTI" --console-enabled "$T/chip"
check "the evidence after it" ev az2 --tee azure --tcti "$SWTPM_TCTI" --imds-url "$IMDS"
split az2
akpem az2 || bail "cannot make a PEM key of the second HCLAkPub"
if ! cmp -s "$T/az.ak.pem" "$T/az2.ak.pem" && jq -e '.["vm-configuration"]["console-enabled"]' "$T/az2.rt" >/dev/null &&
	openssl dgst -sha256 -verify "$T/az2.ak.pem" -signature "$T/az2.sig" "$T/az2.quote" >/dev/null 2>&1 &&
	[ "$(hexof -s 0x50 -l 32 "$T/az2.hw")" = "$(sha256sum <"$T/az2.rt" | cut -d' ' -f1)" ]; then
	ok "re-provisioning replaced the AK and the HCL report, and the quote is the new AK's"
else
	not_ok "re-provisioning replaced the AK and the HCL report, and the quote is the new AK's"
fi
refuse "the first AK does not verify the second quote" \
	openssl dgst -sha256 -verify "$T/az.ak.pem" -signature "$T/az2.sig" "$T/az2.quote"

# --- THIM: the VCEK chain from IMDS, with "Metadata: true", cached
if cmp -s <(b64d .evidence.vcek "$T/az2.json") "$T/thim-chain.pem" && [ ! -s "$T/az2.err" ]; then
	ok "without azure_vcek_chain the VCEK chain comes from THIM (vcekCert, certificateChain)"
else
	not_ok "without azure_vcek_chain the VCEK chain comes from THIM (vcekCert, certificateChain)"
	diag_stream <"$T/az2.err"
fi
if [ "$(fixture_fetches '^GET /metadata/THIM/amd/certification 200')" -ge 1 ] &&
	[ "$(fixture_fetches ' 400$')" = 0 ]; then
	ok "THIM was asked with Metadata: true"
else
	not_ok "THIM was asked with Metadata: true"; diag_stream <"$FIXTURE_LOG"
fi
mkdir -p "$T/cache"
conf "$T/cache.conf" "cache_dir = $T/cache"
before=$(fixture_fetches '^GET /metadata/THIM')
check "a collection with cache_dir" ev cache1 --conf "$T/cache.conf"
check "and a second one" ev cache2 --conf "$T/cache.conf"
if [ "$(fixture_fetches '^GET /metadata/THIM')" = $((before + 1)) ] &&
	cmp -s "$T/cache/thim-vcek.pem" "$T/thim-chain.pem" &&
	cmp -s <(b64d .evidence.vcek "$T/cache2.json") "$T/thim-chain.pem"; then
	ok "THIM's answer is cached in cache_dir: one fetch for two collections"
else
	not_ok "THIM's answer is cached in cache_dir: one fetch for two collections"
	diag "fetches before $before, now $(fixture_fetches '^GET /metadata/THIM')"
fi
if ev nothim --tee azure --tcti "$SWTPM_TCTI" --imds-url "$IMDS/elsewhere" &&
	! jq -e '.evidence | has("vcek")' "$T/nothim.json" >/dev/null &&
	[ "$(grep -c . "$T/nothim.err")" = 1 ] &&
	grep -q "Azure vTPM: THIM $IMDS/elsewhere/metadata/THIM/amd/certification: HTTP 404; the evidence goes without the VCEK chain" "$T/nothim.err"; then
	ok "THIM answering 404: one warning naming it, the evidence without vcek"
else
	not_ok "THIM answering 404: one warning naming it, the evidence without vcek"
	diag_stream <"$T/nothim.err"
fi

refusal "a missing VCEK chain file: refused naming it" \
	"VCEK chain $T/nonexistent.pem" novcek --tee azure --tcti "$SWTPM_TCTI" --vcek-chain "$T/nonexistent.pem"

# --- TDX: a TDREPORT in the HCL report, its TD quote from IMDS /acc/tdquote
"$AK_TOOL" sim init --tee tdx "$T/tdxchip" >/dev/null || bail "attestkey sim init --tee tdx failed"
MRTD=$(printf '7e%.0s' $(seq 48))
check "sim azure --tee tdx (the quote service's answer to $T/imds/acc/tdquote)" \
	"$AK_TOOL" sim azure --tcti "$SWTPM_TCTI" --tee tdx --mrtd "$MRTD" \
	--tdquote-out "$T/imds/acc/tdquote" "$T/tdxchip"
check "attestkey evidence on the TDX vTPM" ev tdx --tee azure --tcti "$SWTPM_TCTI" --imds-url "$IMDS"
split tdx
b64d .evidence.td_quote "$T/tdx.json" >"$T/tdx.quote.dat"
rd="$(sha256sum <"$T/tdx.rt" | cut -d' ' -f1)$(printf '0%.0s' $(seq 64))"
if [ "$(jq -r .tee "$T/tdx.json")" = az-tdx-vtpm ] &&
	[ "$(hexof -s $((0x4C0 + 8)) -l 4 "$T/tdx.hcl")" = 04000000 ] &&
	[ "$(hexof -s $((0x20 + 128)) -l 64 "$T/tdx.hcl")" = "$rd" ] &&
	[ "$(hexof -s $((0x20 + 528)) -l 48 "$T/tdx.hcl")" = "$MRTD" ] &&
	! jq -e '.evidence | has("vcek")' "$T/tdx.json" >/dev/null; then
	ok "az-tdx-vtpm: a TDREPORT with REPORTDATA = SHA-256(runtime data) || 0^32 and the MRTD"
else
	not_ok "az-tdx-vtpm: a TDREPORT with REPORTDATA = SHA-256(runtime data) || 0^32 and the MRTD"
fi
"$AK_TOOL" tdx verify --roots "$T/tdxchip/root_ca.pem" --collateral "$T/tdxchip/collateral" \
	--report-data "$rd" --json "$T/tdx.quote.dat" >"$T/tdxv.json" 2>&1
if jq -e --arg m "$MRTD" '.verdict == "accept" and .mrtd == $m' "$T/tdxv.json" >/dev/null 2>&1 &&
	[ "$(fixture_fetches '^POST /acc/tdquote 200')" = 1 ]; then
	ok "td_quote came from POST /acc/tdquote and verifies, with that REPORTDATA and MRTD"
else
	not_ok "td_quote came from POST /acc/tdquote and verifies, with that REPORTDATA and MRTD"
	diag_stream <"$T/tdxv.json"
fi
akpem tdx || bail "cannot make a PEM key of the TDX HCLAkPub"
if openssl dgst -sha256 -verify "$T/tdx.ak.pem" -signature "$T/tdx.sig" "$T/tdx.quote" >/dev/null 2>&1 &&
	[ "$(quote_field tdx extra)" = "$nonce" ] &&
	[ "$(quote_field tdx digest)" = "$(pcr_digest tdx $(seq 0 23))" ]; then
	ok "az-tdx-vtpm: the quote is the AK's, over SHA-256(binding) and the PCRs"
else
	not_ok "az-tdx-vtpm: the quote is the AK's, over SHA-256(binding) and the PCRs"
fi
azv tdx accept ok az-tdx tdx --td-quote "$T/tdx.quote.dat" --roots "$T/tdxchip/root_ca.pem" \
	--collateral "$T/tdxchip/collateral" --nonce "$nonce"
azv tdx-other-binding refuse binding_mismatch az-tdx tdx --td-quote "$T/tdx.quote.dat" \
	--roots "$T/tdxchip/root_ca.pem" --collateral "$T/tdxchip/collateral" \
	--nonce "$(printf other | sha256sum | cut -c1-64)"
refusal "TDX, the quote service answering 404: refused naming it" \
	"Azure vTPM: TD quote $IMDS/elsewhere/acc/tdquote: HTTP 404" notdq --tee azure \
	--tcti "$SWTPM_TCTI" --imds-url "$IMDS/elsewhere"

# --- refusals, each naming what is missing
conf "$T/nonv.conf" "azure_nv_index = 0x01400002"
refusal "NV index missing: refused naming it" \
	"Azure vTPM: NV index 0x01400002: the TPM has no such handle" nonv --conf "$T/nonv.conf"
conf "$T/noak.conf" "azure_ak_handle = 0x81000009"
refusal "AK handle missing: refused naming it" \
	"Azure vTPM: AK handle 0x81000009: the TPM has no such handle" noak --conf "$T/noak.conf"
conf "$T/badpcr.conf" "azure_pcrs = 4, 24"
refusal "azure_pcrs = 24: the configuration is refused naming the key" \
	"azure_pcrs: '24' is not a PCR number" badpcr --conf "$T/badpcr.conf"
refuse "sim azure without --tcti: a usage error" "$AK_TOOL" sim azure "$T/chip"
stop_swtpm
refusal "no TPM at the TCTI: refused naming the TCTI" \
	"Azure vTPM: TCTI '$SWTPM_TCTI': no TPM there" notpm --tee azure --tcti "$SWTPM_TCTI"
if "$AK_TOOL" sim azure --tcti "$SWTPM_TCTI" "$T/chip" >"$T/simfail.out" 2>&1; then
	not_ok "sim azure with no TPM at the TCTI fails naming it"
elif grep -q "sim azure: TCTI '$SWTPM_TCTI': no TPM there" "$T/simfail.out"; then
	ok "sim azure with no TPM at the TCTI fails naming it"
else
	not_ok "sim azure with no TPM at the TCTI fails naming it"; diag_stream <"$T/simfail.out"
fi
finish
