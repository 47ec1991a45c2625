#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `attestkey key --store pkcs11:URI` (issue 10, item 4) on a SoftHSMv2 token
# the test makes (its own SOFTHSM2_CONF, hsm-lib.sh): every subcommand and
# refusal (key-cli-lib.sh), the objects the broker's PKCS#11 store reads
# (labels, CKA_ID, sensitive and extractable keys), old versions kept under
# labels no broker token serves, the PIN sources and the URI's refusals,
# and a C_Login through the broker's pkcs11 store signing with the keys the
# CLI made inside the HSM.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/key-cli-lib.sh"
need openssl jq pkcs11-tool
. "$(dirname "$0")/hsm-lib.sh"

"$AK_TOOL" key list --store pkcs11:x >/dev/null 2>"$T/nb.err"
grep -q "not built" "$T/nb.err" && skip_all "attestkey was built without its PKCS#11 store"

setup_world
hsm_setup # token "hsm" with web/tls and web/ec, put there by pkcs11-tool
rm -f "$T/keys/web/"*.key
S="pkcs11:token=hsm;object=web?module-path=$SOFTHSM_SO&pin-source=$T/hsm/pin"
P11="pkcs11-tool --module $SOFTHSM_SO --token-label hsm --login --pin $HSM_PIN"
read_cert() { $P11 --read-object --type cert --label "web/$2" 2>/dev/null | openssl x509 -inform DER; }

# SoftHSM 2.6 wraps no Ed25519 key (CKR_KEY_NOT_WRAPPABLE): the broker
# could never release one, so the CLI refuses to make one (below)
STORE_TYPES="rsa2048 rsa3072 rsa4096 p256 p384 p521" store_checks "$S"
usage_checks "$S"
refuse_msg "generate of a type the HSM cannot wrap is refused, naming it" \
	"token 'hsm' cannot wrap ed25519 keys with CKM_AES_KEY_WRAP_PAD.*never release" \
	"$AK_TOOL" key generate --store "$S" --type ed25519 gen-ed25519

# --- the objects, as the broker's store reads them
$P11 --list-objects >"$T/objects.txt" 2>/dev/null
key show --store "$S" gen-p384
id=$(field cka_id)
check "a generated key: one private key object labelled web/gen-p384" \
	test "$(grep -c 'label: *web/gen-p384$' "$T/objects.txt")" = 2
