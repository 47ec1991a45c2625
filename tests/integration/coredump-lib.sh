# SPDX-License-Identifier: Apache-2.0
# The core-dump scans of issue 8 item 7 (coredump.sh, coredump-broker.sh):
# take cores, search them with tests/integration/corescan for every secret
# part of the keys in $KEYS, one TAP line per scenario. Sourced after lib.sh.

# ASan reserves terabytes of shadow and allocator address space: gcore would
# write it all, and ASan turns core dumps off (disable_coredump)
[ -z "$AK_RUN" ] || skip_all "the sanitizer build: gcore would dump ASan's shadow memory"
gcore_works || skip_all "gcore cannot attach to a process here ($(tail -n 1 "$T/gcore-check.log"))"
SCAN="$top_builddir/tests/integration/corescan"
[ -x "$SCAN" ] || bail "$SCAN not built"

mkdir -p "$T/cores"
ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -Hc)"

# scan CORE...: search each core, then delete it (cores are big); the
# findings go to $T/scan.out, and SCAN_HITS counts the cores with hits
scan() {
	local c rc
	for c in "$@"; do
		"$SCAN" $KEYS -- "$c" >>"$T/scan.out" 2>&1
		rc=$?
		[ "$rc" -le 1 ] || { diag_stream <"$T/scan.out"; bail "corescan failed on $c"; }
		SCAN_HITS=$((SCAN_HITS + rc))
		rm -f "$c"
	done
}
# report DESCRIPTION: one TAP line for the cores scanned since the last
# report, the findings as comments (offsets and parts, never bytes)
report() {
	if [ "$SCAN_HITS" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi
	# a line per core (hits per key), then where the copies are
	sed "s|$T/keys/web/||g; s|$T/||g" "$T/scan.out" >"$T/scan.short"
	grep -E ': [0-9]+ hits? \(' "$T/scan.short" | diag_stream
	grep -E '^  ' "$T/scan.short" | head -n 60 | diag_stream
	: >"$T/scan.out"
	SCAN_HITS=0
}
SCAN_HITS=0
: >"$T/scan.out"
# gcore_of NAME PID: a gcore of PID as $T/cores/NAME.PID
gcore_of() {
	timeout 120 gcore -o "$T/cores/$1" "$2" >"$T/gcore.log" 2>&1 && [ -s "$T/cores/$1.$2" ] ||
		{ diag_stream <"$T/gcore.log"; bail "gcore of $1 ($2) failed"; }
	scan "$T/cores/$1.$2"
}
# kernel_core DIR PID: the core the kernel wrote for PID in DIR (core_pattern
# "core", with or without core_uses_pid), or nothing
kernel_core() {
	local f
	for f in "$1/core.$2" "$1/core"; do [ -s "$f" ] && { echo "$f"; return; }; done
}
case $(cat /proc/sys/kernel/core_pattern 2>/dev/null) in
core | core.*) KERNEL_CORES=yes ;;
*) KERNEL_CORES="" ; diag "core_pattern is '$(cat /proc/sys/kernel/core_pattern)': no kernel cores in the test directory" ;;
esac

