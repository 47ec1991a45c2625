#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The guest collectors (issue 9 item 1) against the fake kernel
# (fakekernel.so, LD_PRELOADed): configfs-tsm, /dev/sev-guest and
# /dev/tdx_guest, each success and each error path, the AUTO order and its
# one refusal line, `attestkey evidence`, and a login through configfs-tsm
# with the real broker (the fake kernel signs with the simulated SNP chip,
# whose ARK the broker trusts).
. "$(dirname "$0")/lib.sh"
need jq basenc

SHIM="$top_builddir/tests/integration/.libs/fakekernel.so"
[ -f "$SHIM" ] || bail "$SHIM not built (make check builds it)"
VECTORS=${ATTESTKEY_VECTORS:-$top_srcdir/tests/data}
TDX_QUOTE="$VECTORS/tdx/v4-spr-go-tdx-guest/quote.dat"
# the sanitizer build: ASan's runtime must come first in the preload list
PRELOAD=$SHIM
if ldd "$SHIM" 2>/dev/null | grep -q libasan; then
	PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so):$SHIM"
	export ASAN_OPTIONS=abort_on_error=1
fi

setup_world
chmod 755 "$T"
mkdir -p "$T/tsm" "$T/dev"
: >"$T/dev/sev-guest"
: >"$T/dev/tdx_guest"
export FAKEKERNEL_TSM_ROOT="$T/tsm" FAKEKERNEL_SEV_DEV="$T/dev/sev-guest" \
	FAKEKERNEL_TDX_DEV="$T/dev/tdx_guest" FAKEKERNEL_SIM_DIR="$T/sim" \
	FAKEKERNEL_MEASUREMENT="$MEASUREMENT" FAKEKERNEL_TDX_QUOTE="$TDX_QUOTE" \
	FAKEKERNEL_TRACE="$T/trace"
RD=$(printf '5a%.0s' $(seq 64))

# guest_conf TEE [EXTRA LINES]: a module configuration naming the fake nodes
guest_conf() {
	local tee=$1
	shift
	cat >"$T/guest.conf" <<EOC
[module]
brokers = https://127.0.0.1:$(cat "$T/broker.port" 2>/dev/null || echo 9)
ca = $T/pki/broker-ca.pem
tee = $tee
tsm_root = $T/tsm
sev_guest_device = $T/dev/sev-guest
tdx_guest_device = $T/dev/tdx_guest
cache_dir = $T/cache
EOC
	for l in "$@"; do echo "$l" >>"$T/guest.conf"; done
	printf '[token web]\n' >>"$T/guest.conf"
}
# ev NAME [ARGS]: attestkey evidence --json under the fake kernel; stdout in
# $T/NAME.json, stderr in $T/NAME.err, the kernel's trace in $T/NAME.trace
ev() {
	local name=$1 rc
	shift
	rm -f "$T/trace"
	LD_PRELOAD="$PRELOAD" "$AK_TOOL" evidence --conf "$T/guest.conf" --report-data "$RD" \
		--json "$@" >"$T/$name.json" 2>"$T/$name.err"
	rc=$?
	cp "$T/trace" "$T/$name.trace" 2>/dev/null || : >"$T/$name.trace"
	diag_stream <"$T/$name.err"
	return $rc
}
b64d() {
	local s
	s=$(cat)
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | basenc --base64url -d
}
member() { jq -r ".evidence.$2 // empty" "$T/$1.json" | b64d >"$T/$1.$2"; }
# verified NAME: the evidence's report verifies under the sim ARK and
# carries our report data
verified() {
	local name=$1
	shift
	jq -c .evidence "$T/$name.json" >"$T/$name.evidence" &&
	"$AK_TOOL" snp verify --roots "$T/sim/ark.pem" --report-data "$RD" "$@" "$T/$name.evidence"
}
tsm_empty() { [ -z "$(ls -A "$T/tsm")" ]; }
lines() { grep -c . "$1"; }

# ---- configfs-tsm ---------------------------------------------------------
guest_conf configfs-tsm
check "configfs-tsm: evidence collected" ev tsm
check "configfs-tsm: tee snp, interface configfs-tsm" \
	test "$(jq -r '.tee + " " + .interface' "$T/tsm.json")" = "snp configfs-tsm"
