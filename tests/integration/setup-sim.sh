#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# issue 11 item 7: attestkey setup sim DIR writes a working set without
# hardware; this test runs the commands it prints, exactly as printed (the
# binaries from the build tree first on PATH): the broker from the written
# configuration, attestkey doctor, pkcs11-tool signing through the module,
# openssl verifying the signature, nginx serving TLS with the token's key
# and curl fetching from it. docs/quickstart.md shows the same commands.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/httpfixture-lib.sh"
need openssl pkcs11-tool curl

PATH="$top_builddir:$PATH"
export PATH

# free_port: a loopback port nothing listens on now (the fixture's, after
# it stopped)
free_port() {
	start_httpfixture port "$T"
	stop_httpfixture
	echo "${FIXTURE_URL##*:}"
}

# try_set NAME [SETUP OPTIONS...]: attestkey setup sim $T/NAME, then each
# printed "  $ " command in one shell; one TAP line per command. A command
# ending in '&' is a server: the test waits for its port, stops it at the end.
try_set() {
	local name=$1 dir="$T/$1" port nport
	shift
	port=$(free_port)
	nport=$(free_port)
	if "$AK_TOOL" setup sim "$dir" --port "$port" --nginx-port "$nport" \
		--module "$AK_MODULE" "$@" >"$T/$name.setup" 2>&1; then
		ok "$name: setup sim writes the set"
	else
		not_ok "$name: setup sim writes the set"; diag_stream <"$T/$name.setup"; return
	fi
	sed -n 's/^  \$ //p' "$T/$name.setup" >"$T/$name.cmds"
	{
		echo "set -u"
		echo ": >'$T/$name.pids'"
		n=0
		while IFS= read -r cmd; do
			n=$((n + 1))
			case "$cmd" in
			*" &")
				# the sanitizer build: nginx loads the module (ASan first)
				case "$cmd" in *nginx*) cmd="$AK_RUN $cmd" ;; esac
				printf '%s\n' "$cmd"
				echo "echo \$! >>'$T/$name.pids'"
				case "$cmd" in
				*attestkey-broker*) p=$port ;;
				*) p=$nport ;;
				esac
				echo "for _ in \$(seq 100); do curl -sk -o /dev/null https://127.0.0.1:$p/ && break; sleep 0.1; done"
				echo "curl -sk -o /dev/null https://127.0.0.1:$p/; echo \"step $n \$?\"" ;;
			pkcs11-tool*)
				printf '%s\n' "$AK_RUN $cmd"
				echo "echo \"step $n \$?\"" ;;
			*)
				printf '%s\n' "$cmd"
				echo "echo \"step $n \$?\"" ;;
			esac
		done <"$T/$name.cmds"
	} >"$T/$name.sh"
	(cd "$T" && sh "$T/$name.sh") >"$T/$name.out" 2>&1
	for p in $(cat "$T/$name.pids" 2>/dev/null); do AK_PIDS="$AK_PIDS $p"; done
	n=0
	while IFS= read -r cmd; do
		n=$((n + 1))
		if grep -q "^step $n 0\$" "$T/$name.out"; then ok "$name: step $n: $cmd"; else
			not_ok "$name: step $n: $cmd"; diag_stream <"$T/$name.out"; fi
	done <"$T/$name.cmds"
	for p in $(cat "$T/$name.pids" 2>/dev/null); do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}

# the default: an RSA key, pkcs11-tool, openssl and nginx
try_set one
has() {
	if grep -Eq -- "$3" "$T/$1"; then ok "$2"; else not_ok "$2"; diag "no line matches: $3"; diag_stream <"$T/$1"; fi
}
has one.out "doctor: every check ok" '^0 check\(s\) failed, 0 warning\(s\)'
has one.out "doctor: the attested login released the key" "^ok +login +token 'web': attested login, 1 private key"
has one.out "openssl: the token's signature verifies" '^Verified OK'
has one.out "nginx: served TLS with the token's key" '^hello from a key that never touched this disk'
if grep -q '"event": *"release"' "$T/one/audit.jsonl" 2>/dev/null; then ok "the broker audited the releases"; else
	not_ok "the broker audited the releases"; fi
has one.setup "the broker listens on the port given (no port_file)" "^  broker.conf     the broker, on 127.0.0.1:[0-9]+"
if grep -q '^listen = 127.0.0.1:[0-9]*$' "$T/one/broker.conf" && ! grep -q port_file "$T/one/broker.conf"; then
	ok "broker.conf: a fixed port, no port_file"; else not_ok "broker.conf: a fixed port, no port_file"; fi
# the secrets are the user's only
check "the challenge secret and the TLS key are mode 0600" \
	sh -c "[ \"\$(stat -c %a '$T/one/secret' '$T/one/pki/broker.key' | sort -u)\" = 600 ]"
check "the broker's own --check-config accepts the written configuration" \
	"$AK_BROKER" --check-config -c "$T/one/broker.conf"
# docs/quickstart.md step 3: the broker host's side of the written set
attestkey doctor --broker "$T/one/broker.conf" >"$T/one.broker" 2>&1
has one.broker "doctor --broker on the written configuration: every check ok" \
	'^0 check\(s\) failed, 0 warning\(s\)'
has one.broker "doctor --broker: the key store holds the generated key" \
	"^ok +keystore +token 'web', store 'default' \(file\): 1 key"

# an EC key in another token
try_set two --token mail --type p256
has two.out "EC key: the ECDSA signature verifies" '^Verified OK'
has two.out "EC key: doctor logs in to token mail" "^ok +login +token 'mail'"

# refusals
refuse "a second setup into the same DIR is refused without --force" \
	"$AK_TOOL" setup sim "$T/one" --module "$AK_MODULE"
if "$AK_TOOL" setup sim "$T/one" 2>&1 | grep -q -- '--force'; then ok "the refusal says to use --force"; else
	not_ok "the refusal says to use --force"; fi
old=$(openssl x509 -in "$T/one/keys/web/tls.crt" -pubkey -noout)
check "--force writes a new set over it" "$AK_TOOL" setup sim "$T/one" --force
new=$(openssl x509 -in "$T/one/keys/web/tls.crt" -pubkey -noout)
if [ "$old" != "$new" ]; then ok "--force: a new key, not the old one"; else not_ok "--force: a new key, not the old one"; fi
refuse "--port 0 is refused (a fixed port)" "$AK_TOOL" setup sim "$T/p0" --port 0
refuse "--token with a '/' is refused" "$AK_TOOL" setup sim "$T/bad" --token a/b
refuse "--type of an unknown type is refused" "$AK_TOOL" setup sim "$T/bad" --type dsa
refuse "setup without sim is a usage error" "$AK_TOOL" setup "$T/bad"
finish
