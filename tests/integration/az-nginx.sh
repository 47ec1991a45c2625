#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Azure confidential VM end to end, without Azure (issue 14, docs/azure.md):
# a real TPM 2.0 (swtpm) is provisioned as Azure's paravisor does it at
# boot (attestkey sim azure: an AK at 0x81000003, the HCL report in NV
# 0x01400001 whose SNP report, signed by the simulated chip, carries
# SHA-256 of the runtime data naming that AK). The module logs in through
# tpm2-tss against swtpm (tee = azure), the broker verifies az-snp-vtpm
# evidence (SNP chain and signature, HCL binding, TPM quote by the AK over
# SHA-256(binding), PCR digest, the token's SNP and Azure policy), and
# nginx serves with the released key. Then the refusals an operator meets,
# and the same TPM as an Azure TD's (az-tdx-vtpm, the TD quote from a
# loopback stand-in for IMDS /acc/tdquote).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
. "$(dirname "$0")/httpfixture-lib.sh"
need nginx curl openssl jq pkcs11-tool
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"

setup_world
start_swtpm
"$AK_TOOL" sim azure --tcti "$SWTPM_TCTI" --measurement "$MEASUREMENT" "$T/sim" \
	>"$T/provision.log" 2>&1 || { diag_stream <"$T/provision.log"; bail "attestkey sim azure failed"; }
cat "$T/sim/vcek.pem" "$T/sim/ask.pem" "$T/sim/ark.pem" >"$T/vcek-chain.pem"
MODULE_TEE=azure
MODULE_LINES="tcti = $SWTPM_TCTI
azure_vcek_chain = $T/vcek-chain.pem"
P11="$AK_RUN pkcs11-tool --module $AK_MODULE"

# the PCR the quote will carry, as the TPM has it (swtpm after startup: 0)
PCR0=$(printf '0%.0s' $(seq 64))
PCR7_BAD=$(printf '7%.0s' $(seq 64))

write_broker_conf "tee = az-snp-vtpm" "pcr0 = $PCR0" "az_secure_boot = yes" "az_tpm_enabled = yes"
start_broker
"$AK_TOOL" doctor >"$T/doctor.txt" 2>&1
check "attestkey doctor collects az-snp-vtpm evidence through the TPM" grep -q "az-snp-vtpm evidence from" "$T/doctor.txt"
ATTESTKEY_DEBUG=1 $P11 --login --pin 1234 -O >"$T/objects.txt" 2>&1
check "pkcs11-tool logs in on az-snp-vtpm evidence from swtpm and sees the released key" \
	grep -q "Private Key Object" "$T/objects.txt"
grep -m1 -o "login timing (us):.*" "$T/objects.txt" | diag_stream
check "the broker audited one release of az-snp-vtpm evidence with the report's fields" bash -c "
	grep '\"event\": *\"release\"' '$T/audit.jsonl' | tail -n 1 |
	jq -e '.tee == \"az-snp-vtpm\" and .measurement == \"$MEASUREMENT\" and (.chip_id | length) == 128 and (.vm_unique_id | length) > 0'"

if start_nginx; then ok "nginx starts with a key released to the Azure guest"; else
	not_ok "nginx starts with a key released to the Azure guest"; diag_stream <"$T/nginx/start.log"
	diag_stream <"$T/nginx/logs/error.log"; finish; fi
check "curl fetches the page over TLS with the released key" bash -c \
	"curl -s --cacert '$T/pki/web-ca.pem' https://localhost:$NGINX_PORT/ | grep -q 'never touched'"
check "the served certificate is the released key's" bash -c "
	openssl s_client -connect 127.0.0.1:$NGINX_PORT -servername localhost </dev/null 2>/dev/null |
	openssl x509 -noout -fingerprint -sha256 | cmp -s - <(openssl x509 -in '$T/keys/web/tls.crt' -noout -fingerprint -sha256)"
stop_nginx

