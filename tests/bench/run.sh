#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench (issue 4): every benchmark, each in its own world (broker,
# simulated chip, key store), then one markdown table of every comparison
# from bench-results.csv. Nothing here asserts a time: a missed target is
# reported ("no" in the met column), not failed. BENCH_QUICK=1 for a short
# smoke run; BENCH_ONLY="signing login" to run some of them.
set -u
here=$(dirname "$0")
: "${top_builddir:=$(pwd)}"
export top_builddir top_srcdir
export BENCH_CSV=${BENCH_CSV:-$top_builddir/bench-results.csv}
rm -f "$BENCH_CSV"
echo "bench,case,a,a_value,b,b_value,unit,ratio,target,met" >"$BENCH_CSV"
status=0
for b in ${BENCH_ONLY:-signing nginx login broker storm}; do
	[ -f "$here/$b.sh" ] || { echo "bench: no benchmark '$b'" >&2; status=1; continue; }
	bash "$here/$b.sh" || { echo "bench: $b failed" >&2; status=1; }
done
echo "## Summary"
echo
echo "Every row of $BENCH_CSV: A beside B, measured in the same run; ratio = median of per-round A/B."
echo
echo "| bench | case | A | A value | B | B value | unit | ratio | target | met |"
echo "|---|---|---|---|---|---|---|---|---|---|"
tail -n +2 "$BENCH_CSV" | awk -F, '{ printf "|"; for (i = 1; i <= 10; i++) printf " %s |", $i; printf "\n" }'
exit $status