member tsm report
check "configfs-tsm: the report is 1184 bytes" test "$(stat -c %s "$T/tsm.report")" = 1184
check "configfs-tsm: the report verifies, signed over our 64-byte inblob" verified tsm
check "configfs-tsm: the certificate table came from auxblob" \
	jq -e '.evidence.certs | length > 1000' "$T/tsm.json"
check "configfs-tsm: mkdir, provider/generation, privlevel, inblob, outblob, rmdir in order" \
	test "$(grep -E '^(mkdir|write|read|rmdir)' "$T/tsm.trace" | tr '\n' '|')" = \
	"mkdir|write privlevel|write inblob|read outblob (inblob 64 bytes)|rmdir|"
check "configfs-tsm: the report directory is removed" tsm_empty
# the readable form names the TEE, the interface and the main fields
LD_PRELOAD="$PRELOAD" "$AK_TOOL" evidence --conf "$T/guest.conf" --report-data "$RD" >"$T/tsm.txt" 2>&1
check "attestkey evidence (text): tee, interface, measurement, report data" \
	sh -c "grep -q '^tee: *snp$' '$T/tsm.txt' && grep -q '^interface: *configfs-tsm$' '$T/tsm.txt' &&
		grep -q '^measurement: *$MEASUREMENT$' '$T/tsm.txt' && grep -q '^report_data: *$RD$' '$T/tsm.txt'"
check "attestkey evidence (text): the certificates the host supplied" \
	grep -q "^certs: .* 3 entries: VCEK ASK ARK" "$T/tsm.txt"
FAKEKERNEL_FAULT=no-auxblob LD_PRELOAD="$PRELOAD" "$AK_TOOL" evidence --conf "$T/guest.conf" >"$T/noaux.txt" 2>&1
check "attestkey evidence (text): no certificates: the broker fetches from KDS" \
	grep -q "^certs: *none (the broker fetches the VCEK from AMD KDS)" "$T/noaux.txt"

guest_conf configfs-tsm "privlevel = 2"
check "configfs-tsm: privlevel = 2 is written" ev tsm-vmpl
check "configfs-tsm: the report is for VMPL 2" grep -q "report at privlevel 2" "$T/tsm-vmpl.trace"
guest_conf configfs-tsm

FAKEKERNEL_FAULT=no-auxblob check "configfs-tsm without auxblob: evidence collected" ev tsm-noaux
check "configfs-tsm without auxblob: no \"certs\" (the broker fetches from KDS)" \
	jq -e '.evidence | has("certs") | not' "$T/tsm-noaux.json"

FAKEKERNEL_FAULT=race-once check "generation race once: retried and collected" ev race1
check "generation race once: outblob read twice" \
	test "$(grep -c '^read outblob' "$T/race1.trace")" = 2
check "generation race once: the report verifies" verified race1
FAKEKERNEL_FAULT=race-always refuse "generation race always: refused" ev race
check "generation race always: says another process writes" \
	grep -q "generation moved from .* in each of 3 attempts: another process writes" "$T/race.err"
check "generation race always: bounded (3 requests)" \
	test "$(grep -c '^read outblob' "$T/race.trace")" = 3
check "generation race always: the report directory is removed" tsm_empty

FAKEKERNEL_FAULT=short-outblob refuse "short outblob: refused" ev short
check "short outblob: named with its length" \
	grep -q "short outblob: 1000 bytes, an SNP report is 1184" "$T/short.err"
check "short outblob: the report directory is removed" tsm_empty
FAKEKERNEL_FAULT=oversize-outblob refuse "oversize outblob: refused" ev over
check "oversize outblob: named with its length" \
	grep -q "oversize outblob: 1248 bytes, an SNP report is 1184" "$T/over.err"

FAKEKERNEL_PROVIDER=foo_guest refuse "wrong provider: refused" ev prov
check "wrong provider: named" grep -q "wrong provider 'foo_guest'" "$T/prov.err"
check "wrong provider: the report directory is removed" tsm_empty

