#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# attestkey-broker --check-config (docs/attestkey-broker.8.md, OPTIONS):
# a good configuration gives one summary line and exit 0 without binding the
# listener; each problem (parse, key store missing or unreachable, roots, a token's keys missing or
# not matching their certificate, PIN verifier, secret, TLS key, tee) is
# named, and a file with several problems names every one of them.
. "$(dirname "$0")/lib.sh"

setup_world
chmod 600 "$T/broker.conf"

# run_check CONF: --check-config, stdout/stderr/status in $T/cc.{out,err,rc}
run_check() {
	"$AK_BROKER" --check-config -c "$1" >"$T/cc.out" 2>"$T/cc.err"
	echo $? >"$T/cc.rc"
}
# expect_problem NAME PATTERN...: the copy in $T/bad.conf fails with exit 1
# and every PATTERN (grep -E) is a line on stderr
expect_problem() {
	local name=$1 p
	shift
	run_check "$T/bad.conf"
	check "$name: exit status 1" test "$(cat "$T/cc.rc")" = 1
	for p in "$@"; do
		check "$name: names '$p'" grep -Eq -- "$p" "$T/cc.err"
	done
	check "$name: nothing on stdout" test ! -s "$T/cc.out"
	diag_stream <"$T/cc.err"
}
fresh() { cp "$T/broker.conf" "$T/bad.conf"; }

# 1. a good configuration
run_check "$T/broker.conf"
check "good: exit status 0" test "$(cat "$T/cc.rc")" = 0
check "good: one summary line" test "$(wc -l <"$T/cc.out")" = 1
check "good: the summary counts tokens and keys" \
	grep -q "^$T/broker.conf: OK: 1 token(s) (0 accepting TDX), 2 key(s) in 1 key store(s) (file), 1 SEV-SNP and 0 TDX root file(s)\$" "$T/cc.out"
check "good: nothing on stderr" test ! -s "$T/cc.err"
check "good: the listener was not bound (no port file)" test ! -e "$T/broker.port"
# the port of a running broker: --check-config does not try to bind it
start_broker
sed "s/^listen = .*/listen = 127.0.0.1:$(cat "$T/broker.port")/; /^port_file/d" "$T/broker.conf" >"$T/busy.conf"
run_check "$T/busy.conf"
check "good: exit 0 even while another process listens on its port" test "$(cat "$T/cc.rc")" = 0
stop_broker

# 2. each problem on its own
fresh
printf '[token web\n' >>"$T/bad.conf"
expect_problem syntax "bad.conf: line [0-9]+: syntax error"

fresh
sed -i "s/^nonce_ttl = .*/nonce_ttl = 0/" "$T/bad.conf"
expect_problem bad-value "bad.conf: \[broker\] nonce_ttl: '0' is not a number"

fresh
sed -i "s/^\[broker\]/[broker]\nlisten_on = 1/" "$T/bad.conf"
expect_problem unknown-key "bad.conf: \[broker\] listen_on: unknown key"

fresh
sed -i "s|^dir = .*|dir = $T/no-such-dir|" "$T/bad.conf"
expect_problem keystore "bad.conf: \[keystore\] .*no-such-dir"

fresh
sed -i "s|^roots = .*|roots = $T/no-such-ark.pem|" "$T/bad.conf"
expect_problem roots-missing "bad.conf: \[snp\] roots: cannot load certificates from '$T/no-such-ark.pem'"

fresh
sed -i "s|^roots = .*|roots = $T/broker.conf|" "$T/bad.conf"
expect_problem roots-not-pem "bad.conf: \[snp\] roots: cannot load certificates from '$T/broker.conf'"

fresh
printf '[token mail]\nmeasurements = any\n' >>"$T/bad.conf"
expect_problem keys-missing "token 'mail': .*$T/keys/mail"

fresh
cp "$T/keys/web/ec.crt" "$T/ec.crt.saved"
cp "$T/keys/web/tls.crt" "$T/keys/web/ec.crt"
expect_problem key-cert-mismatch "token 'web': .*does not match"
cp "$T/ec.crt.saved" "$T/keys/web/ec.crt"

fresh
echo "pin_sha256 = 0011:1234" >>"$T/bad.conf"
expect_problem pin "bad.conf: \[token web\] pin_sha256: expected SALT_HEX:HASH_HEX"
check "pin: the verifier is not echoed" bash -c "! grep -q 0011:1234 '$T/cc.err'"

fresh
sed -i "s|^secret_file = .*|secret_file = $T/no-such-secret|" "$T/bad.conf"
expect_problem secret "bad.conf: \[broker\] secret_file: .*no-such-secret"

fresh
sed -i "s|^key = .*|key = $T/pki/tls.key|" "$T/bad.conf"
expect_problem tls-key "bad.conf: \[broker\] key: .*does not match the certificate"

fresh
echo "tee = sgx" >>"$T/bad.conf"
expect_problem tee "bad.conf: \[token web\] tee: 'sgx' is not an evidence type"

fresh
echo "tee = snp tdx" >>"$T/bad.conf"
expect_problem tee-tdx "bad.conf: \[token web\] tee: tdx needs \[tdx\] roots"

# a key store that cannot be reached: a Vault store on a closed port (no
# Vault server is needed to show it)
fresh
echo s.not-a-token >"$T/vault-token" && chmod 600 "$T/vault-token"
printf '[keystore vault]\ntype = vault\naddr = http://127.0.0.1:1\ntoken_file = %s\ntimeout = 1\nretries = 0\n' \
	"$T/vault-token" >>"$T/bad.conf"
printf '[token mail]\nkeystore = vault\nmeasurements = any\n' >>"$T/bad.conf"
expect_problem vault-unreachable "token 'mail': Vault at http://127.0.0.1:1 unreachable"

"$AK_BROKER" --check-config -c "$T/no-such.conf" >"$T/cc.out" 2>"$T/cc.err"
check "missing file: exit status 1" test $? = 1
check "missing file: names it" grep -q "$T/no-such.conf: cannot open" "$T/cc.err"

# 3. every problem of one file, not only the first
fresh
sed -i "s/^nonce_ttl = .*/nonce_ttl = 0/; s|^roots = .*|roots = $T/no-such-ark.pem|; s|^secret_file = .*|secret_file = $T/no-such-secret|" "$T/bad.conf"
printf 'pin_sha256 = nothex\ntee = sgx\n[token mail]\nmeasurements = any\n' >>"$T/bad.conf"
cp "$T/keys/web/tls.crt" "$T/keys/web/ec.crt"
expect_problem all-at-once "\[broker\] nonce_ttl" "\[snp\] roots" "\[token web\] pin_sha256" \
	"\[token web\] tee" "\[broker\] secret_file" "token 'web': .*does not match" \
	"token 'mail'" "bad.conf: 7 problem\(s\)"
# (the warning that no SEV-SNP root is left is not a problem of its own)
check "all-at-once: one line per problem" \
	test "$(grep -E "bad.conf: \[|: token '" "$T/cc.err" | grep -vc "roots is not given")" = 7
cp "$T/ec.crt.saved" "$T/keys/web/ec.crt"
finish
