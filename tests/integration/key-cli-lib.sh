# SPDX-License-Identifier: Apache-2.0
# Shared by key-cli.sh and key-cli-vault.sh (sourced after lib.sh): the
# `attestkey key` command on one store, and what every store must do alike.

# refuse_msg "description" PATTERN command...: the command fails (exit != 0)
# and its stderr names the problem (an extended regular expression)
refuse_msg() {
	local d=$1 pat=$2 rc
	shift 2
	"$@" >"$T/refuse.out" 2>"$T/refuse.err"
	rc=$?
	if [ $rc -ne 0 ] && grep -Eq -- "$pat" "$T/refuse.err"; then
		ok "$d"
	else
		not_ok "$d"
		diag "command: $* (exit $rc), expected a message matching: $pat"
		diag_stream <"$T/refuse.err"
	fi
	cat "$T/refuse.out" "$T/refuse.err" >>"$T/all-output"
}

# key ARGS...: attestkey key, its output kept in $T/key.out and collected in
# $T/all-output (checked at the end for private key text)
key() {
	"$AK_TOOL" key "$@" >"$T/key.out" 2>"$T/key.err"
	local rc=$?
	cat "$T/key.out" "$T/key.err" >>"$T/all-output"
	[ $rc -eq 0 ] || { diag "attestkey key $* (exit $rc):"; diag_stream <"$T/key.err"; }
	return $rc
}

# field NAME: a "NAME: value" line of the last `key show`
field() { sed -n "s/^$1: //p" "$T/key.out"; }

# spki_sha256 PEMFILE: the SHA-256 of the DER SubjectPublicKeyInfo of a
# private key, a public key or a certificate, computed by openssl(1)
spki_sha256_of_key() { openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -d' ' -f1; }
spki_sha256_of_cert() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1
}

