#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The fuzz targets (tests/fuzz/fuzz_*.c) over their seed corpora, one TAP
# line per target (docs/security.md, "Fuzzing").
#
# Without --enable-fuzzing each target is linked with tests/fuzz/standalone.c
# and runs every input of tests/fuzz/corpus/<target>/ once. With it, each
# libFuzzer target runs its corpus and then fuzzes for FUZZ_SECONDS (10 in
# make check; `make fuzz` passes --long: 300 by default, keeping what it
# finds in the build directory's tests/fuzz/work/<target>/). A crash fails
# the target's line and the log names the input that crashed it.
#
# FUZZ_TARGETS="snp_report tdx_quote" picks targets (default: all).
set -uo pipefail
: "${top_srcdir:?}" "${top_builddir:?}"

long=no
[ "${1:-}" = --long ] && long=yes
names=${FUZZ_TARGETS:-${AK_FUZZ_NAMES:?the Makefile passes the targets}}
secs=${FUZZ_SECONDS:-10}
case $secs in
'' | *[!0-9]*) echo "Bail out! FUZZ_SECONDS=$secs is not a number of seconds"; exit 1 ;;
esac
fuzzdir=$top_builddir/tests/fuzz
set -- $names
echo "1..$#"

n=0
fails=0
for name in $names; do
	n=$((n + 1))
	bin=$fuzzdir/fuzz_$name
	corpus=$top_srcdir/tests/fuzz/corpus/$name
	if [ ! -x "$bin" ] || [ ! -d "$corpus" ]; then
		echo "not ok $n - $name: no program $bin or no corpus $corpus"
		fails=$((fails + 1))
		continue
	fi
	if [ "${AK_FUZZING:-no}" != yes ]; then
		out=$("$bin" "$corpus" 2>&1)
		rc=$?
		printf '%s\n' "$out" | sed 's/^/# /'
		if [ $rc = 0 ]; then
			echo "ok $n - $name: $(ls "$corpus" | wc -l) corpus inputs (standalone driver)"
		else
			last=$(printf '%s\n' "$out" | sed -n 's/^standalone: running \(.*\) ([0-9]* bytes)$/\1/p' | tail -n 1)
			echo "not ok $n - $name: exit $rc on input ${last:-?}"
			fails=$((fails + 1))
		fi
		continue
	fi
	# libFuzzer: the first directory is where new inputs go.
	if [ $long = yes ]; then
		work=$fuzzdir/work/$name
	else
		work=$fuzzdir/check-work/$name
		rm -rf "$work"
	fi
	art=$fuzzdir/artifacts/$name
	mkdir -p "$work" "$art"
	if [ "$secs" = 0 ]; then
		budget=-runs=0 # only the corpus (-max_total_time=0 is unlimited)
	else
		budget=-max_total_time=$secs
	fi
	before=$(ls "$art" | wc -l)
	out=$("$bin" $budget -print_final_stats=1 -artifact_prefix="$art/" \
		${FUZZ_ARGS:-} "$work" "$corpus" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/# /'
	runs=$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -n 1)
	cov=$(printf '%s\n' "$out" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -n 1)
	if [ $rc = 0 ] && [ "$(ls "$art" | wc -l)" = "$before" ]; then
		echo "ok $n - $name: ${runs:-?} executions in ${secs}s, ${cov:-no coverage line}"
		[ $long = yes ] || rm -rf "$work"
	else
		crash=$(printf '%s\n' "$out" | sed -n 's/.*Test unit written to \(.*\)$/\1/p' | tail -n 1)
		echo "not ok $n - $name: exit $rc, crashing input ${crash:-(see the log above)}"
		fails=$((fails + 1))
	fi
done
exit 0
