#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The OpenSSL CLI through libp11's pkcs11 engine, as nginx uses it: sign with
# the RSA and the EC key by PKCS#11 URI and verify with the certificates.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
need openssl
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"

setup_world
start_broker
write_engine_conf
# only the engine commands load the module (and, in the ASan build, its runtime)
ENG="env OPENSSL_CONF=$T/openssl.cnf $AK_RUN"
printf 'signed through the engine' >"$T/data"
openssl x509 -in "$T/keys/web/tls.crt" -pubkey -noout >"$T/tls.pub"
openssl x509 -in "$T/keys/web/ec.crt" -pubkey -noout >"$T/ec.pub"

check "openssl dgst -sha256 signs with the RSA key through the engine" \
	$ENG openssl dgst -sha256 -engine pkcs11 -keyform engine \
	-sign "pkcs11:token=web;object=tls;type=private;pin-value=1234" -out "$T/rsa.sig" "$T/data"
check "  and openssl verifies it against the certificate" \
	openssl dgst -sha256 -verify "$T/tls.pub" -signature "$T/rsa.sig" "$T/data"
check "openssl dgst -sha384 signs with the EC key through the engine" \
	$ENG openssl dgst -sha384 -engine pkcs11 -keyform engine \
	-sign "pkcs11:token=web;object=ec;type=private;pin-value=1234" -out "$T/ec.sig" "$T/data"
check "  and openssl verifies it against the certificate" \
	openssl dgst -sha384 -verify "$T/ec.pub" -signature "$T/ec.sig" "$T/data"
check "openssl pkeyutl PSS through the engine verifies" bash -c "
	openssl dgst -sha256 -binary '$T/data' >'$T/digest' &&
	$ENG openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey 'pkcs11:token=web;object=tls;type=private;pin-value=1234' \
		-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -pkeyopt digest:sha256 -in '$T/digest' -out '$T/pss.sig' &&
	openssl pkeyutl -verify -pubin -inkey '$T/tls.pub' -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 \
		-pkeyopt digest:sha256 -in '$T/digest' -sigfile '$T/pss.sig'"
finish
