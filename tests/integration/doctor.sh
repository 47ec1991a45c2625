#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# issue 11 item 6: attestkey doctor, on a guest (the module's configuration,
# evidence, brokers, TLS trust, clock, public objects, an attested login
# through the real module) and on the broker host (--broker). A good set-up
# passes every line; a broken config, an unreachable broker and a wrong CA
# each give their own FAIL line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/httpfixture-lib.sh"
need openssl

setup_world
start_broker
printf '\n' >"$T/pin.empty"

# doctor NAME [OPTIONS...]: run the guest's checks on $T/NAME.conf (the
# module's), output in $T/NAME.out, exit status in $T/NAME.rc
doctor() {
	local name=$1
	shift
	"$AK_TOOL" doctor --conf "$T/$name.conf" --module "$AK_MODULE" "$@" \
		>"$T/$name.out" 2>"$T/$name.err" </dev/null
	echo $? >"$T/$name.rc"
}
# has NAME DESCRIPTION PATTERN: ok when a line of NAME's output matches
has() {
	if grep -Eq -- "$3" "$T/$1.out"; then ok "$2"; else
		not_ok "$2"; diag "no line matches: $3"; diag_stream <"$T/$1.out"; fi
}
hasnt() {
	if grep -Eq -- "$3" "$T/$1.out"; then
		not_ok "$2"; diag "a line matches: $3"; diag_stream <"$T/$1.out"; else ok "$2"; fi
}
rc_is() {
	if [ "$(cat "$T/$1.rc")" = "$2" ]; then ok "$1: exit status $2"; else
		not_ok "$1: exit status $2"; diag "got $(cat "$T/$1.rc")"; diag_stream <"$T/$1.out"; fi
}

# ---- a good set-up: every check passes --------------------------------------
cp "$T/attestkey.conf" "$T/good.conf"
doctor good --pin-file "$T/pin.empty"
rc_is good 0
hasnt good "good: no FAIL and no warn line" '^(FAIL|warn)'
has good "good: config syntax and permissions" '^ok +config .*good.conf: syntax and permissions'
# issue 12: the lease thresholds of each token, the default grace first
has good "good: the lease line shows renewal share and max_offline" \
	"^ok +lease +token 'web': renewal at 60-80 % of the broker's lease; max_offline = 3600 s \(\[module\]\)"
cp "$T/attestkey.conf" "$T/grace.conf"
printf 'max_offline = 120\n' >>"$T/grace.conf" # the last section: [token web]
doctor grace --pin-file "$T/pin.empty"
has grace "a token's own max_offline is reported as such" \
	"^ok +lease +token 'web': .*max_offline = 120 s \(\[token\]\).*fork children keep the inherited keys"
has good "good: evidence interface and user" "^ok +evidence +snp evidence from sim, usable by user $(id -un)"
has good "good: broker reachable" "^ok +broker +$BROKER_URL answers \(HTTP 200"
has good "good: TLS trust with the configured CA" "^ok +tls +$BROKER_URL: certificate verified with ca = $T/pki/broker-ca.pem"
has good "good: clock skew shown" '^ok +clock +skew against https://127.0.0.1:[0-9]+: [+-][0-9]+s'
has good "good: public objects listed" "^ok +public +token 'web': 2 key\(s\) listed"
has good "good: attested login through the module, keys released" \
	"^ok +login +token 'web': attested login, 2 private key\(s\): .*2 key\(s\) released by $BROKER_URL"
# the PIN from standard input (--pin) instead of a file
"$AK_TOOL" doctor --conf "$T/good.conf" --module "$AK_MODULE" --pin <"$T/pin.empty" >"$T/stdin.out" 2>&1
has stdin "--pin reads the PIN from standard input" "^ok +login +token 'web': attested login"
# without a PIN: the login is not tried, which is only a warning
cp "$T/attestkey.conf" "$T/nopin.conf"
doctor nopin
rc_is nopin 0
has nopin "no PIN: the login is not tried (warn, with what to do)" '^warn +login +not tried: give the PIN'

