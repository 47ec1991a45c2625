#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `attestkey key` on the broker's file store (issue 10, item 4): every
# subcommand and refusal (key-cli-lib.sh), the file layout the broker
# enforces (modes, atomic writes, versions as hard links, no symbolic
# links), and the broker serving the keys the CLI generated and rotated.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/key-cli-lib.sh"
need openssl jq pkcs11-tool

setup_world
D="$T/keys/web"
S="file:$D"
read_cert() { cat "${1#file:}/$2.crt"; }

store_checks "$S"
usage_checks "$S"

# --- the file layout
check "a key file is mode 0600" test "$(stat -c %a "$D/gen-p256.key")" = 600
check "a certificate file is mode 0644" test "$(stat -c %a "$D/selfsigned.crt")" = 644
check "the current key is a hard link to its version (<name>.key.2)" \
	test "$(stat -c %i "$D/gen-p256.key")" = "$(stat -c %i "$D/gen-p256.key.2")"
check "the old version of a rotated key is kept as <name>.key.1" test -f "$D/selfsigned.key.1"
check "... with its certificate, <name>.crt.1" test -f "$D/selfsigned.crt.1"
check "no temporary file is left behind" test -z "$(find "$D" -name '.*')"
(umask 000 && "$AK_TOOL" key generate --store "$S" --type p256 umask0 >/dev/null 2>&1)
check "under umask 000 a key file is still 0600" test "$(stat -c %a "$D/umask0.key")" = 600
check "openssl reads a generated key as PKCS#8" grep -q "^-----BEGIN PRIVATE KEY-----" "$D/gen-ed25519.key"
check "... and it is the key show describes" \
	test "$(spki_sha256_of_key "$D/gen-ed25519.key")" = "$(key show --store "$S" gen-ed25519 && field spki_sha256)"

# a key put there by hand (setup_world's tls.key) is version 1, and is kept
# as version 1 when rotated
key list --store "$S"
check "list: a hand-placed key is at version 1" grep -q "^tls 1 rsa2048 " "$T/key.out"
tls_old=$(spki_sha256_of_key "$D/tls.key")
check "rotate of a hand-placed key" key rotate --store "$S" tls
check "... keeps it as tls.key.1" test "$(spki_sha256_of_key "$D/tls.key.1")" = "$tls_old"
check "... and a CA-issued certificate is not carried to the new key" test ! -e "$D/tls.crt"
check "... which the message says" grep -q "certificate is a CA's" "$T/key.err"
check "... as its version 1" test "$(key show --store "$S" tls && field versions)" = "1 2"

# a new directory is made private; a loose one is refused as the broker would
check "generate into a new directory creates it" key generate --store "file:$T/keys/newtok" --type p256 k
check "... mode 0700" test "$(stat -c %a "$T/keys/newtok")" = 700
mkdir -p "$T/loose" && chmod 777 "$T/loose"
refuse_msg "a group/world-writable directory is refused with the chmod that fixes it" \
	"writable by group or others.*chmod go-w" "$AK_TOOL" key list --store "file:$T/loose"
refuse_msg "a directory that cannot be created is refused" "cannot create directory" \
	"$AK_TOOL" key list --store "file:$T/no/such/dir"
ln -s "$T/pki/broker.key" "$D/link.key"
refuse_msg "a key file that is a symbolic link is refused" "symbolic link" \
	"$AK_TOOL" key show --store "$S" link
rm -f "$D/link.key"
refuse_msg "file: without a directory is refused" "needs a directory" "$AK_TOOL" key list --store file:
for s in vault pkcs11; do
	"$AK_TOOL" key list --store "$s:x" >/dev/null 2>"$T/nb.err"
	if grep -q "not built" "$T/nb.err"; then
		check "--store $s: says plainly when that store is not built" grep -q "$s: not built" "$T/nb.err"
	fi
done

# --- the broker serves what the CLI made
key show --store "$S" gen-p256
p256_id=$(field cka_id)
start_broker
"$AK_PROBE" "$AK_MODULE" hold 1234 </dev/null >"$T/hold.out" 2>&1
check "a login gets the keys the CLI generated" grep -q "^login: CKR_OK" "$T/hold.out"
for n in gen-rsa2048 gen-rsa4096 gen-p256 gen-p384 gen-p521 gen-ed25519 selfsigned imported; do
	check "the guest signs with $n" grep -q "^sign $n .*: CKR_OK" "$T/hold.out"
done
check "the guest's gen-p256 has the CKA_ID show printed" test "$(guest_id gen-p256)" = "$p256_id"
key rotate --store "$S" gen-p256 && key show --store "$S" gen-p256
new_id=$(field cka_id)
check "after rotate, a new login gets the new version ($new_id)" \
	test "$(guest_id gen-p256)" = "$new_id" -a "$new_id" != "$p256_id"
check "the broker loads the rotated token without complaint" sh -c "! grep -qi 'refus\|error' '$T/broker.log'"
stop_broker

no_private_key_output
finish