# a TDX guest: the kernel's outblob is a real quote from the test vectors
if [ -f "$TDX_QUOTE" ]; then
	FAKEKERNEL_PROVIDER=tdx_guest check "configfs-tsm tdx_guest: evidence collected" ev tdx
	check "configfs-tsm tdx_guest: tee tdx" test "$(jq -r .tee "$T/tdx.json")" = tdx
	member tdx quote
	check "configfs-tsm tdx_guest: {\"quote\"} is the kernel's outblob" cmp "$T/tdx.quote" "$TDX_QUOTE"
	check "configfs-tsm tdx_guest: no privlevel written" sh -c "! grep -q privlevel '$T/tdx.trace'"
	FAKEKERNEL_PROVIDER=tdx_guest FAKEKERNEL_FAULT=short-outblob refuse "tdx_guest short outblob: refused" ev tdxshort
	check "tdx_guest short outblob: named" grep -q "short outblob: 100 bytes, a TDX quote is at least" "$T/tdxshort.err"
	rm -f "$T/trace"
	FAKEKERNEL_PROVIDER=tdx_guest LD_PRELOAD="$PRELOAD" "$AK_TOOL" evidence --conf "$T/guest.conf" >"$T/tdx.txt" 2>&1
	check "attestkey evidence (text): TDX quote, MRTD" grep -q "^mrtd: " "$T/tdx.txt"
else
	for t in "tdx_guest: evidence" "tdx_guest: tee" "tdx_guest: quote" "tdx_guest: privlevel" \
		"tdx_guest short: refused" "tdx_guest short: named" "evidence text: TDX"; do
		skip "$t" "no TDX vector at $TDX_QUOTE"
	done
fi

guest_conf configfs-tsm "tsm_root = $T/nowhere"
refuse "configfs-tsm absent: refused" ev absent
check "configfs-tsm absent: says absent" grep -q "configfs-tsm $T/nowhere: absent" "$T/absent.err"

# ---- /dev/sev-guest ---------------------------------------------------------
guest_conf sev-guest
check "sev-guest: evidence collected" ev sev
check "sev-guest: tee snp, interface sev-guest" \
	test "$(jq -r '.tee + " " + .interface' "$T/sev.json")" = "snp sev-guest"
check "sev-guest: the report verifies" verified sev
check "sev-guest: SNP_GET_EXT_REPORT once, with certificates" \
	test "$(grep -c 'SNP_GET_EXT_REPORT' "$T/sev.trace")" = 1
check "sev-guest: the certificate table is in the evidence" \
	jq -e '.evidence.certs | length > 1000' "$T/sev.json"
FAKEKERNEL_SEV_CERT_PAGES=6 check "sev-guest: buffer too small (6 pages needed): grown" ev grow
check "sev-guest: asked with 16384, then with the 24576 bytes the kernel named" \
	test "$(grep -o 'certs_len [0-9]*' "$T/grow.trace" | tr '\n' ' ')" = "certs_len 16384 certs_len 24576 "
check "sev-guest grown: the report verifies" verified grow
FAKEKERNEL_SEV_CERT_PAGES=6 FAKEKERNEL_FAULT=max-16k check \
	"sev-guest: the host wants more than the kernel allows (EINVAL): SNP_GET_REPORT" ev toobig
check "sev-guest beyond the kernel's limit: the report alone" \
	sh -c "grep -q 'ioctl SNP_GET_REPORT' '$T/toobig.trace' && jq -e '.evidence | has(\"certs\") | not' '$T/toobig.json'"
FAKEKERNEL_FAULT=busy-once check "sev-guest: host busy once: asked again" ev busy
check "sev-guest busy: SNP_GET_EXT_REPORT twice, with certificates" \
	test "$(grep -c 'SNP_GET_EXT_REPORT' "$T/busy.trace")" = 2 -a "$(jq -r '.evidence | has("certs")' "$T/busy.json")" = true
FAKEKERNEL_FAULT=ext-enotty check "sev-guest: SNP_GET_EXT_REPORT unknown (ENOTTY): SNP_GET_REPORT" ev plain
check "sev-guest fallback: SNP_GET_REPORT was used" grep -q "ioctl SNP_GET_REPORT" "$T/plain.trace"
check "sev-guest fallback: no \"certs\"" jq -e '.evidence | has("certs") | not' "$T/plain.json"
check "sev-guest fallback: the report verifies (with the VCEK from elsewhere)" \
	verified plain --ask "$T/sim/ask.pem" --vcek "$T/sim/vcek.der"
