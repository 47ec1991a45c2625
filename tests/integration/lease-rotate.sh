#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 12 (docs/lifecycle.md "Rotation in place"): a new version of a key
# in the broker's file store (attestkey key rotate) reaches a running
# application at its next renewal: the same object handle signs with the
# new key, its certificate object changes with it, and not one signature
# fails or disagrees with the certificate the token serves around it. With
# rotate_in_place = no the keys held stay until the next login.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lease-lib.sh"

lease_world 3
spki_sha256() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1; }
old=$(spki_sha256 "$T/keys/web/tls.key")

"$HOST" "$AK_MODULE" sign 10 1234 >"$T/rot.out" 2>"$T/rot.err" &
host=$!
AK_PIDS="$AK_PIDS $host"
check "rotate: the application logged in" wait_ready "$T/rot.out"
check "rotate: it signs with the first key" wait_for "$T/rot.out" '^key_found: yes$'
"$AK_TOOL" key rotate --store "file:$T/keys/web" --cert self-signed --subject /CN=localhost tls >"$T/rotate.log" 2>&1
check "rotate: attestkey key rotate makes a new version" test $? = 0
new=$(spki_sha256 "$T/keys/web/tls.key")
check "rotate: the store's current key changed" test "$new" != "$old"
wait "$host"
check "rotate: a renewal came after the rotation" test "$(renewal_ids "$T/rot.err" | wc -l)" -ge 1
check "rotate: not one signature failed" test "$(field "$T/rot.out" signs_failed)" = 0
check "rotate: every signature verifies with the certificate served around it" \
	test "$(field "$T/rot.out" verify_mismatch)" = 0
check "rotate: the signatures verified with two keys, the old and the new" \
	test "$(field "$T/rot.out" spki_seen)" = 2
check "rotate: the same handle signs with the new key at the end" \
	test "$(field "$T/rot.out" last_spki)" = "$new"
diag "old key $old, new key $new, last verified $(field "$T/rot.out" last_spki)"

# rotate_in_place = no (for applications that cache a key's public part,
# such as libp11): the renewals go on with the keys held, one line says a
# new version waits, and the next login gets it
token_conf "rotate_in_place = no"
"$HOST" "$AK_MODULE" sign 8 1234 >"$T/held.out" 2>"$T/held.err" &
host=$!
AK_PIDS="$AK_PIDS $host"
check "held: the application logged in" wait_ready "$T/held.out"
"$AK_TOOL" key rotate --store "file:$T/keys/web" --cert self-signed --subject /CN=localhost tls \
	>"$T/rotate3.log" 2>&1
check "held: attestkey key rotate makes a third version" grep -q 'rotated to version 3' "$T/rotate3.log"
newer=$(spki_sha256 "$T/keys/web/tls.key")
wait "$host"
check "held: renewals went on" test "$(renewal_ids "$T/held.err" | wc -l)" -ge 1
check "held: one line says a new version waits for the next login" \
	test "$(grep -c 'other key versions than this process holds' "$T/held.err")" = 1
check "held: not one signature failed" test "$(field "$T/held.out" signs_failed)" = 0
check "held: every signature verified with one key, the one of the login" \
	test "$(field "$T/held.out" spki_seen)" = 1 -a "$(field "$T/held.out" last_spki)" = "$new"
"$HOST" "$AK_MODULE" sign 1 1234 >"$T/next.out" 2>"$T/next.err"
check "held: the next login signs with the third version" \
	test "$(field "$T/next.out" last_spki)" = "$newer"

check "no sanitizer report" bash -c "! grep -q 'ERROR: \(Address\|Leak\|Thread\)Sanitizer\|runtime error' '$T'/*.err"
finish