# a module that cannot be loaded: the login line says so and how to fix it
cp "$T/attestkey.conf" "$T/nomod.conf"
"$AK_TOOL" doctor --conf "$T/nomod.conf" --module "$T/nonexistent.so" --pin-file "$T/pin.empty" \
	>"$T/nomod.out" 2>&1
has nomod "a module that cannot be loaded: FAIL login naming --module" \
	"^FAIL login +cannot load the module $T/nonexistent.so: .*--module"
refuse "--max-skew that is not a number is a usage error" \
	"$AK_TOOL" doctor --conf "$T/good.conf" --max-skew soon
refuse "an extra argument is a usage error" "$AK_TOOL" doctor --conf "$T/good.conf" extra

# ---- a broken config (syntax): its own FAIL line naming the line -----------
cp "$T/attestkey.conf" "$T/syntax.conf"
echo "this line is not key = value" | tr -d = >>"$T/syntax.conf"
doctor syntax
rc_is syntax 1
has syntax "broken config: FAIL config naming the file and line" \
	'^FAIL config +.*syntax.conf:[0-9]+: syntax error'
cp "$T/attestkey.conf" "$T/key.conf"
sed -i 's/^timeout = 10/timeout = soon/' "$T/key.conf"
doctor key
has key "bad value: FAIL config naming the key" "^FAIL config +.*key.conf:[0-9]+: timeout = 'soon' is not a number"
# permissions: the module refuses a file others may change
cp "$T/attestkey.conf" "$T/perm.conf"
chmod g+w "$T/perm.conf"
doctor perm
rc_is perm 1
has perm "group-writable config: FAIL config saying what to do" \
	'^FAIL config +.*perm.conf is writable by group/others .*chmod go-w'
doctor missing
has missing "missing config: FAIL config" '^FAIL config +.*missing.conf: No such file'

# ---- an unreachable broker: its own FAIL line ------------------------------
sed 's|^brokers = .*|brokers = https://127.0.0.1:1|' "$T/attestkey.conf" >"$T/unreach.conf"
doctor unreach --pin-file "$T/pin.empty"
rc_is unreach 1
has unreach "unreachable broker: FAIL broker with what to do" \
	'^FAIL broker +https://127.0.0.1:1 is unreachable: .*start attestkey-broker there'
hasnt unreach "unreachable broker: no FAIL config, no FAIL tls" '^FAIL (config|tls)'
has unreach "unreachable broker: the login fails and says why" "^FAIL login +token 'web'.*CKR_DEVICE_ERROR.*no key broker could be reached"
# a second, working broker: the first FAILs, the rest passes
sed "s|^brokers = .*|brokers = https://127.0.0.1:1, $BROKER_URL|" "$T/attestkey.conf" >"$T/failover.conf"
doctor failover
has failover "two brokers, one down: FAIL for that one" '^FAIL broker +https://127.0.0.1:1 is unreachable'
has failover "two brokers, one down: ok for the other" "^ok +tls +$BROKER_URL"

# ---- a wrong CA: its own FAIL line -----------------------------------------
sed "s|^ca = .*|ca = $T/pki/web-ca.pem|" "$T/attestkey.conf" >"$T/wrongca.conf"
doctor wrongca
rc_is wrongca 1
has wrongca "wrong CA: the broker is reachable" "^ok +broker +$BROKER_URL answers"
has wrongca "wrong CA: FAIL tls naming the CA and what to do" \
	"^FAIL tls +$BROKER_URL is not trusted with ca = $T/pki/web-ca.pem: .*set \[module\] ca"
hasnt wrongca "wrong CA: no FAIL config, no FAIL broker" '^FAIL (config|broker)'