FAKEKERNEL_FAULT=ext-eio,report-eio refuse "sev-guest: both requests fail (EIO): refused" ev sevfail
check "sev-guest failure: names both requests and the firmware error" \
	grep -q "SNP_GET_REPORT: Input/output error (fw_error 0x16.*after SNP_GET_EXT_REPORT: Input/output error" "$T/sevfail.err"
FAKEKERNEL_FAULT=bad-status refuse "sev-guest: firmware status error: refused" ev status
check "sev-guest firmware status: named" grep -q "the firmware answered status 0x16" "$T/status.err"

# ---- /dev/tdx_guest ---------------------------------------------------------
guest_conf tdx-guest
refuse "tdx-guest: a TD report is no quote: refused" ev tdxdev
check "tdx-guest: TDX_CMD_GET_REPORT0 was asked" grep -q "TDX_CMD_GET_REPORT0" "$T/tdxdev.trace"
check "tdx-guest: says a quote needs configfs-tsm or a QGS" \
	grep -q "a TDX quote needs configfs-tsm .* or a Quote Generation Service" "$T/tdxdev.err"
FAKEKERNEL_FAULT=tdx-eio refuse "tdx-guest: TDX_CMD_GET_REPORT0 fails: refused" ev tdxeio
check "tdx-guest: the ioctl error is named" grep -q "TDX_CMD_GET_REPORT0: Input/output error" "$T/tdxeio.err"

# ---- AUTO -------------------------------------------------------------------
guest_conf auto
check "auto: everything present: configfs-tsm first" ev auto1
check "auto: interface configfs-tsm" test "$(jq -r .interface "$T/auto1.json")" = configfs-tsm
guest_conf auto "tsm_root = $T/nowhere"
check "auto: no configfs-tsm: /dev/sev-guest next" ev auto2
check "auto: interface sev-guest" test "$(jq -r .interface "$T/auto2.json")" = sev-guest
guest_conf auto "tsm_root = $T/nowhere" "sev_guest_device = $T/dev/none"
refuse "auto: only /dev/tdx_guest: refused (no quote)" ev auto3
check "auto: one line names each interface and what was missing" \
	grep -q "no TEE interface answered (tried configfs-tsm $T/nowhere: absent; sev-guest $T/dev/none: absent; tdx-guest $T/dev/tdx_guest: a TD report, but no quote" "$T/auto3.err"
check "auto: exactly one log line" test "$(lines "$T/auto3.err")" = 1
guest_conf auto "sev_guest_device = $T/dev/none" "tdx_guest_device = $T/dev/none"
FAKEKERNEL_PROVIDER=foo_guest refuse "auto: wrong provider, no devices: refused" ev auto5
check "auto: the line names the wrong provider and the absent devices" \
	grep -q "configfs-tsm $T/tsm: wrong provider 'foo_guest'.*; sev-guest $T/dev/none: absent; tdx-guest $T/dev/none: absent)" "$T/auto5.err"
check "auto: exactly one log line" test "$(lines "$T/auto5.err")" = 1

# permission denied, the real way: nodes the user may not use
if [ "$(id -u)" = 0 ] && setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null &&
	setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$AK_TOOL"; then
	mkdir -p "$T/rootonly"
	chmod 555 "$T/rootonly"
	chmod 000 "$T/dev/sev-guest"
	guest_conf auto "tsm_root = $T/rootonly" "tdx_guest_device = $T/dev/none"
	chmod 644 "$T/guest.conf"
	rm -f "$T/trace"
	setpriv --reuid=nobody --regid=nogroup --clear-groups env LD_PRELOAD="$PRELOAD" \
		FAKEKERNEL_TSM_ROOT="$T/rootonly" "$AK_TOOL" evidence --conf "$T/guest.conf" \
		>"$T/perm.out" 2>"$T/perm.err"
	check "permission denied: refused" test $? = 1
	diag_stream <"$T/perm.err"
	check "permission denied: the line names both interfaces the user may not use" \
		grep -q "configfs-tsm $T/rootonly: permission denied; sev-guest $T/dev/sev-guest: permission denied; tdx-guest $T/dev/none: absent" "$T/perm.err"
	check "permission denied: exactly one log line" test "$(lines "$T/perm.err")" = 1
	chmod 644 "$T/dev/sev-guest"
