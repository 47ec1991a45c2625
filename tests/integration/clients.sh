#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 3 item 7: real PKCS#11 clients, each against the real broker and
# module: GnuTLS p11tool through the p11-kit registry, the OpenSSL CLI
# through libp11's engine (req -x509, OAEP decrypt), curl TLS client
# authentication with the token's key, Java SunPKCS11 (keytool and
# java.security.Signature), and p11-kit server + client module.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx-lib.sh"
need p11tool openssl curl
[ -f "$ENGINE_SO" ] || skip_all "libengine-pkcs11-openssl is not installed"

setup_world
start_broker
write_engine_conf
ENG="env OPENSSL_CONF=$T/openssl.cnf $AK_RUN"
KEY='pkcs11:token=web;object=tls;type=private;pin-value=1234'
printf 'real clients' >"$T/data"
openssl x509 -in "$T/keys/web/tls.crt" -pubkey -noout >"$T/tls.pub"

# --- GnuTLS p11tool through the p11-kit registry (system dir, private mount)
registry_setup
if [ -n "$AK_RUN" ]; then
	# like curl, p11tool hangs in start-up with ASan's runtime preloaded
	skip "GnuTLS p11tool" "not under the ASan build (p11tool + LD_PRELOAD)"
else
# the public view comes from the cache file the background refresh writes
$AK_PROBE "$AK_MODULE" wait-public 10 >/dev/null
registry "p11tool --list-all 'pkcs11:token=web'" >"$T/p11tool.txt" 2>&1
check "p11tool --list-all (no PIN) lists the public keys and certificates" bash -c "
	grep -q 'Type: Public key (RSA-2048)' '$T/p11tool.txt' && grep -q 'Type: X.509 Certificate' '$T/p11tool.txt'"
registry "GNUTLS_PIN=1234 p11tool --login --test-sign 'pkcs11:token=web;object=tls'" >"$T/ts-rsa.txt" 2>&1
check "p11tool --test-sign with the RSA key" grep -q "Verifying against public key in the token... ok" "$T/ts-rsa.txt"
registry "GNUTLS_PIN=1234 p11tool --login --test-sign 'pkcs11:token=web;object=ec'" >"$T/ts-ec.txt" 2>&1
check "p11tool --test-sign with the EC key" grep -q "Verifying against public key in the token... ok" "$T/ts-ec.txt"
fi

# --- OpenSSL CLI through libp11's engine
check "openssl req -x509 -new signs a certificate with the token key" \
	$ENG openssl req -x509 -new -engine pkcs11 -keyform engine -key "$KEY" -subj /CN=attested -days 1 -sha256 -out "$T/self.pem"
check "  and the self-signed certificate verifies, with the released key's public key" bash -c "
	openssl verify -CAfile '$T/self.pem' '$T/self.pem' &&
	openssl x509 -in '$T/self.pem' -pubkey -noout | cmp -s - '$T/tls.pub'"
for h in sha1 sha256; do
	check "openssl pkeyutl -decrypt with OAEP ($h) through the engine" bash -c "
		openssl pkeyutl -encrypt -pubin -inkey '$T/tls.pub' -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:$h \
			-pkeyopt rsa_mgf1_md:$h -in '$T/data' -out '$T/oaep.$h' &&
		$ENG openssl pkeyutl -decrypt -engine pkcs11 -keyform engine -inkey '$KEY' -pkeyopt rsa_padding_mode:oaep \
			-pkeyopt rsa_oaep_md:$h -pkeyopt rsa_mgf1_md:$h -in '$T/oaep.$h' | cmp -s - '$T/data'"
done

# --- curl: TLS client authentication with the token's key
port=$((20000 + RANDOM % 30000))
openssl s_server -accept "127.0.0.1:$port" -cert "$T/pki/broker.crt" -key "$T/pki/broker.key" \
	-CAfile "$T/pki/web-ca.pem" -Verify 1 -verify_return_error -www -quiet >"$T/s_server.log" 2>&1 &
AK_PIDS="$AK_PIDS $!"
for _ in $(seq 50); do curl -sk -o /dev/null "https://127.0.0.1:$port/" 2>/dev/null; [ $? -ne 7 ] && break; sleep 0.1; done
if [ -n "$AK_RUN" ]; then
	# curl deadlocks in setlocale() with ASan's runtime preloaded
	skip "curl TLS client authentication with the token's key" "not under the ASan build (curl + LD_PRELOAD)"