# Refusals. Each: the login fails, and the module's and broker's lines name
# what was wrong.
login_refused() { # description, pattern the module's output must hold
	local d=$1 pat=$2
	$P11 --login --pin 1234 -O >"$T/refused.txt" 2>&1
	if grep -q "Private Key Object" "$T/refused.txt"; then
		not_ok "$d: the login was refused"
	elif grep -Eq "$pat" "$T/refused.txt"; then
		ok "$d: refused, naming it"; grep -Em1 "$pat" "$T/refused.txt" | cut -c1-300 | diag_stream
	else
		not_ok "$d: refused, naming it"; diag "expected /$pat/ in:"; tail -n 5 "$T/refused.txt" | diag_stream
	fi
}
write_broker_conf "tee = az-snp-vtpm" "pcr7 = $PCR7_BAD"
restart_broker
login_refused "a PCR the policy requires differs" "policy_mismatch.*(PCR|pcr) ?7"
write_broker_conf "tee = az-snp-vtpm" "az_console_enabled = yes"
restart_broker
login_refused "the VM's console is not what the policy requires" "policy_mismatch.*console"
write_broker_conf "tee = az-snp-vtpm"
sed -i "s/^measurements = .*/measurements = $OTHER_MEASUREMENT/" "$T/broker.conf"
restart_broker
login_refused "the SNP report's measurement is not allowed" "measurement_not_allowed.*$MEASUREMENT"
write_broker_conf
restart_broker
login_refused "a token without tee = az-snp-vtpm" "tee_unsupported|does not verify 'az-snp-vtpm'"

# Azure TDX (az-tdx-vtpm): the same TPM re-provisioned as a TD's paravisor
# does it (the TDREPORT in the HCL report; the quote service's answer for
# it served on loopback as IMDS's /acc/tdquote, since Azure's service does
# not run here). The broker verifies the TD quote under the simulated
# Intel root and collateral, the TDREPORT against it, then the vTPM quote.
"$AK_TOOL" sim init --tee tdx "$T/tdxsim" >/dev/null || bail "attestkey sim init --tee tdx failed"
mkdir -p "$T/imds/acc"
"$AK_TOOL" sim azure --tcti "$SWTPM_TCTI" --tee tdx --mrtd "$TDX_MRTD" \
	--tdquote-out "$T/imds/acc/tdquote" "$T/tdxsim" >"$T/provision-tdx.log" 2>&1 ||
	{ diag_stream <"$T/provision-tdx.log"; bail "attestkey sim azure --tee tdx failed"; }
start_httpfixture imds "$T/imds" --post --require-header "Metadata: true"
MODULE_LINES="tcti = $SWTPM_TCTI
azure_imds_url = $FIXTURE_URL"
BROKER_TDX_ROOTS="$T/tdxsim/root_ca.pem"
write_broker_conf "tee = az-tdx-vtpm" "pcr0 = $PCR0"
restart_broker
$P11 --login --pin 1234 -O >"$T/objects-tdx.txt" 2>&1
check "pkcs11-tool logs in on az-tdx-vtpm evidence (TD quote from the quote service)" \
	grep -q "Private Key Object" "$T/objects-tdx.txt"
check "the broker audited the release with the TD quote's MRTD and TCB status" bash -c "
	grep '\"event\": *\"release\"' '$T/audit.jsonl' | tail -n 1 |
	jq -e '.tee == \"az-tdx-vtpm\" and .mrtd == \"$TDX_MRTD\" and .tcb_status == \"UpToDate\"'"
check "the TD quote came from the quote service, once" test "$(fixture_fetches '^POST /acc/tdquote 200')" = 1
sed -i "s/^mrtd = .*/mrtd = $OTHER_MRTD/" "$T/broker.conf"
restart_broker
login_refused "az-tdx-vtpm: the TD's MRTD is not allowed" "measurement_not_allowed.*$TDX_MRTD"

stop_swtpm
login_refused "no TPM at the TCTI" "Azure vTPM: TCTI .swtpm:host=127.0.0.1,port=$SWTPM_PORT.: no TPM there"
finish