else
	skip "permission denied" "needs root and setpriv to run as nobody"
	skip "permission denied: message" "needs root"
	skip "permission denied: one line" "needs root"
fi

# ---- attestkey evidence: usage --------------------------------------------
"$AK_TOOL" evidence --tee nonsense >/dev/null 2>"$T/usage.err"
check "attestkey evidence --tee nonsense: usage error (2)" test $? = 2
check "attestkey evidence --tee nonsense: says what is allowed" grep -q "use auto, configfs-tsm" "$T/usage.err"
"$AK_TOOL" evidence --report-data xyz >/dev/null 2>&1
check "attestkey evidence --report-data xyz: usage error (2)" test $? = 2
# no configuration at all: tee = auto on the real nodes (absent on this machine)
if [ ! -e /sys/kernel/config/tsm/report ] && [ ! -e /dev/sev-guest ] && [ ! -e /dev/tdx_guest ] &&
	! [ -e "$("$AK_TOOL" evidence --help | sed -n 's|^ *\(/.*/attestkey\.conf\) when it exists.*|\1|p')" ]; then
	env -u ATTESTKEY_CONF "$AK_TOOL" evidence >"$T/noconf.out" 2>"$T/noconf.err"
	check "attestkey evidence without a configuration: exit 1 on a machine that is no CVM" test $? = 1
	check "attestkey evidence without a configuration: the default nodes, one line" \
		sh -c "grep -q 'no TEE interface answered (tried configfs-tsm /sys/kernel/config/tsm/report: absent; sev-guest /dev/sev-guest: absent; tdx-guest /dev/tdx_guest: absent)' '$T/noconf.err' && test \$(grep -c . '$T/noconf.err') = 1"
else
	skip "attestkey evidence without a configuration" "this machine has a guest node or an installed configuration"
	skip "attestkey evidence without a configuration: message" "idem"
fi
guest_conf sim "[sim]" "dir = $T/sim"
check "attestkey evidence --tee sim: the simulated chip" ev simtee --tee sim
check "attestkey evidence --tee sim: interface sim" test "$(jq -r .interface "$T/simtee.json")" = sim
guest_conf sim "[sim]" "dir = $T/sim"
check "attestkey evidence --tee configfs-tsm overrides tee = sim" ev override --tee configfs-tsm
check "--tee overrides: interface configfs-tsm" test "$(jq -r .interface "$T/override.json")" = configfs-tsm

# ---- end to end: C_Login through configfs-tsm with the real broker ---------
start_broker
guest_conf auto
LD_PRELOAD="$PRELOAD" ATTESTKEY_CONF="$T/guest.conf" "$AK_PROBE" "$AK_MODULE" login 1234 \
	>"$T/login.out" 2>"$T/login.err"
diag_stream <"$T/login.err"
check "login through configfs-tsm (tee = auto): keys released" grep -q "private_keys: [1-9]" "$T/login.out"
check "login: the broker verified SNP evidence" grep -q '"event": *"release"' "$T/audit.jsonl"
guest_conf sev-guest
LD_PRELOAD="$PRELOAD" ATTESTKEY_CONF="$T/guest.conf" "$AK_PROBE" "$AK_MODULE" login 1234 \
	>"$T/sevlogin.out" 2>"$T/sevlogin.err"
diag_stream <"$T/sevlogin.err"
check "login through /dev/sev-guest: keys released" grep -q "private_keys: [1-9]" "$T/sevlogin.out"
guest_conf auto "tsm_root = $T/nowhere" "sev_guest_device = $T/dev/none" "tdx_guest_device = $T/dev/none"
LD_PRELOAD="$PRELOAD" ATTESTKEY_CONF="$T/guest.conf" "$AK_PROBE" "$AK_MODULE" login 1234 \
	>"$T/nologin.out" 2>"$T/nologin.err"
diag_stream <"$T/nologin.err"
check "not a confidential VM: C_Login fails" grep -q "^login: CKR_DEVICE_ERROR" "$T/nologin.out"
check "not a confidential VM: one line names each interface" \
	grep -q "no TEE interface answered (tried configfs-tsm $T/nowhere: absent; sev-guest $T/dev/none: absent; tdx-guest $T/dev/none: absent)" "$T/nologin.err"
check "not a confidential VM: no key held" grep -q "private_keys: 0" "$T/nologin.out"
finish