else
check "curl without a client certificate is refused by the server" \
	bash -c "! curl -s --cacert '$T/pki/broker-ca.pem' 'https://localhost:$port/' -o /dev/null"
check "curl authenticates with the token's key (--engine pkcs11 --key-type ENG)" bash -c "
	$ENG curl -s --cacert '$T/pki/broker-ca.pem' --engine pkcs11 --key-type ENG --key '$KEY' \
		--cert '$T/keys/web/tls.crt' 'https://localhost:$port/' | grep -q 'Client certificate'"
fi

# --- Java SunPKCS11
if [ -n "$AK_RUN" ]; then
	skip "Java SunPKCS11" "not under the ASan build (the JVM and ASan's preloaded runtime)"
elif command -v javac >/dev/null && command -v keytool >/dev/null; then
	printf 'name = attestkey\nlibrary = %s\nslotListIndex = 0\n' "$AK_MODULE" >"$T/sunpkcs11.cfg"
	check "keytool -list with SunPKCS11 shows the key entries" bash -c "
		$AK_RUN keytool -list -storetype PKCS11 -providerclass sun.security.pkcs11.SunPKCS11 \
			-providerarg '$T/sunpkcs11.cfg' -storepass 1234 2>&1 | tee '$T/keytool.txt' | grep -q 'tls, PrivateKeyEntry'"
	cat >"$T/SignWithToken.java" <<'EOJ'
import java.nio.file.*;
import java.security.*;
public class SignWithToken {
	public static void main(String[] a) throws Exception {
		Provider p = Security.getProvider("SunPKCS11").configure(a[0]);
		KeyStore ks = KeyStore.getInstance("PKCS11", p);
		ks.load(null, a[1].toCharArray());
		PrivateKey k = (PrivateKey) ks.getKey("tls", null);
		Signature s = Signature.getInstance("SHA256withRSA", p);
		s.initSign(k);
		byte[] data = Files.readAllBytes(Paths.get(a[2]));
		for (int i = 0; i < data.length; i += 4) // multi-part, as Java does
			s.update(data, i, Math.min(4, data.length - i));
		Files.write(Paths.get(a[3]), s.sign());
	}
}
EOJ
	check "java.security.Signature SHA256withRSA via SunPKCS11 signs" bash -c "
		javac -d '$T' '$T/SignWithToken.java' &&
		$AK_RUN java -cp '$T' SignWithToken '$T/sunpkcs11.cfg' 1234 '$T/data' '$T/java.sig'"
	check "  and openssl verifies the Java signature" openssl dgst -sha256 -verify "$T/tls.pub" -signature "$T/java.sig" "$T/data"
else
	skip "Java SunPKCS11" "javac/keytool not installed"
fi

# --- p11-kit server: one attestation serves a second process
CLIENT_SO=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
if [ -f "$CLIENT_SO" ]; then
	$AK_RUN p11-kit server --provider "$AK_MODULE" -n "$T/p11kit.sock" -f "pkcs11:token=web" >"$T/p11kit-server.log" 2>&1 &
	AK_PIDS="$AK_PIDS $!"
	for _ in $(seq 50); do [ -S "$T/p11kit.sock" ] && break; sleep 0.1; done
	export P11_KIT_SERVER_ADDRESS="unix:path=$T/p11kit.sock"
	pkcs11-tool --module "$CLIENT_SO" --login --pin 1234 -O >"$T/client-objects.txt" 2>&1
	check "p11-kit client module lists the token's private keys over the server socket" grep -q "Private Key Object; RSA" "$T/client-objects.txt"
	tls_id=$(awk '$1 == "label:" { cur = $2 } $1 == "ID:" && cur == "tls" { print $2; exit }' "$T/client-objects.txt")
	check "a second process signs through p11-kit server and openssl verifies" bash -c "
		pkcs11-tool --module '$CLIENT_SO' --login --pin 1234 --sign --id '$tls_id' -m SHA256-RSA-PKCS \
			--input-file '$T/data' --output-file '$T/client.sig' &&
		openssl dgst -sha256 -verify '$T/tls.pub' -signature '$T/client.sig' '$T/data'"
	unset P11_KIT_SERVER_ADDRESS
else
	skip "p11-kit server" "p11-kit-client.so not found"
fi
finish
