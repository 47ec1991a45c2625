#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# OpenSC pkcs11-tool and p11-kit against the module, with a real broker:
# log in (attestation), list, sign with every mechanism of issue 2 and
# verify each signature with openssl against the certificate.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool p11-kit openssl

setup_world
start_broker
P11="$AK_RUN pkcs11-tool --module $AK_MODULE"
data="$T/data"
printf 'attested signing' >"$data"
openssl x509 -in "$T/keys/web/tls.crt" -pubkey -noout >"$T/tls.pub"
openssl x509 -in "$T/keys/web/ec.crt" -pubkey -noout >"$T/ec.pub"

# p11-kit finds the module through its .module file. p11-kit ignores user
# config for root, so as root the file goes into p11-kit's system directory
# inside a private mount namespace: the machine's own config is untouched.
mkdir -p "$T/p11-modules" "$T/home/.config/pkcs11"
cp "$(pkg-config --variable=p11_module_configs p11-kit-1)"/*.module "$T/p11-modules/" 2>/dev/null
sed "s|^module:.*|module: $AK_MODULE|" "$top_srcdir/conf/attestkey.module.in" >"$T/p11-modules/attestkey.module"
ln -s "$T/p11-modules" "$T/home/.config/pkcs11/modules"
if [ "$(id -u)" = 0 ]; then
	unshare -m sh -c "mount --bind '$T/p11-modules' '$(pkg-config --variable=p11_module_configs p11-kit-1)' && $AK_RUN p11-kit list-modules" >"$T/modules.txt" 2>&1
else
	HOME="$T/home" $AK_RUN p11-kit list-modules >"$T/modules.txt" 2>&1
fi
check "p11-kit list-modules shows the attestkey module and its token" bash -c "grep -A12 '^attestkey' '$T/modules.txt' | grep -q 'token: web'"
check "pkcs11-tool lists the slot of token web" bash -c "$P11 -L 2>&1 | grep -q 'token label *: web'"

ATTESTKEY_DEBUG=1 $P11 --login --pin 1234 -O >"$T/objects.txt" 2>&1
check "login releases keys: a private key object for tls" grep -q "Private Key Object" "$T/objects.txt"
# the per-login timing line that make bench (tests/bench/login.sh) reads
check "ATTESTKEY_DEBUG=1 prints the login's timing line with every phase" grep -Eq \
	"login timing \(us\): challenge=[0-9]+ ephemeral=[0-9]+ evidence=[0-9]+ release=[0-9]+ unwrap=[0-9]+ objects=[0-9]+ total=[0-9]+" \
	"$T/objects.txt"
check "the certificate object of tls is listed" grep -q "Certificate Object" "$T/objects.txt"
check "the broker recorded a release" test "$(releases)" -ge 1

# pkcs11-tool chooses the signing key by --id (it ignores --label for --sign)
id_of() { awk -v l="$1" '$1 == "label:" { cur = $2 } $1 == "ID:" && cur == l { print $2; exit }' "$T/objects.txt"; }
TLS_ID=$(id_of tls)
EC_ID=$(id_of ec)
check "the RSA and EC keys have CKA_IDs" test -n "$TLS_ID" -a -n "$EC_ID"
sign() { # id mechanism outfile [extra]
	local l=$1 m=$2 o=$3; shift 3
	$P11 --login --pin 1234 --sign --id "$l" -m "$m" --input-file "$data" --output-file "$o" "$@"
}
check "CKM_SHA256_RSA_PKCS signs" sign $TLS_ID SHA256-RSA-PKCS "$T/s1"
check "  and openssl verifies it" openssl dgst -sha256 -verify "$T/tls.pub" -signature "$T/s1" "$data"
check "CKM_SHA384_RSA_PKCS signs and verifies" bash -c "$(declare -f sign); P11='$P11' data='$data'; sign $TLS_ID SHA384-RSA-PKCS '$T/s2' && openssl dgst -sha384 -verify '$T/tls.pub' -signature '$T/s2' '$data'"
check "CKM_SHA512_RSA_PKCS signs and verifies" bash -c "$(declare -f sign); P11='$P11' data='$data'; sign $TLS_ID SHA512-RSA-PKCS '$T/s3' && openssl dgst -sha512 -verify '$T/tls.pub' -signature '$T/s3' '$data'"
check "CKM_RSA_PKCS_PSS (SHA-256, MGF1-SHA256) on a digest verifies" bash -c "
	openssl dgst -sha256 -binary '$data' >'$T/digest' &&
	$P11 --login --pin 1234 --sign --id $TLS_ID -m RSA-PKCS-PSS --hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len -1 --input-file '$T/digest' --output-file '$T/s4' &&
	openssl pkeyutl -verify -pubin -inkey '$T/tls.pub' -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:-1 -pkeyopt digest:sha256 -in '$T/digest' -sigfile '$T/s4'"
check "CKM_RSA_PKCS on a DigestInfo verifies" bash -c "
	openssl dgst -sha256 -binary '$data' >'$T/digest' &&
	printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' | cat - '$T/digest' >'$T/di' &&
	$P11 --login --pin 1234 --sign --id $TLS_ID -m RSA-PKCS --input-file '$T/di' --output-file '$T/s5' &&
	openssl dgst -sha256 -verify '$T/tls.pub' -signature '$T/s5' '$data'"
check "CKM_RSA_X_509 raw signature recovers to the padded block" bash -c "
	head -c 256 /dev/zero | tr '\0' '\1' >'$T/raw' &&
	$P11 --login --pin 1234 --sign --id $TLS_ID -m RSA-X-509 --input-file '$T/raw' --output-file '$T/s6' &&
	openssl pkeyutl -verifyrecover -pubin -inkey '$T/tls.pub' -pkeyopt rsa_padding_mode:none -in '$T/s6' | cmp -s - '$T/raw'"
check "CKM_ECDSA_SHA256 signs and verifies" bash -c "
	$P11 --login --pin 1234 --sign --id $EC_ID -m ECDSA-SHA256 --signature-format openssl --input-file '$data' --output-file '$T/e1' &&
	openssl dgst -sha256 -verify '$T/ec.pub' -signature '$T/e1' '$data'"
check "CKM_ECDSA_SHA384 signs and verifies" bash -c "
	$P11 --login --pin 1234 --sign --id $EC_ID -m ECDSA-SHA384 --signature-format openssl --input-file '$data' --output-file '$T/e2' &&
	openssl dgst -sha384 -verify '$T/ec.pub' -signature '$T/e2' '$data'"
check "CKM_ECDSA on a digest signs and verifies" bash -c "
	openssl dgst -sha256 -binary '$data' >'$T/digest' &&
	$P11 --login --pin 1234 --sign --id $EC_ID -m ECDSA --signature-format openssl --input-file '$T/digest' --output-file '$T/e3' &&
	openssl pkeyutl -verify -pubin -inkey '$T/ec.pub' -in '$T/digest' -sigfile '$T/e3'"
refuse "the private key is not readable (CKA_SENSITIVE)" bash -c "$P11 --login --pin 1234 --read-object --type privkey --id $TLS_ID -o '$T/leak' && test -s '$T/leak'"
check "pkcs11-tool --test --login: OpenSC's own token test passes" bash -c "
	$P11 --test --login --pin 1234 >'$T/p11test.txt' 2>&1; rc=\$?; tail -3 '$T/p11test.txt'; test \$rc -eq 0 && grep -q 'No errors' '$T/p11test.txt'"
check "no key material in the broker log or the audit log" bash -c "! grep -q 'PRIVATE KEY' '$T/broker.log' '$T/audit.jsonl'"
finish
