#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every SEV-SNP vector of ../shared/testvectors/snp reaches the verdict its
# README states through `attestkey snp verify --json`, with AMD's roots as
# installed (data/amd); then mutations: each field policy reads flipped in a
# signed report, signatures truncated, lengths wrong, chains wrong; and a
# policy refusal for each policy key with reports of the simulated chip.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snp-lib.sh"

# No network: every fetch would go to a closed port, none is needed here.
V=(--kds http://127.0.0.1:9 --cache "$T/nocache" --offline)
R=(--roots "$AMD/ark-milan.pem" --roots "$AMD/ark-genoa.pem" --roots "$AMD/ark-turin.pem")
printf '[token t]\nmeasurements = any\n' >"$T/any.ini"
printf '[token t]\nmeasurements = any\nallow_debug = true\n' >"$T/debug.ini"

# ---- the vectors -----------------------------------------------------------
VI="$SNPV/milan-v2-virtee"
verdict virtee accept ok "${V[@]}" --vcek "$VI/vcek.der" "$VI/report.bin"
json virtee "Milan, VCEK, version 2, from the file" \
	'.product == "Milan" and .signer == "VCEK" and .report_version == 2 and .chain.source == "file" and .chain.root == "ARK-Milan"'
json virtee "measurement and reported_tcb decoded" \
	'.measurement == "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f" and .reported_tcb.bootloader == 3 and .reported_tcb.snp == 8 and .reported_tcb.microcode == 115'
json virtee "product from the VCEK's productName (no CPUID in v2)" '.certificate.product_name == "Milan-B0"'
verdict virtee-hex accept ok "${V[@]}" --vcek "$VI/vcek.der" "$VI/report.hex"
verdict virtee-policy accept ok "${V[@]}" --vcek "$VI/vcek.der" --policy-ini "$T/any.ini" --token t "$VI/report.bin"
json virtee-policy "every policy check listed, all passed" \
	'(.policy_checks | length) >= 5 and all(.policy_checks[]; .pass)'
verdict virtee-report-data accept ok "${V[@]}" --vcek "$VI/vcek.der" --report-data \
	d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd \
	"$VI/report.bin"
verdict virtee-other-report-data refuse binding_mismatch "${V[@]}" --vcek "$VI/vcek.der" \
	--report-data "$(printf '00%.0s' $(seq 64))" "$VI/report.bin"

G="$SNPV/milan-v2-go-sev-guest"
# Without a policy file the default policy applies (any measurement): the
# signature verifies, and the debug guest is refused, as the README says.
verdict gsg-signature refuse debug_not_allowed "${V[@]}" --vcek "$G/vcek.der" "$G/report.bin"
json gsg-signature "the chain and signature verified before the debug check" \
	'.signer == "VCEK" and (.policy_checks[] | select(.check == "debug") | .pass == false)'

verdict gsg-debug refuse debug_not_allowed "${V[@]}" --vcek "$G/vcek.der" --policy-ini "$T/any.ini" --token t "$G/report.bin"
json gsg-debug "the debug check failed, guest policy 0xb0000" \
	'.guest_policy == "0xb0000" and (.policy_checks[] | select(.check == "debug") | .pass == false)'
verdict gsg-allow-debug accept ok "${V[@]}" --vcek "$G/vcek.der" --policy-ini "$T/debug.ini" --token t "$G/report.bin"
verdict virtee-with-gsg-vcek refuse bad_signature "${V[@]}" --vcek "$G/vcek.der" "$VI/report.bin"
json virtee-with-gsg-vcek "the chain itself verified" '.chain.verified == true'

GE="$SNPV/genoa-v3-trustee"
verdict genoa accept ok "${V[@]}" --vcek "$GE/vcek.der" "$GE/report.bin"
json genoa "Genoa from CPUID (family 0x19 model 0xA0), version 3, ARK-Genoa" \
	'.product == "Genoa" and .report_version == 3 and .chain.root == "ARK-Genoa" and .platform_info == "0x25"'
verdict genoa-milan-roots refuse untrusted_chain "${V[@]}" --roots "$AMD/ark-milan.pem" --ask "$AMD/ask-milan.pem" \
	--vcek "$GE/vcek.der" "$GE/report.bin"
verdict genoa-explicit-roots accept ok "${V[@]}" --roots "$AMD/ark-genoa.pem" --ask "$AMD/ask-genoa.pem" \
	--vcek "$GE/vcek.der" "$GE/report.bin"

# Turin: a VCEK and no report. A version 3 report with Turin's CPUID, this
# chip id and this TCB (unsigned: the signature is the one check to fail)
# shows the Turin certificate parsed and chained to ARK-Turin.
TU="$SNPV/turin-vcek-only-virtee"
head -c 1184 /dev/zero >"$T/turin.bin"
patch "$T/turin.bin" 0 03000000          # VERSION 3
patch "$T/turin.bin" 0x34 01000000       # SIGNATURE_ALGO ECDSA P-384
patch "$T/turin.bin" 0x187 09            # REPORTED_TCB: Turin layout, ucode 9
patch "$T/turin.bin" 0x188 1a02          # CPUID family 1Ah model 02h: Turin
patch "$T/turin.bin" 0x1a0 1e550a8ee5cf9f4d  # CHIP_ID: the 8-byte hwID
verdict turin refuse bad_signature "${V[@]}" --vcek "$TU/vcek.der" "$T/turin.bin"
json turin "Turin VCEK: fmcSPL, 8-byte hwID, chains to ARK-Turin" \
	'.product == "Turin" and .chain.verified and .chain.root == "ARK-Turin" and .certificate.fmc_spl == 0 and .certificate.hwid == "1e550a8ee5cf9f4d" and .certificate.ucode_spl == 9 and .certificate.product_name == "Turin"'
json turin "reported_tcb in Turin's layout (fmc first)" '.reported_tcb.fmc == 0 and .reported_tcb.microcode == 9'
verdict turin-milan-roots refuse untrusted_chain "${V[@]}" --roots "$AMD/ark-milan.pem" --ask "$AMD/ask-milan.pem" \
	--vcek "$TU/vcek.der" "$T/turin.bin"
verdict turin-vcek-genoa-report refuse untrusted_chain "${V[@]}" --vcek "$TU/vcek.der" "$GE/report.bin"
json turin-vcek-genoa-report "CPUID says Genoa, the VCEK says Turin: refused before the signature" \
	'.message | test("is Genoa but the VCEK is for .Turin")'

N="$SNPV/negative-vcek-trustee"
for f in vcek-badsig-hwid-raw64 vcek-badsig-hwid-octetstring; do
	verdict "$f" refuse untrusted_chain "${V[@]}" "${R[@]}" --vcek "$N/$f.der" "$VI/report.bin"
	json "$f" "hwID parsed (00 01 02 ... 3f)" '.certificate.hwid == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"'
done
json vcek-badsig-hwid-raw64 "two-byte ucodeSPL INTEGER 02 02 00 A9 = 169" '.certificate.ucode_spl == 169'

# ---- mutations of a signed report ------------------------------------------
# Each field the policy (or the binding) reads, flipped: the signature fails.
for f in version:0x0 guest_svn:0x4 policy:0x8 family_id:0x10 image_id:0x20 vmpl:0x30 \
	platform_info:0x40 key_info_author:0x48 report_data:0x50 measurement:0x90 host_data:0xc0 \
	id_key_digest:0xe0 author_key_digest:0x110 reported_tcb:0x180 chip_id:0x1a0; do
	name=${f%%:*} off=${f#*:}
	cp "$VI/report.bin" "$T/m-$name.bin"
	flip "$T/m-$name.bin" "$off"
	verdict "flip-$name" refuse bad_signature "${V[@]}" --vcek "$VI/vcek.der" "$T/m-$name.bin"
done
# versions: 2, 3 and 5 are read; others refused by name
cp "$VI/report.bin" "$T/v4.bin"; patch "$T/v4.bin" 0 04000000
verdict version-4 refuse evidence_malformed "${V[@]}" --vcek "$VI/vcek.der" "$T/v4.bin"
check "version 4: the message says which versions are read" grep -q "versions 2, 3 and 5" "$T/version-4.json"
cp "$VI/report.bin" "$T/v6.bin"; patch "$T/v6.bin" 0 06000000
verdict version-6 refuse evidence_malformed "${V[@]}" --vcek "$VI/vcek.der" "$T/v6.bin"
cp "$VI/report.bin" "$T/v1.bin"; patch "$T/v1.bin" 0 01000000
verdict version-1 refuse evidence_malformed "${V[@]}" --vcek "$VI/vcek.der" "$T/v1.bin"
cp "$VI/report.bin" "$T/v5.bin"; patch "$T/v5.bin" 0 05000000
verdict version-5-unsigned refuse bad_signature "${V[@]}" --vcek "$VI/vcek.der" "$T/v5.bin"
cp "$VI/report.bin" "$T/vlek.bin"; patch "$T/vlek.bin" 0x48 04000000
verdict vlek-flag refuse bad_signature "${V[@]}" --vcek "$VI/vcek.der" "$T/vlek.bin"
json vlek-flag "a VLEK-signed report is named VLEK" '.signer == "VLEK" and (.message | test("VLEK"))'
json vlek-flag "and never called VCEK" '(.message | test("VCEK")) | not'

# signatures and lengths
cp "$VI/report.bin" "$T/sig-r0.bin"; patch "$T/sig-r0.bin" 0x2a0 "$(printf '00%.0s' $(seq 72))"
verdict signature-r-zero refuse bad_signature "${V[@]}" --vcek "$VI/vcek.der" "$T/sig-r0.bin"
cp "$VI/report.bin" "$T/sig-s.bin"; flip "$T/sig-s.bin" 0x2e8
verdict signature-s-flipped refuse bad_signature "${V[@]}" --vcek "$VI/vcek.der" "$T/sig-s.bin"
head -c 1183 "$VI/report.bin" >"$T/short.bin"
verdict truncated refuse evidence_malformed "${V[@]}" --vcek "$VI/vcek.der" "$T/short.bin"
head -c 688 "$VI/report.bin" >"$T/nosig.bin"
verdict signature-cut-off refuse evidence_malformed "${V[@]}" --vcek "$VI/vcek.der" "$T/nosig.bin"
{ cat "$VI/report.bin"; printf '\0'; } >"$T/long.bin"
verdict one-byte-too-long refuse evidence_malformed "${V[@]}" --vcek "$VI/vcek.der" "$T/long.bin"
: >"$T/empty.bin"
"$AK_TOOL" snp verify --json "${V[@]}" --vcek "$VI/vcek.der" "$T/empty.bin" >"$T/empty.json" 2>&1
check "an empty report is refused (exit 1)" test $? = 1
head -c 100 "$VI/vcek.der" >"$T/cut.der"
verdict vcek-truncated refuse evidence_malformed "${V[@]}" --vcek "$T/cut.der" "$VI/report.bin"

# chains
verdict milan-genoa-roots refuse untrusted_chain "${V[@]}" --roots "$AMD/ark-genoa.pem" --ask "$AMD/ask-genoa.pem" \
	--vcek "$VI/vcek.der" "$VI/report.bin"
verdict milan-no-ask refuse untrusted_chain "${V[@]}" --roots "$AMD/ark-milan.pem" --vcek "$VI/vcek.der" "$VI/report.bin"
json milan-no-ask "no ASK and no cert_chain (offline, empty cache): said so" '.message | test("cert_chain")'
verdict milan-ask-as-vlek-signer refuse untrusted_chain "${V[@]}" --roots "$AMD/ark-milan.pem" --ask "$AMD/asvk-milan.pem" \
	--vcek "$VI/vcek.der" "$VI/report.bin"
verdict not-yet-valid refuse untrusted_chain "${V[@]}" --time 1000000000 --vcek "$VI/vcek.der" "$VI/report.bin"
verdict expired refuse untrusted_chain "${V[@]}" --time 1900000000 --vcek "$G/vcek.der" "$G/report.bin"
json expired "the message says the certificate expired" '.message | test("expired")' 
"$AK_TOOL" snp verify "${V[@]}" --roots "$VI/vcek.der" "$VI/report.bin" >/dev/null 2>&1
check "a roots file that is not PEM: exit 1" test $? = 1
"$AK_TOOL" snp verify --bogus "$VI/report.bin" >/dev/null 2>&1
check "usage error: exit 2" test $? = 2
"$AK_TOOL" snp verify --offline "$VI/report.bin" >/dev/null 2>&1
check "--offline without --cache: exit 2" test $? = 2
"$AK_TOOL" snp verify --crl sometimes "$VI/report.bin" >/dev/null 2>&1
check "--crl with an unknown mode: exit 2" test $? = 2
"$AK_TOOL" snp verify "${V[@]}" --vcek "$VI/vcek.der" "$VI/report.bin" >"$T/readable.out" 2>&1
check "readable output names product, signer, measurement and TCB" \
	grep -q "^ok: report version 2 (Milan).*signed by a VCEK (file) that chains to ARK-Milan" "$T/readable.out"
check "readable output: reported_tcb decoded" grep -q "^reported_tcb .*bootloader 3, tee 0, snp 8, microcode 115" "$T/readable.out"
ATTESTKEY_AMD_DIR="$T/nowhere" "$AK_TOOL" snp verify "${V[@]}" --vcek "$VI/vcek.der" "$VI/report.bin" >"$T/noroots.out" 2>&1
check "no --roots and no installed roots: exit 1, said so" test $? = 1
check "no installed roots: the directory is named" grep -q "$T/nowhere" "$T/noroots.out"

# ---- policy refusals, one per key, with reports of the simulated chip -----
"$AK_TOOL" sim init "$T/sim" >/dev/null || bail "sim init failed"
RD=$(printf '00%.0s' $(seq 64))
M=$(printf 'a%.0s' $(seq 96))
sim() { "$AK_TOOL" sim report --dir "$T/sim" --report-data "$RD" --measurement "$M" "$@"; }
sim -o "$T/sim-ok.json" --policy 0x30000 || bail "sim report failed"
sim -o "$T/sim-debug.json" --policy 0xb0000
sim -o "$T/sim-vmpl1.json" --policy 0x30000 --vmpl 1
sim -o "$T/sim-ma.json" --policy 0x70000
sim -o "$T/sim-nosmt.json" --policy 0x20000
S=(--roots "$T/sim/ark.pem" "${V[@]}")
# policy NAME REASON FIELD EVIDENCE INI-LINES...: refused by REASON, the
# message and the failed check name FIELD
policy() {
	local name=$1 reason=$2 field=$3 ev=$4
	shift 4
	printf '[token t]\n' >"$T/$name.ini"
	printf '%s\n' "$@" >>"$T/$name.ini"
	verdict "policy-$name" refuse "$reason" "${S[@]}" --policy-ini "$T/$name.ini" --token t "$ev"
	json "policy-$name" "the failed check is $field, with expected and actual" \
		"[.policy_checks[] | select(.pass == false)][0] | .check == \"$field\" and (.expected | length > 0) and (.actual | length > 0)"
}
verdict sim-accept accept ok "${S[@]}" --policy-ini "$T/any.ini" --token t "$T/sim-ok.json"
json sim-accept "from the certificate table, Milan, the sim root" '.chain.source == "table" and .product == "Milan" and .chain.root == "ARK-Milan-SIM"'
Z48=$(printf '00%.0s' $(seq 48)); X48=$(printf '11%.0s' $(seq 48)); X16=$(printf '22%.0s' $(seq 16))
policy measurement measurement_not_allowed measurement "$T/sim-ok.json" "measurements = $(printf 'b%.0s' $(seq 96))"
policy debug debug_not_allowed debug "$T/sim-debug.json" "measurements = any"
policy guest-svn guest_svn_too_low min_guest_svn "$T/sim-ok.json" "measurements = any" "min_guest_svn = 99"
policy vmpl vmpl_not_allowed vmpl "$T/sim-vmpl1.json" "measurements = any"
policy tcb tcb_too_low min_tcb_snp "$T/sim-ok.json" "measurements = any" "min_tcb_snp = 250"
policy host-data policy_mismatch host_data "$T/sim-ok.json" "measurements = any" "host_data = $(printf '33%.0s' $(seq 32))"
policy id-key policy_mismatch id_key_digest "$T/sim-ok.json" "measurements = any" "id_key_digest = $X48"
policy author-key policy_mismatch author_key_digest "$T/sim-ok.json" "measurements = any" "author_key_digest = $X48"
policy family policy_mismatch family_id "$T/sim-ok.json" "measurements = any" "family_id = $X16"
policy image policy_mismatch image_id "$T/sim-ok.json" "measurements = any" "image_id = $X16"
policy smt policy_mismatch allow_smt "$T/sim-ok.json" "measurements = any" "allow_smt = false"
policy migration-agent policy_mismatch allow_migration_agent "$T/sim-ma.json" "measurements = any"
policy pi-require policy_mismatch platform_info_require "$T/sim-ok.json" "measurements = any" "platform_info_require = tsme_en"
policy pi-forbid policy_mismatch platform_info_forbid "$T/sim-ok.json" "measurements = any" "platform_info_forbid = 0x1"
json policy-pi-forbid "PLATFORM_INFO named by bit" '.message | test("smt_en")'
json policy-host-data "the message names HOST_DATA, expected and actual" '.message | test("HOST_DATA 0{64} differs from host_data 3{64}")'
# the same keys, satisfied
printf '[token t]\nmeasurements = %s\nid_key_digest = %s\nauthor_key_digest = %s\nfamily_id = %s\nimage_id = %s\nallow_smt = false\nallow_migration_agent = false\nplatform_info_forbid = tsme_en, ecc_en\nplatform_info_require = smt_en\nhost_data = %s\n' \
	"$M" "$Z48" "$Z48" "$(printf '00%.0s' $(seq 16))" "$(printf '00%.0s' $(seq 16))" "$(printf '00%.0s' $(seq 32))" >"$T/all.ini"
verdict policy-all-hold accept ok "${S[@]}" --policy-ini "$T/all.ini" --token t "$T/sim-nosmt.json"
json policy-all-hold "every key listed as a passed check" \
	'([.policy_checks[].check] | contains(["id_key_digest","author_key_digest","family_id","image_id","allow_smt","allow_migration_agent","platform_info_require","platform_info_forbid","host_data"])) and all(.policy_checks[]; .pass)'
printf '[token t]\nmeasurements = any\nallow_migration_agent = true\n' >"$T/ma.ini"
verdict policy-ma-allowed accept ok "${S[@]}" --policy-ini "$T/ma.ini" --token t "$T/sim-ma.json"
printf '[token t]\nplatform_info_forbid = warp_drive\n' >"$T/bad.ini"
"$AK_TOOL" snp verify "${S[@]}" --policy-ini "$T/bad.ini" --token t "$T/sim-ok.json" >"$T/bad.out" 2>&1
check "an unknown platform_info name is refused, naming the key" grep -q "platform_info_forbid: 'warp_drive'" "$T/bad.out"
finish