# ---- clock skew: a look-alike broker (openssl s_server -HTTP serving a
# complete response) whose Date is two hours behind this host
mkdir -p "$T/skew/v1"
printf 'HTTP/1.0 200 OK\r\nDate: %s\r\nContent-Type: application/json\r\n\r\n{"status":"ok"}\n' \
	"$(date -u -d '-2 hours' '+%a, %d %b %Y %H:%M:%S GMT')" >"$T/skew/v1/health"
(cd "$T/skew" && exec openssl s_server -accept 127.0.0.1:0 -cert "$T/pki/broker.crt" \
	-key "$T/pki/broker.key" -HTTP) >"$T/skew.log" 2>&1 </dev/null &
AK_PIDS="$AK_PIDS $!"
for _ in $(seq 100); do grep -q '^ACCEPT' "$T/skew.log" && break; sleep 0.1; done
skew_port=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$T/skew.log")
sed "s|^brokers = .*|brokers = https://127.0.0.1:$skew_port|" "$T/attestkey.conf" >"$T/skew.conf"
doctor skew
has skew "a clock two hours off the broker's: warn clock, with the skew and what to do" \
	"^warn clock +skew against https://127.0.0.1:$skew_port: \+7[12][0-9][0-9]s \(this host ahead of the broker.*synchronise"
doctor skew --max-skew 86400
has skew "--max-skew above the skew: ok clock" "^ok +clock +skew against https://127.0.0.1:$skew_port: \+7[12][0-9][0-9]s"

# ---- evidence: an interface this user cannot use ---------------------------
sed 's|^tee = sim|tee = sev-guest\nsev_guest_device = /nonexistent/sev-guest|' "$T/attestkey.conf" >"$T/noev.conf"
doctor noev
has noev "no TEE interface: FAIL evidence naming the interface and the user" \
	"^FAIL evidence +tee = sev-guest, user $(id -un) \(uid $(id -u)\): .*sev-guest /nonexistent/sev-guest: absent"

# ---- public objects: a token the broker does not know -----------------------
cp "$T/attestkey.conf" "$T/unknown.conf"
printf '\n[token mail]\nlabel = mail\n' >>"$T/unknown.conf"
doctor unknown
has unknown "unknown token on the broker: FAIL public" "^FAIL public +token 'mail': HTTP 404 .*unknown_token"

# ---- the PIN: right and wrong -----------------------------------------------
# docs/pin.md: pin_sha256 = SALT_HEX:HASH_HEX, HASH = SHA-256(salt || PIN)
hash=$(printf '\001\002\003\004%s' 4711 | openssl dgst -sha256 -r | cut -d' ' -f1)
stop_broker
write_broker_conf "pin_sha256 = 01020304:$hash"
start_broker
cp "$T/attestkey.conf" "$T/pin.conf"
echo 4711 >"$T/pin.right"
echo 1234 >"$T/pin.wrong"
cp "$T/pin.conf" "$T/pinok.conf"
doctor pinok --pin-file "$T/pin.right"
rc_is pinok 0
has pinok "right PIN: attested login ok" "^ok +login +token 'web': attested login, 2 private key"
cp "$T/pin.conf" "$T/pinbad.conf"
doctor pinbad --pin-file "$T/pin.wrong"
rc_is pinbad 1
has pinbad "wrong PIN: a clear FAIL line" "^FAIL login +token 'web': the broker refused the PIN \(CKR_PIN_INCORRECT\): .*pin_incorrect"
refuse "--pin-file of a missing file is a usage error" \
	"$AK_TOOL" doctor --conf "$T/pin.conf" --pin-file "$T/nonexistent"

