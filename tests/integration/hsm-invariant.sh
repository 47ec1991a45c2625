#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 10 item 2, the invariant: a broker whose keys are in an HSM never
# has their private bytes. Two logins through the real module against a
# broker on a SoftHSMv2 token, the broker run under strace from its start;
# then everything the broker read (every read/recvfrom's bytes) and all its
# memory (every readable mapping through /proc/PID/mem, OpenSSL's secure
# heap included, which core dumps leave out) are searched with corescan for
# every secret part of both keys (RSA d, p, q..., the EC scalar, the PKCS#8
# DER and the PEM text; both byte orders, every 16-byte window).
# The same scans of a broker on the file store, which does hold the keys,
# must find them: that proves the scans can fail.
. "$(dirname "$0")/lib.sh"
need strace xxd
. "$(dirname "$0")/hsm-lib.sh"
# ASan reserves terabytes of shadow memory: /proc/PID/mem would read it all
[ -z "$AK_RUN" ] || skip_all "the sanitizer build: the broker's memory holds ASan's shadow"
gcore_works || skip_all "this user cannot ptrace its own processes (strace, /proc/PID/mem)"
SCAN="$top_builddir/tests/integration/corescan"
[ -x "$SCAN" ] || bail "$SCAN not built"

setup_world
hsm_setup
KEYS="$T/keys/web/tls.key $T/keys/web/ec.key"
# the broker under strace from its first instruction: the wrapper execs it
cat >"$T/traced-broker" <<EOS
#!/bin/sh
exec strace -f -qq -xx -s 1048576 -e trace=openat,read,pread64,recvfrom -o "\$STRACE_LOG" "$AK_BROKER" "\$@"
EOS
chmod +x "$T/traced-broker"
AK_BROKER="$T/traced-broker"

# scan_store NAME: start the broker traced, log in twice, dump its memory,
# stop it; corescan's findings in $T/NAME.{reads,mem}.scan, its exit
# statuses (0 clean, 1 found) in READS_RC and MEM_RC
scan_store() {
	local name=$1 pid
	export STRACE_LOG="$T/$name.strace"
	start_broker
	for i in 1 2; do
		"$AK_PROBE" "$AK_MODULE" login 1234 >"$T/$name.probe" 2>&1 ||
			{ diag_stream <"$T/$name.probe"; bail "$name: p11probe login failed"; }
	done
	pid=$(pgrep -P "$BROKER_PID" -x attestkey-broke || pgrep -P "$BROKER_PID")
	[ -n "$pid" ] || bail "$name: the traced broker's process is not found"
	memdump "$pid" "$T/$name.mem" || bail "$name: cannot read the broker's memory"
	# strace waits for its tracee: stop the broker itself
	kill "$pid"
	wait "$BROKER_PID" 2>/dev/null
	BROKER_PID=""
	strace_reads "$STRACE_LOG" "$T/$name.reads"
	strace_opens "$STRACE_LOG" "$T/$name.opens"
	[ -s "$T/$name.reads" ] || bail "$name: strace recorded no read"
	"$SCAN" $KEYS -- "$T/$name.reads" >"$T/$name.reads.scan" 2>&1
	READS_RC=$?
	"$SCAN" $KEYS -- "$T/$name.mem" >"$T/$name.mem.scan" 2>&1
	MEM_RC=$?
	[ "$READS_RC" -le 1 ] && [ "$MEM_RC" -le 1 ] ||
		{ diag_stream <"$T/$name.mem.scan"; bail "$name: corescan failed"; }
	rm -f "$T/$name.mem"
}
# findings of a scan as comments: which key part, never bytes
show() { grep -E '^  ' "$1" | sed "s|$T/||g" | head -n 12 | diag_stream; }

# The control first: the file store reads the key files and keeps the keys.
scan_store file
check "control, file store: the broker released the keys twice" test "$(releases)" -eq 2
if [ "$READS_RC" -eq 1 ]; then ok "control, file store: its reads hold the keys (the read scan finds them)"
else not_ok "control, file store: the read scan did not find the key files the broker read"; fi
if [ "$MEM_RC" -eq 1 ]; then ok "control, file store: its memory holds the keys (the memory scan finds them)"
else not_ok "control, file store: the memory scan did not find the keys the broker holds"; fi
check "control, file store: strace shows the broker opening the key files" \
	grep -Eq 'openat\(.*"tls\.key"' "$T/file.opens"

# The HSM store: nothing of either key, anywhere.
: >"$T/audit.jsonl"
hsm_broker_conf
scan_store hsm
check "HSM store: the broker released the keys twice, in the HSM envelope" bash -c "
	test \$(grep -c '\"event\":\"release\"' '$T/audit.jsonl') -eq 2 &&
	grep -q 'private_keys: 2' '$T/hsm.probe'"
check "HSM store: strace saw the broker read (its configuration, the token's files, TLS)" \
	test "$(stat -c %s "$T/hsm.reads")" -gt 10000
if [ "$READS_RC" -eq 0 ]; then ok "HSM store: nothing the broker read holds any part of either private key"
else not_ok "HSM store: the broker read private key material"; show "$T/hsm.reads.scan"; fi
if [ "$MEM_RC" -eq 0 ]; then ok "HSM store: the broker's memory (secure heap included) holds no part of either private key"
else not_ok "HSM store: the broker's memory holds private key material"; show "$T/hsm.mem.scan"; fi
check "HSM store: the broker never opened the key files" \
	bash -c "test -s '$T/hsm.opens' && ! grep -Eq 'openat\\(.*(keys/web|\"(tls|ec)\\.key\")' '$T/hsm.opens'"
check "  but it did open the token's (encrypted) object files, through SoftHSM" \
	grep -q "openat(.*$T/hsm/tokens/.*\.object" "$T/hsm.opens"
finish
