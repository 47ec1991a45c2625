#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 8 item 19: only C_Login waits on the network. Object searches before
# login are served from the public view's cache file (attestkey.conf(5)
# cache_dir), written by the background refresh and by every login; with
# the broker hung (SIGSTOP: connections are accepted, nothing answers) or
# gone, p11tool --list-all and pkcs11-tool -O answer at once, with the same
# objects. The module's timeout is 5 s, so a search that went to the
# network would take 5 s and fail the 2 s bound (a bound only a hang or a
# timeout can break). A cache file another user could have written is
# refused, with a message naming it.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool jq

setup_world
start_broker
sed -i 's/^timeout = .*/timeout = 5/' "$T/attestkey.conf"
registry_setup
P11="$AK_RUN pkcs11-tool --module $AK_MODULE"
CACHE="$T/cache/web.json"
have_p11tool=yes
command -v p11tool >/dev/null && [ -z "$AK_RUN" ] || have_p11tool=no

# fast "description" OUT COMMAND...: the command answers within 2 s; its
# standard output goes to OUT, its standard error to OUT.err
fast() {
	local d=$1 out=$2 t0 t1 rc
	shift 2
	t0=$(date +%s%N)
	"$@" >"$out" 2>"$out.err"
	rc=$?
	t1=$(date +%s%N)
	if [ "$rc" = 0 ] && [ $(((t1 - t0) / 1000000)) -lt 2000 ]; then
		ok "$d"
	else
		not_ok "$d"
		diag "exit $rc after $(((t1 - t0) / 1000000)) ms: $*"
		diag_stream <"$out.err"
	fi
}
objects() { grep -c -E '^(Public Key|Certificate|Private Key) Object' "$1" || true; }

# --- the cache, written by the background refresh and by a login ---------
check "no cache before the first search" test ! -e "$CACHE"
check "the background refresh of a long-running application fills the view" \
	$AK_RUN "$AK_PROBE" "$AK_MODULE" wait-public 10
check "  and writes the cache file, mode 0600" bash -c "test \"\$(stat -c %a '$CACHE')\" = 600"
check "  holding only public members (label, id, type, spki, cert) of both keys" \
	jq -e '(.keys|length)==2 and all(.keys[]; (keys - ["cert","id","label","spki","type"]) == [])' "$CACHE"
$P11 -O >"$T/up.txt" 2>"$T/up.err"
check "with the broker up, pkcs11-tool -O lists 2 public keys and 2 certificates" \
	test "$(objects "$T/up.txt")" = 4
cp -p "$CACHE" "$T/good.json"
if [ "$have_p11tool" = yes ]; then
	registry "p11tool --list-all 'pkcs11:token=web'" >"$T/p11tool-up.txt" 2>&1
	check "with the broker up, p11tool --list-all lists them" \
		grep -q 'Type: X.509 Certificate' "$T/p11tool-up.txt"
fi

# --- broker hung: accepts connections, never answers ----------------------
kill -STOP "$BROKER_PID"
fast "broker hung: pkcs11-tool -O answers within 2 s" "$T/hung.txt" $P11 -O
check "  with the same objects as with the broker up" cmp "$T/up.txt" "$T/hung.txt"
if [ "$have_p11tool" = yes ]; then
	fast "broker hung: p11tool --list-all answers within 2 s" "$T/p11tool-hung.txt" \
		registry "p11tool --list-all 'pkcs11:token=web'"
	check "  with the same objects as with the broker up" cmp "$T/p11tool-up.txt" "$T/p11tool-hung.txt"
else
	skip "broker hung: p11tool --list-all answers within 2 s" "p11tool not usable here (ASan build or not installed)"
fi
# fork() with the refresh stuck in the hung broker's handshake: the module
# stops and joins it first, so no thread of libcurl/GnuTLS/OpenSSL is caught
# mid-way in the child (nginx forks its workers after loading the key)
rm -f "$CACHE"
check "a fork during a background refresh happens with the refresh stopped (1 thread)" \
	$AK_RUN "$AK_PROBE" "$AK_MODULE" fork-refresh 300
cp -p "$T/good.json" "$CACHE"
kill -CONT "$BROKER_PID"