# ---- the broker host ---------------------------------------------------------
# doctor_broker NAME: attestkey doctor --broker $T/NAME.conf
doctor_broker() {
	"$AK_TOOL" doctor --broker "$T/$1.conf" --timeout 5 >"$T/$1.out" 2>"$T/$1.err"
	echo $? >"$T/$1.rc"
}
cp "$T/broker.conf" "$T/bgood.conf"
echo "kds_url = none" >>"$T/bgood.conf"
# [snp] is before [token web]: move the key into it
sed -i '/^kds_url = none$/d; s|^\[snp\]$|[snp]\nkds_url = none|' "$T/bgood.conf"
doctor_broker bgood
rc_is bgood 0
has bgood "broker: --check-config's checks pass" '^ok +config +.*bgood.conf: attestkey-broker --check-config.s checks: 1 token'
has bgood "broker: the key store holds the token's keys" "^ok +keystore +token 'web', store 'default' \(file\): 2 key"
has bgood "broker: KDS not used (kds_url = none)" '^ok +kds +AMD KDS: not used'
# a broken broker config: each problem its own FAIL line
sed 's|^nonce_ttl = .*|nonce_ttl = forever|; s|^dir = .*|dir = /nonexistent/keys|' "$T/bgood.conf" >"$T/bbad.conf"
doctor_broker bbad
rc_is bbad 1
has bbad "broken broker config: FAIL naming nonce_ttl" '^FAIL config +.*\[broker\] nonce_ttl'
has bbad "broken broker config: FAIL naming the key store" '^FAIL config +.*/nonexistent/keys'
# KDS: a look-alike serving a certificate chain answers; a closed port does not
mkdir -p "$T/kds/vcek/v1/Milan"
cp "$T/sim/cert_chain.pem" "$T/kds/vcek/v1/Milan/cert_chain"
start_httpfixture kds "$T/kds"
sed "s|^kds_url = none|kds_url = $FIXTURE_URL|" "$T/bgood.conf" >"$T/bkds.conf"
doctor_broker bkds
rc_is bkds 0
has bkds "broker: KDS reachable" "^ok +kds +AMD KDS $FIXTURE_URL answers \(HTTP 200"
sed "s|^kds_url = none|kds_url = http://127.0.0.1:1|" "$T/bgood.conf" >"$T/bnokds.conf"
doctor_broker bnokds
rc_is bnokds 1
has bnokds "broker: KDS unreachable is a FAIL with what to do" '^FAIL kds +AMD KDS http://127.0.0.1:1 is unreachable: .*offline'
# Intel PCS: with [tdx] roots the broker may fetch collateral; pcs_url = none
# is not contacted, a look-alike answers, a closed port does not
"$AK_TOOL" sim init --tee tdx "$T/tdxsim" >/dev/null || bail "attestkey sim init --tee tdx failed"
BROKER_TDX_ROOTS="$T/tdxsim/root_ca.pem"
write_broker_conf
sed 's|^\[snp\]$|[snp]\nkds_url = none|' "$T/broker.conf" >"$T/btdx.conf"
doctor_broker btdx
rc_is btdx 0
has btdx "broker with [tdx]: PCS not used (pcs_url = none)" '^ok +pcs +Intel PCS: not used'
mkdir -p "$T/pcs/tdx/certification/v4/qe"
cp "$T/tdxsim/collateral/qe_identity.json" "$T/pcs/tdx/certification/v4/qe/identity"
start_httpfixture pcs "$T/pcs"
sed "s|^pcs_url = none|pcs_url = $FIXTURE_URL|" "$T/btdx.conf" >"$T/bpcs.conf"
doctor_broker bpcs
rc_is bpcs 0
has bpcs "broker: PCS reachable" "^ok +pcs +Intel PCS $FIXTURE_URL answers \(HTTP 200"
sed "s|^pcs_url = none|pcs_url = http://127.0.0.1:1|" "$T/btdx.conf" >"$T/bnopcs.conf"
doctor_broker bnopcs
rc_is bnopcs 1
has bnopcs "broker: PCS unreachable is a FAIL" '^FAIL pcs +Intel PCS http://127.0.0.1:1 is unreachable'
finish
