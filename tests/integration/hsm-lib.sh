# SPDX-License-Identifier: Apache-2.0
# Shared by the hsm-*.sh tests (docs/hsm.md): a private SoftHSMv2 token
# "hsm" (its own SOFTHSM2_CONF in $T) holding setup_world's keys of token
# web as private key objects "web/<label>" with their certificates, and a
# broker whose key store is that token.
need softhsm2-util pkcs11-tool openssl
[ -r "$SOFTHSM_SO" ] || skip_all "SoftHSMv2 ($SOFTHSM_SO) is not installed"

HSM_PIN=4711
HSM_P11="pkcs11-tool --module $SOFTHSM_SO --token-label hsm --login --pin $HSM_PIN"

# hsm_setup: the token, and web's keys (tls: RSA, ec: P-256) with their
# certificates in it, extractable (wrapped for the guest) and sensitive
hsm_setup() {
	mkdir -p "$T/hsm/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$T/hsm/tokens" >"$T/hsm/softhsm2.conf"
	export SOFTHSM2_CONF="$T/hsm/softhsm2.conf"
	softhsm2-util --init-token --free --label hsm --pin $HSM_PIN --so-pin 8642 >/dev/null ||
		bail "softhsm2-util --init-token failed"
	printf '%s\n' $HSM_PIN >"$T/hsm/pin"
	chmod 600 "$T/hsm/pin"
	hsm_import web/tls 01 "$T/keys/web/tls.key" "$T/keys/web/tls.crt"
	hsm_import web/ec 02 "$T/keys/web/ec.key" "$T/keys/web/ec.crt"
}

# hsm_import LABEL ID KEY [CERT [pkcs11-tool flags]]: put a key (and its
# certificate) in the token
hsm_import() {
	local label=$1 id=$2 key=$3 cert=${4:-} flags=${5:---extractable}
	$HSM_P11 --write-object "$key" --type privkey --label "$label" --id "$id" --sensitive $flags \
		>>"$T/hsm/import.log" 2>&1 || bail "cannot import $key into SoftHSM"
	[ -z "$cert" ] || $HSM_P11 --write-object "$cert" --type cert --label "$label" --id "$id" \
		>>"$T/hsm/import.log" 2>&1 || bail "cannot import $cert into SoftHSM"
}

# hsm_broker_conf: write_broker_conf, with the token as the key store
hsm_broker_conf() {
	write_broker_conf "$@"
	sed -i "/^\[keystore\]/,/^$/c\\
[keystore]\\
type = pkcs11\\
module = $SOFTHSM_SO\\
token = hsm\\
pin_file = $T/hsm/pin\\
" "$T/broker.conf"
}

# memdump PID OUT: every readable mapping of PID, read through
# /proc/PID/mem into OUT. Unlike a core dump this includes what the process
# marked MADV_DONTDUMP (OpenSSL's secure heap): all the memory it holds.
memdump() {
	local pid=$1 out=$2 range perms rest lo hi
	: >"$out"
	while read -r range perms rest; do
		case $perms in r*) ;; *) continue ;; esac
		case $rest in *"[vvar]"* | *"[vsyscall]"*) continue ;; esac
		lo=$((16#${range%-*}))
		hi=$((16#${range#*-}))
		dd if="/proc/$pid/mem" bs=1M iflag=skip_bytes,count_bytes skip=$lo count=$((hi - lo)) \
			status=none >>"$out" 2>/dev/null
	done <"/proc/$pid/maps"
	[ -s "$out" ]
}

# strace_reads LOG OUT: the bytes every read(2)-family call returned in an
# "strace -xx -s N -e trace=read,pread64,readv,recvfrom,recvmsg" log, as
# one binary file (for corescan)
strace_reads() {
	sed -n 's/^[0-9]* *\(read\|pread64\|recvfrom\)([0-9]*, "\(\(\\x[0-9a-f][0-9a-f]\)*\)".*/\2/p' "$1" |
		sed 's/\\x//g' | xxd -r -p >"$2"
}

# strace_opens LOG OUT: the openat(2) lines of such a log, paths decoded
# from -xx's hex
strace_opens() {
	local l
	grep 'openat(' "$1" | while IFS= read -r l; do printf '%b\n' "$l"; done >"$2"
}
