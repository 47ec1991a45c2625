#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# SIGHUP reloads the broker's configuration (docs/attestkey-broker.8.md,
# SIGNALS): logins in flight while it reloads again and again all succeed;
# a policy change takes effect at the next login; a file that fails to
# parse keeps the previous policy and the log names file, section and key;
# a restart-only key is kept with a warning; a new key store serves the
# next login; per-token evidence types
# ([token] tee) narrow the challenge and refuse other evidence.
. "$(dirname "$0")/lib.sh"
need curl jq

setup_world_tdx
CURL="curl -s --cacert $T/pki/broker-ca.pem -H Content-Type:application/json"
start_broker

login() { "$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$1.out" 2>"$T/$1.err"; }
released() { grep -q "^login: CKR_OK\$" "$T/$1.out" && grep -q "private_keys: 2" "$T/$1.out"; }
challenge_tees() { $CURL --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge" | jq -c .tee; }

login baseline
check "baseline: a TDX login releases both keys" released baseline
check "by default the challenge lists every type the broker verifies" \
	test "$(challenge_tees)" = '["snp","tdx"]'
port=$(cat "$T/broker.port")

# 1. logins in flight while SIGHUP reloads repeatedly: two configurations
# that both allow the guest, swapped back and forth
cp "$T/broker.conf" "$T/conf.a"
cp "$T/conf.a" "$T/conf.b"
echo "measurements = $OTHER_MEASUREMENT" >>"$T/conf.b" # a list: repeats join
worker() {
	local i
	for i in $(seq 6); do
		"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/flight-$1-$i.out" 2>&1
	done
	echo done >"$T/flight-$1.done"
}
# the guest takes 200 ms between challenge and release, so that reloads
# fall between a login's nonce and its release
write_module_conf "delay_ms = 200"
workers=""
for w in 1 2 3; do
	worker "$w" &
	workers="$workers $!"
done
n=0
while [ "$(ls "$T"/flight-*.done 2>/dev/null | wc -l)" -lt 3 ]; do
	n=$((n + 1))
	if [ $((n % 2)) = 1 ]; then cp "$T/conf.b" "$T/broker.conf"; else cp "$T/conf.a" "$T/broker.conf"; fi
	hup reloads || break
done
wait $workers
write_module_conf
ok_logins=$(grep -l "^login: CKR_OK\$" "$T"/flight-*-*.out | xargs grep -l "private_keys: 2" | wc -l)
diag "$n reload(s) while 18 logins ran; $ok_logins released both keys"
check "every login in flight during the reloads released both keys" test "$ok_logins" = 18
check "the broker reloaded at least once while logins were in flight" test "$n" -ge 1
check "no reload was refused" test "$(refused)" = 0
check "the broker still listens on the same port" test "$(cat "$T/broker.port")" = "$port"

# 2. a policy change takes effect at the next login
cp "$T/conf.a" "$T/broker.conf"
sed -i "s/^mrtd = .*/mrtd = $OTHER_MRTD/" "$T/broker.conf"
check "reload with another MRTD" hup reloads
before=$(wc -l <"$T/audit.jsonl")
login policy
check "policy: the next login is refused" grep -q "^login: CKR_FUNCTION_REJECTED\$" "$T/policy.out"
check "policy: the broker refused it by the new policy" \
	bash -c "tail -n +$((before + 1)) '$T/audit.jsonl' | grep -q '\"measurement_not_allowed\".*MRTD $TDX_MRTD'"
cp "$T/conf.a" "$T/broker.conf"
check "reload with the guest's MRTD again" hup reloads
login policy-back
check "policy: the guest's MRTD is released again" released policy-back

# 3. a file that fails to parse keeps the previous policy
sed -i "s/^mrtd = .*/mrtd = zz/" "$T/broker.conf"
check "a broken file: SIGHUP is answered with a refusal" hup refused
check "the refusal names the file, the section and the key" \
	grep -q "reload refused.*$T/broker.conf: \[token web\] mrtd" "$T/broker.log"
check "the refusal is one line" test "$(grep -c "reload refused" "$T/broker.log")" = 1
login broken
check "broken file: the previous policy still releases" released broken
# the keys the file names must be there too (checked as at the start)
cp "$T/conf.a" "$T/broker.conf"
printf '[token mail]\nmeasurements = %s\n' "$MEASUREMENT" >>"$T/broker.conf"
check "a token without keys: the reload is refused" hup refused
check "the refusal names the token whose keys are missing" \
	grep -q "reload refused.*token 'mail'" "$T/broker.log"

# 4. restart-only keys keep their running value, with a warning
cp "$T/conf.a" "$T/broker.conf"
sed -i "s/^listen = .*/listen = 127.0.0.1:1/" "$T/broker.conf"
head -c 32 /dev/urandom >"$T/secret2" && chmod 600 "$T/secret2"
sed -i "s|^secret_file = .*|secret_file = $T/secret2|" "$T/broker.conf"
check "reload with another listen address and secret" hup reloads
check "the log warns that listen needs a restart" grep -q "\[broker\] listen changed: it takes effect at a restart" "$T/broker.log"
check "the log warns that secret_file needs a restart" grep -q "\[broker\] secret_file changed" "$T/broker.log"
check "the broker still listens where it did" curl -s --cacert "$T/pki/broker-ca.pem" "$BROKER_URL/v1/health"
login restart-only
check "logins go on with the running secret" released restart-only

# 5. the key store reloads too: another directory, with one key less
cp -a "$T/keys" "$T/keys2"
rm "$T/keys2/web/ec.key" "$T/keys2/web/ec.crt"
cp "$T/conf.a" "$T/broker.conf"
sed -i "s|^dir = .*|dir = $T/keys2|" "$T/broker.conf"
check "reload with another key directory" hup reloads
login keystore
check "keystore: the next login releases the new store's one key" \
	bash -c "grep -q '^login: CKR_OK\$' '$T/keystore.out' && grep -q 'private_keys: 1' '$T/keystore.out'"
cp "$T/conf.a" "$T/broker.conf"
check "reload with the first key directory" hup reloads
login keystore-back
check "keystore: both keys again" released keystore-back

# 6. per-token evidence types: tee = snp on a broker that verifies TDX
cp "$T/conf.a" "$T/broker.conf"
echo "tee = snp" >>"$T/broker.conf"
check "reload with tee = snp" hup reloads
check "the challenge lists only the token's types" test "$(challenge_tees)" = '["snp"]'
login tee
check "tee: a TDX guest's login is refused" grep -q "^login: CKR_FUNCTION_REJECTED\$" "$T/tee.out"
check "tee: the module names the token's list" grep -q "it verifies: snp" "$T/tee.err"
# a client that sends TDX evidence anyway is refused by the broker
nonce=$($CURL --data-binary '{"token":"web"}' "$BROKER_URL/v1/challenge" | jq -r .nonce)
$CURL --data-binary "{\"token\":\"web\",\"nonce\":\"$nonce\",\"tee\":\"tdx\",\"evidence\":{},\"pubkey\":{}}" \
	"$BROKER_URL/v1/keys" >"$T/tee-keys.json"
check "tee: TDX evidence is refused with tee_unsupported" jq -e '.error == "tee_unsupported"' "$T/tee-keys.json"
check "tee: the refusal names the token's types" \
	jq -e '.message | test("token .web. does not accept tdx evidence \\(its tee: snp\\)")' "$T/tee-keys.json"
sed -i "s/^tee = .*/tee = snp tdx/" "$T/broker.conf"
check "reload with tee = snp tdx" hup reloads
login tee-both
check "tee = snp tdx: the TDX login releases again" released tee-both
# tdx on a broker without [tdx] roots is a configuration error
sed -i '/^\[tdx\]/,/^$/d' "$T/broker.conf"
check "tee = tdx without [tdx] roots: the reload is refused" hup refused
check "the refusal names [token web] tee" grep -q "reload refused.*\[token web\] tee: tdx needs \[tdx\] roots" "$T/broker.log"

# 7. the broker ends cleanly after all this (ASan/LSan report at exit)
kill "$BROKER_PID"
wait "$BROKER_PID"
check "the broker exits 0 after the reloads" test $? = 0
BROKER_PID=""
check "no sanitizer report" bash -c "! grep -q 'ERROR: \(Address\|Leak\)Sanitizer\|runtime error' '$T/broker.log'"
finish