# --- broker gone ----------------------------------------------------------
stop_broker
fast "broker stopped: pkcs11-tool -O answers within 2 s" "$T/down.txt" $P11 -O
check "  with the same objects as with the broker up" cmp "$T/up.txt" "$T/down.txt"
if [ "$have_p11tool" = yes ]; then
	fast "broker stopped: p11tool --list-all answers within 2 s" "$T/p11tool-down.txt" \
		registry "p11tool --list-all 'pkcs11:token=web'"
	check "  with the same objects as with the broker up" cmp "$T/p11tool-up.txt" "$T/p11tool-down.txt"
fi

# --- a login writes the cache too -----------------------------------------
start_broker
sed -i 's/^timeout = .*/timeout = 5/' "$T/attestkey.conf"
rm -f "$CACHE"
check "a login with the broker up" $P11 --login --pin 1234 -O
check "  writes the cache file" jq -e '(.keys|length)==2' "$CACHE"
kill -STOP "$BROKER_PID"
fast "broker hung after that login: pkcs11-tool -O answers within 2 s" "$T/login.txt" $P11 -O
check "  with the same objects" cmp "$T/up.txt" "$T/login.txt"
kill -CONT "$BROKER_PID"
stop_broker

# --- refused cache files --------------------------------------------------
cp -p "$CACHE" "$T/good.json"
# refused DESCRIPTION MESSAGE: pkcs11-tool -O lists nothing and says why
refused() {
	$P11 -O >"$T/refused.txt" 2>&1
	check "$1: no objects" test "$(objects "$T/refused.txt")" = 0
	check "  and a warning naming the file: $2" grep -q "$CACHE.*$2" "$T/refused.txt"
	rm -f "$CACHE"
	cp -p "$T/good.json" "$CACHE"
}
chmod 666 "$CACHE"
refused "a world-writable cache file is refused" "group- or world-writable"
chmod 620 "$CACHE"
refused "a group-writable cache file is refused" "group- or world-writable"
if [ "$(id -u)" = 0 ]; then
	chown nobody "$CACHE"
	refused "a cache file owned by another user is refused" "owned by another user"
else
	skip "a cache file owned by another user is refused" "needs root to chown"
fi
rm -f "$CACHE"
ln -s "$T/good.json" "$CACHE"
refused "a symbolic link is refused" "symbolic link"
echo '{"token":"web","keys":[' >"$CACHE"
chmod 600 "$CACHE"
refused "a tampered (truncated) cache file is refused" "not a public view"
jq '.keys[0].spki = "AAAA"' "$T/good.json" >"$CACHE"
chmod 600 "$CACHE"
$P11 -O >"$T/bad-spki.txt" 2>&1
check "a cache file with a public key that is not DER SPKI gives no objects" \
	test "$(objects "$T/bad-spki.txt")" = 0
cp -p "$T/good.json" "$CACHE"
chmod 777 "$T/cache"
start_broker
sed -i 's/^timeout = .*/timeout = 5/' "$T/attestkey.conf"
$P11 --login --pin 1234 -O >"$T/dir777.txt" 2>&1
check "a world-writable cache directory is not written into, naming it" \
	grep -q "cache directory $T/cache is not a directory that only its owner" "$T/dir777.txt"
chmod 700 "$T/cache"
$P11 -O >"$T/other-brokers.txt" 2>&1
check "a cache file written for other brokers (the first broker's port) is not used" \
	test "$(objects "$T/other-brokers.txt")" = 0
check "after chmod 700 a login writes the cache again" $P11 --login --pin 1234 -O
stop_broker
check "  and it serves with the broker stopped" bash -c "$P11 -O | grep -c 'Certificate Object' | grep -qx 2"

# --- configuration ----------------------------------------------------------
sed -i "s|^cache_dir = .*|cache_dir = relative/dir|" "$T/attestkey.conf"
$P11 -O >"$T/relative.txt" 2>&1
check "cache_dir must be an absolute path (a configuration error naming the key)" \
	grep -q "cache_dir = 'relative/dir' is not an absolute path" "$T/relative.txt"
finish