# store_checks STORE: every subcommand and every refusal that is the same
# for every store; leaves the keys "gen-p256" (rotated to version 2),
# "imported" and "gen-<type>" for each type in the store. STORE_TYPES: the
# types the store can hold (default all; an HSM may lack one)
store_checks() {
	local S=$1 t
	local -a types=(${STORE_TYPES:-rsa2048 rsa3072 rsa4096 p256 p384 p521 ed25519})

	for t in "${types[@]}"; do
		if key generate --store "$S" --type "$t" "gen-$t" && key show --store "$S" "gen-$t" &&
			[ "$(field type)" = "$t" ] && [ "$(field version)" = "1 (current)" ]; then
			ok "generate --type $t: version 1 of type $t"
		else
			not_ok "generate --type $t: version 1 of type $t"
			diag_stream <"$T/key.out"
		fi
	done

	# --cert self-signed: the broker's CKA_ID is the certificate's subject key
	# identifier (RFC 5280 method 1, as openssl computes it)
	key generate --store "$S" --type p256 --cert self-signed --subject "CN=web.example,O=Test" \
		--days 30 selfsigned && key show --store "$S" selfsigned
	check "generate --cert self-signed: the subject is --subject" \
		test "$(field cert_subject)" = "O=Test,CN=web.example"
	key show --store "$S" selfsigned
	cka=$(field cka_id)
	CERT_PEM=$(read_cert "$S" selfsigned)
	printf '%s\n' "$CERT_PEM" >"$T/selfsigned.crt"
	ski=$(openssl x509 -in "$T/selfsigned.crt" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' :' | tr 'A-F' 'a-f')
	check "show: cka_id ($cka) is the certificate's subject key identifier ($ski)" test "$cka" = "$ski"
	check "show: spki_sha256 is the certificate's public key's SHA-256" \
		test "$(field spki_sha256)" = "$(spki_sha256_of_cert "$T/selfsigned.crt")"
	check "the self-signed certificate verifies with its own key" \
		openssl verify -CAfile "$T/selfsigned.crt" "$T/selfsigned.crt"
	end=$(openssl x509 -in "$T/selfsigned.crt" -noout -enddate | cut -d= -f2)
	check "--days 30: the certificate expires in 30 days ($end)" \
		test $(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 )) -ge 29
	check "... and show prints that expiry" test -n "$(key show --store "$S" selfsigned && field cert_not_after)"

	# --cert csr: the CSR goes to --out, or to stdout
	key generate --store "$S" --type p384 --cert csr --subject /CN=csr.example --out "$T/csr.pem" withcsr
	check "generate --cert csr --out: a CSR that verifies" openssl req -in "$T/csr.pem" -noout -verify
	check "... for subject CN=csr.example" grep -q "CN *= *csr.example" <(openssl req -in "$T/csr.pem" -noout -subject)
	key show --store "$S" withcsr
	check "... whose key is the stored key" \
		test "$(openssl req -in "$T/csr.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)" = "$(field spki_sha256)"
	check "... and the stored key has no certificate" test "$(field cert)" = none
	key generate --store "$S" --type "${types[-1]}" --cert csr csr-stdout
	check "generate --cert csr without --out: the CSR on stdout" openssl req -in "$T/key.out" -noout -verify

	# rotate: a new key, the same type, the next version; the old one readable
	key show --store "$S" gen-p256
	v1_spki=$(field spki_sha256)
	check "rotate makes version 2" key rotate --store "$S" gen-p256
	key show --store "$S" gen-p256
	check "show: version 2 is current, 1 and 2 readable" \
		test "$(field version)/$(field versions)" = "2 (current)/1 2"
	check "... of the same type" test "$(field type)" = p256
	check "... with another key" test "$(field spki_sha256)" != "$v1_spki"
	key show --store "$S" --version 1 gen-p256
	check "show --version 1: the old key is still readable" test "$(field spki_sha256)" = "$v1_spki"
	# a self-signed certificate is renewed for the new key with its subject
	key rotate --store "$S" selfsigned && key show --store "$S" selfsigned
	check "rotate renews a self-signed certificate with the same subject" \
		test "$(field cert_subject)" = "O=Test,CN=web.example"
	CERT_PEM=$(read_cert "$S" selfsigned)
	printf '%s\n' "$CERT_PEM" >"$T/selfsigned2.crt"
	check "... for the new key" test "$(spki_sha256_of_cert "$T/selfsigned2.crt")" = "$(field spki_sha256)"

	# list: one line per key, its name then its current version
	key list --store "$S"
	check "list: gen-p256 at version 2" grep -qx "gen-p256 2 p256 [0-9a-f]\{40\}" "$T/key.out"
	check "list: selfsigned at version 2, with a certificate" grep -qx "selfsigned 2 p256 [0-9a-f]\{40\} cert" "$T/key.out"
	check "list: every generated type at version 1" \
		test "$(grep -c '^gen-[a-z0-9]* 1 ' "$T/key.out")" = $((${#types[@]} - 1))

	# import: a PKCS#8 key and its certificate chain, made by openssl(1)
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=imported.example -days 2 \
		-keyout "$T/imp.key" -out "$T/imp.crt" >/dev/null 2>&1
	check "import --key --cert" key import --store "$S" --key "$T/imp.key" --cert "$T/imp.crt" imported
	key show --store "$S" imported
	check "show: the imported key's public key" test "$(field spki_sha256)" = "$(spki_sha256_of_key "$T/imp.key")"
	check "show: the imported certificate" test "$(field cert_subject)" = "CN=imported.example"

	# delete --version: an old version goes, the current one cannot
	check "delete --version 1 of gen-p256" key delete --store "$S" --version 1 gen-p256
	refuse_msg "show --version 1 after its deletion is refused" "version 1|destroyed|deleted" \
		"$AK_TOOL" key show --store "$S" --version 1 gen-p256
	key show --store "$S" gen-p256
	check "... version 2 is still served" test "$(field versions)" = 2
	refuse_msg "delete --version of the current version is refused (rotate first)" "current version.*rotate first" \
		"$AK_TOOL" key delete --store "$S" --version 2 gen-p256
	check "delete NAME: every version" key delete --store "$S" gen-rsa3072
	refuse_msg "show after delete: no such key" "no key 'gen-rsa3072'" "$AK_TOOL" key show --store "$S" gen-rsa3072
	key list --store "$S"
	check "list no longer shows the deleted key" test "$(grep -c '^gen-rsa3072 ' "$T/key.out")" = 0
	check "a deleted name can be generated again, at version 1" \
		key generate --store "$S" --type rsa2048 gen-rsa3072

	# refusals, each with a message naming the problem
	refuse_msg "generate of an existing name is refused" "already exists.*rotate or delete" \
		"$AK_TOOL" key generate --store "$S" --type p256 gen-p256
	refuse_msg "import of an existing name is refused" "already exists" \
		"$AK_TOOL" key import --store "$S" --key "$T/imp.key" imported
	refuse_msg "rotate of a missing key is refused" "no key 'missing'" \
		"$AK_TOOL" key rotate --store "$S" missing
	refuse_msg "delete of a missing key is refused" "no key 'missing'" \
		"$AK_TOOL" key delete --store "$S" missing
	refuse_msg "delete --version of a version that never was is refused" "no (readable )?version 9" \
		"$AK_TOOL" key delete --store "$S" --version 9 imported
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other -days 2 \
		-keyout "$T/other.key" -out "$T/other.crt" >/dev/null 2>&1
	refuse_msg "import of a certificate that does not match the key is refused" \
		"certificate's public key does not match" \
		"$AK_TOOL" key import --store "$S" --key "$T/imp.key" --cert "$T/other.crt" mismatch
	openssl genrsa -traditional -out "$T/pkcs1.key" 2048 >/dev/null 2>&1
	refuse_msg "import of a PKCS#1 key is refused with the conversion to use" \
		"RSA PRIVATE KEY.*openssl pkcs8 -topk8 -nocrypt" \
		"$AK_TOOL" key import --store "$S" --key "$T/pkcs1.key" pkcs1
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$T/k1.key" 2>/dev/null
	refuse_msg "import of a key type the broker does not serve is refused" "secp256k1|not supported|does not serve" \
		"$AK_TOOL" key import --store "$S" --key "$T/k1.key" k1
	refuse_msg "import of a certificate file that holds none is refused" "no PEM X.509 certificate" \
		"$AK_TOOL" key import --store "$S" --key "$T/imp.key" --cert "$T/imp.key" nocert
	refuse_msg "import of a missing key file is refused" "nowhere.key.*No such file" \
		"$AK_TOOL" key import --store "$S" --key "$T/nowhere.key" nofile
	key list --store "$S"
	check "no refused import left a key behind" test "$(grep -Ec '^(mismatch|pkcs1|k1|nocert|nofile) ' "$T/key.out")" = 0
}

# usage_checks STORE: refusals of the command line itself (exit 2)
usage_checks() {
	local S=$1
	refuse_msg "an unknown store scheme is refused" "'bogus:x' is not a store" \
		"$AK_TOOL" key list --store bogus:x
	refuse_msg "a store without a scheme is refused" "is not a store" "$AK_TOOL" key list --store "$T"
	refuse_msg "an unknown type is refused, naming the types" "unknown type.*rsa2048.*ed25519" \
		"$AK_TOOL" key generate --store "$S" --type dsa1024 x
	refuse_msg "generate without --type is refused" "--type is required" \
		"$AK_TOOL" key generate --store "$S" x
	refuse_msg "a missing NAME is refused" "key NAME is required" "$AK_TOOL" key show --store "$S"
	refuse_msg "a missing --store is refused" "--store STORE is required" "$AK_TOOL" key list
	refuse_msg "a name with a slash is refused" "key name '../x' is not valid" \
		"$AK_TOOL" key generate --store "$S" --type p256 ../x
	refuse_msg "a name starting with a dot is refused" "key name '.x' is not valid" \
		"$AK_TOOL" key generate --store "$S" --type p256 .x
	refuse_msg "an unknown subcommand is refused" "unknown command 'frobnicate'" \
		"$AK_TOOL" key frobnicate --store "$S"
	refuse_msg "--cert with another value is refused" "--cert pem: self-signed or csr" \
		"$AK_TOOL" key generate --store "$S" --type p256 --cert pem x
	refuse_msg "an unparsable --subject is refused" "--subject 'nonsense'" \
		"$AK_TOOL" key generate --store "$S" --type p256 --cert self-signed --subject nonsense x
	refuse_msg "--version 0 is refused" "--version 0: not a version" \
		"$AK_TOOL" key show --store "$S" --version 0 x
	check "exit status 2 for a usage error" test "$("$AK_TOOL" key list >/dev/null 2>&1; echo $?)" = 2
}

# the CKA_ID of private key LABEL as the guest sees it after a login
guest_id() {
	$AK_RUN pkcs11-tool --module "$AK_MODULE" --login --pin 1234 --list-objects --type privkey 2>/dev/null |
		awk -v l="$1" '$1 == "label:" { cur = $2 } $1 == "ID:" && cur == l { print $2 }'
}

# no_private_key_output: nothing any command printed holds a private key
no_private_key_output() {
	check "no command printed a private key" sh -c "! grep -q 'BEGIN.*PRIVATE KEY' '$T/all-output'"
}