check "... whose CKA_ID is the broker's (show's cka_id)" sh -c "grep -A8 'label: *web/gen-p384$' '$T/objects.txt' | grep -q 'ID: *$id'"
# access LABEL: the Access line of private key object LABEL
access() { awk -v l="$1" '/^Private Key Object/ { p = 1; next } /Object/ { p = 0 }
	p && $1 == "label:" { f = ($2 == l) } f && $1 == "Access:" { sub(/^ +Access: +/, ""); print; exit }' "$T/objects.txt"; }
check "... sensitive and extractable (C_WrapKey), made in the HSM (local)" \
	test "$(access web/gen-p384)" = "sensitive, always sensitive, extractable, local"
check "an imported key is sensitive and extractable (not always sensitive, not local)" \
	test "$(access web/imported)" = "sensitive, extractable"
check "... and private (it needs a login)" \
	sh -c "! pkcs11-tool --module $SOFTHSM_SO --token-label hsm -O 2>/dev/null | grep -q 'Private Key Object'"
check "... with its public key object (an EC private key carries no point)" \
	sh -c "grep -q '^Public Key Object; EC .*384' '$T/objects.txt'"
check "a self-signed certificate is a certificate object with the key's label" \
	sh -c "grep -A3 '^Certificate Object' '$T/objects.txt' | grep -q 'label: *web/selfsigned$'"
check "the rotated key's version 1 is labelled ./web/selfsigned/1 (no broker token serves it)" \
	sh -c "grep -q 'label: *\./web/selfsigned/1$' '$T/objects.txt'"
check "the current version number is a data object of application 'attestkey key'" \
	sh -c "grep -A4 '^Data object' '$T/objects.txt' | grep -q 'attestkey key'"
# keys put there by hand (pkcs11-tool, CKA_ID 01 and 02) are listed and
# served as version 1
key list --store "$S"
check "list: a key imported by pkcs11-tool is version 1" grep -q "^tls 1 rsa2048 [0-9a-f]\{40\} cert$" "$T/key.out"
check "list: ... and one whose public key is only in its certificate" grep -q "^ec 1 p256 [0-9a-f]\{40\} cert$" "$T/key.out"
check "rotate of a hand-made key" key rotate --store "$S" ec
check "... keeps it as version 1" test "$(key show --store "$S" --version 1 ec && field spki_sha256)" = \
	"$(spki_sha256_of_cert "$T/keys/web/ec.crt")"

# --- import: the key enters the HSM once
openssl genpkey -algorithm ed25519 -out "$T/ed.key" 2>/dev/null
refuse_msg "import of an Ed25519 key the HSM cannot wrap is refused" "cannot wrap Ed25519 keys" \
	"$AK_TOOL" key import --store "$S" --key "$T/ed.key" imp-ed
$P11 --list-objects >"$T/objects.txt" 2>/dev/null
check "... and leaves no object behind" sh -c "! grep -q 'web/imp-ed' '$T/objects.txt' && ! grep -q 'web/gen-ed25519' '$T/objects.txt'"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out "$T/p521.key" 2>/dev/null
check "import of a P-521 key" key import --store "$S" --key "$T/p521.key" imp-p521
check "... is the key show describes" test "$(key show --store "$S" imp-p521 && field spki_sha256)" = "$(spki_sha256_of_key "$T/p521.key")"
cat "$T/imp.crt" "$T/other.crt" >"$T/chain.crt"
check "import with a chain keeps the leaf" key import --store "$S" --key "$T/imp.key" --cert "$T/chain.crt" chained
check "... and says so" grep -q "keeps the leaf certificate only" "$T/key.err"

# --- the PIN: pin-source, pin-value, ATTESTKEY_PIN
U="pkcs11:token=hsm;object=web?module-path=$SOFTHSM_SO"
check "ATTESTKEY_PIN gives the PIN" env ATTESTKEY_PIN=$HSM_PIN "$AK_TOOL" key show --store "$U" gen-p256
check "pin-value gives the PIN" key show --store "$U&pin-value=$HSM_PIN" gen-p256
check "... with a warning that ps shows it" grep -q "pin-value puts the PIN in the command line" "$T/key.err"
check "... and the store show prints has it masked" grep -q "^store: .*pin-value=\*\*\*\*$" "$T/key.out"
refuse_msg "no PIN at all is refused, naming the sources" "no user PIN.*pin-source=FILE.*ATTESTKEY_PIN" \
	env -u ATTESTKEY_PIN "$AK_TOOL" key list --store "$U"
refuse_msg "a wrong PIN is refused as such" "C_Login: the PIN is wrong" \
	"$AK_TOOL" key list --store "$U&pin-value=0000"
check "... and the refusal does not print the PIN" sh -c "! grep -q 0000 '$T/refuse.err'"
printf '%s\n' $HSM_PIN >"$T/loose.pin" && chmod 644 "$T/loose.pin"
refuse_msg "a pin-source others may read is refused" "loose.pin.*others may read it" \
	"$AK_TOOL" key list --store "$U&pin-source=$T/loose.pin"
refuse_msg "a missing pin-source is refused" "nowhere.pin.*No such file" \
	"$AK_TOOL" key list --store "$U&pin-source=$T/nowhere.pin"

# --- the URI
refuse_msg "a URI that does not parse is refused" "not a PKCS#11 URI" \
	"$AK_TOOL" key list --store "pkcs11:token=%zz"
refuse_msg "a URI without object= is refused, saying what it is" "needs object=PATH.*keystore_path" \
	"$AK_TOOL" key list --store "pkcs11:token=hsm?module-path=$SOFTHSM_SO&pin-source=$T/hsm/pin"
refuse_msg "object=. is refused" "needs object=PATH" \
	"$AK_TOOL" key list --store "pkcs11:token=hsm;object=.?module-path=$SOFTHSM_SO&pin-source=$T/hsm/pin"
refuse_msg "a URI without module-path is refused" "names no module.*module-path=" \
	"$AK_TOOL" key list --store "pkcs11:token=hsm;object=web?pin-source=$T/hsm/pin"
refuse_msg "a module that does not load is refused, naming it" "module '$T/nomodule.so': cannot load it" \
	"$AK_TOOL" key list --store "pkcs11:token=hsm;object=web?module-path=$T/nomodule.so&pin-source=$T/hsm/pin"
refuse_msg "a missing token is refused, naming it" "no initialised token matches pkcs11:token=nosuch" \
	"$AK_TOOL" key list --store "pkcs11:token=nosuch;object=web?module-path=$SOFTHSM_SO&pin-source=$T/hsm/pin"
refuse_msg "id= in --store is refused" "id= and type= are not for --store" \
	"$AK_TOOL" key list --store "pkcs11:token=hsm;object=web;id=%01?module-path=$SOFTHSM_SO&pin-source=$T/hsm/pin"
refuse_msg "delete --version of the current version is refused" "current version.*rotate first" \
	"$AK_TOOL" key delete --store "$S" --version 1 imp-p521

# --- the broker's PKCS#11 store serves what the CLI made in the HSM
hsm_broker_conf
start_broker
"$AK_PROBE" "$AK_MODULE" hold 1234 </dev/null >"$T/hold.out" 2>&1
check "a login gets the keys the CLI made in the HSM" grep -q "^login: CKR_OK" "$T/hold.out"
for n in gen-rsa2048 gen-rsa4096 gen-p256 gen-p384 gen-p521 selfsigned imported imp-p521 ec tls; do
	check "the guest signs with $n" grep -q "^sign $n .*: CKR_OK" "$T/hold.out"
done
check "no old version is released" sh -c "! grep -q '^sign \./' '$T/hold.out'"
key show --store "$S" gen-p256
p256_id=$(field cka_id)
check "the guest's gen-p256 has the CKA_ID show printed" test "$(guest_id gen-p256)" = "$p256_id"
key rotate --store "$S" gen-p256 && key show --store "$S" gen-p256
new_id=$(field cka_id)
check "after rotate, a new login gets the new key ($new_id)" \
	test "$(guest_id gen-p256)" = "$new_id" -a "$new_id" != "$p256_id"
stop_broker

no_private_key_output
finish
