#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The core-dump scanner itself must be able to fail: key parts planted in a
# file (d little-endian at an odd offset, a PKCS#8 DER whose first 16 bytes a
# freed heap block's metadata overwrote, an Ed25519 seed, a tail of d) are
# found; public material alone is not. And gdb's gcore leaves the module's
# secure heap (MADV_DONTDUMP) out of the core, which the scans rely on.
. "$(dirname "$0")/lib.sh"
need openssl xxd gcore
SCAN="$top_builddir/tests/integration/corescan"
[ -x "$SCAN" ] || bail "$SCAN not built"

K="$T/k"
mkdir -p "$K"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa.pem" 2>/dev/null &&
	openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$K/ec.pem" &&
	openssl genpkey -algorithm ed25519 -out "$K/ed.pem" || bail "openssl genpkey failed"
KEYS="$K/rsa.pem $K/ec.pem $K/ed.pem"
# hex_field KEY FIELD: a field of 'openssl pkey -text' as bare big-endian hex
hex_field() {
	openssl pkey -in "$1" -noout -text | awk -v f="$2:" '
		$1 == f { on = 1; next } on && /^ / { gsub(/[ :]/, ""); h = h $0; next } on { exit }
		END { sub(/^(00)+/, "", h); print h }'
}
rev_hex() { fold -w2 | tac | tr -d '\n'; }
D=$(hex_field "$K/rsa.pem" privateExponent)
[ ${#D} -ge 500 ] || bail "cannot read d of the test key"

# the planted file: random bytes, then each part at a known offset
{
	head -c 4097 /dev/urandom                                   # d LE at 0x1001
	printf '%s' "$D" | rev_hex | xxd -r -p
	head -c 999 /dev/urandom
	head -c 16 /dev/urandom                                     # malloc's metadata
	openssl pkcs8 -topk8 -nocrypt -in "$K/ec.pem" -outform DER | tail -c +17
	head -c 333 /dev/urandom
	openssl pkey -in "$K/ed.pem" -outform DER | tail -c 32      # the Ed25519 seed
	head -c 100 /dev/urandom
} >"$T/planted"
"$SCAN" $KEYS -- "$T/planted" >"$T/planted.out" 2>&1
rc=$?
diag_stream <"$T/planted.out"
check "corescan exits 1 on a file holding key parts" test "$rc" -eq 1
check "  it finds the whole of d, little-endian, at the odd offset 0x1001" \
	grep -Eq 'rsa.pem rsa-d/le: core\+0x1001: bytes 0\.\.[0-9]+ of [0-9]+ \(whole\)' "$T/planted.out"
check "  it finds the EC scalar in a PKCS#8 DER with its first 16 bytes overwritten" \
	grep -q 'ec.pem ec-priv/be: core+' "$T/planted.out"
check "  and reports the DER from byte 16 on, where it encodes the scalar" \
	grep -Eq 'ec.pem pkcs8: core\+0x[0-9a-f]+: bytes (2[0-9]|3[0-9])\.\.[0-9]+ of' "$T/planted.out"
check "  it finds the Ed25519 seed" grep -q 'ed.pem ed25519-seed/be: core+.*(whole)' "$T/planted.out"
refuse "  it never prints key bytes" grep -qi "${D:0:16}\|$(printf '%s' "$D" | rev_hex | cut -c1-16)" "$T/planted.out"

# a partial copy: the last 20 bytes of d, found with 16-byte windows only
{ head -c 64 /dev/urandom; printf '%s' "$D" | tail -c 40 | xxd -r -p; head -c 64 /dev/urandom; } >"$T/tail"
check "a 20-byte tail of d is found with 16-byte windows" \
	bash -c "'$SCAN' -w 16 $KEYS -- '$T/tail' | grep -Eq 'rsa-d/be: core.0x40: bytes 2[0-9]+[.][.]2[0-9]+ of'"
check "  and not with 32-byte windows (-w works)" "$SCAN" -w 32 $KEYS -- "$T/tail"

# public material only: certificates, public keys, n in both byte orders
openssl req -x509 -key "$K/rsa.pem" -subj /CN=pub -days 1 -out "$K/rsa.crt" 2>/dev/null
N=$(hex_field "$K/rsa.pem" modulus)
{
	for k in $KEYS; do openssl pkey -in "$k" -pubout; openssl pkey -in "$k" -pubout -outform DER; done
	cat "$K/rsa.crt"; openssl x509 -in "$K/rsa.crt" -outform DER
	printf '%s' "$N" | xxd -r -p; printf '%s' "$N" | rev_hex | xxd -r -p
	head -c 100000 /dev/urandom
} >"$T/public"
check "corescan exits 0 on public material only (certificates, public keys, n)" \
	"$SCAN" $KEYS -- "$T/public"
"$SCAN" $KEYS -- "$T/planted" /nonexistent >/dev/null 2>&1
check "corescan exits 2 on a missing core" test $? -eq 2
"$SCAN" "$K/rsa.crt" -- "$T/public" >/dev/null 2>&1
check "corescan exits 2 on a key file that is not a private key" test $? -eq 2

# gcore and MADV_DONTDUMP: the module's secure heap is not in the core
setup_world
start_broker
coproc PROBE { exec "$AK_PROBE" "$AK_MODULE" hold 1234 2>&1; }
AK_PIDS="$AK_PIDS $PROBE_PID"
pid=""
while read -r -t 30 -u "${PROBE[0]}" line; do
	case $line in ready*) pid=${line#ready }; break ;; esac
done
[ -n "$pid" ] || bail "p11probe hold did not get ready"
# the mappings the kernel marks "dd" (do not dump)
awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); sub(/^0+/, "", r[1]) } /^VmFlags:.* dd/ { print r[1] }' \
	"/proc/$pid/smaps" >"$T/dd"
check "the logged-in process has a MADV_DONTDUMP mapping (the secure heap)" test -s "$T/dd"
timeout 120 gcore -o "$T/probe" "$pid" >"$T/gcore.log" 2>&1 || { diag_stream <"$T/gcore.log"; bail "gcore failed"; }
"$SCAN" -l "$T/probe.$pid" >"$T/loads" || bail "corescan -l failed"
check "gcore writes none of its bytes into the core" bash -c "
	while read -r start; do
		awk -v s=0x\$start '\$2 == s && \$5 != 0 { bad = 1 } END { exit bad }' '$T/loads' || exit 1
	done <'$T/dd'"
echo quit >&"${PROBE[1]}"
wait "$PROBE_PID"
rm -f "$T/probe.$pid"
finish
