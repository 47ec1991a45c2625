# SPDX-License-Identifier: Apache-2.0
# Shared by the make bench scripts: the integration world (tests/integration/
# lib.sh), the machine line, quantiles, and the common CSV.
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
BENCH_CSV=${BENCH_CSV:-$top_builddir/bench-results.csv}

bench_machine() {
	echo "$(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
}

# quantile Q: the nearest-rank Q-quantile (0..1) of the numbers on stdin
quantile() {
	sort -g | awk -v q="$1" '{ v[NR] = $1 }
		END { if (!NR) { print "n/a"; exit }
		      i = int(q * NR); if (i < q * NR) i++; if (i < 1) i = 1
		      print v[i] }'
}

# csv_row BENCH CASE A A_VALUE B B_VALUE UNIT RATIO TARGET MET: one row of
# bench-results.csv (the header is written with the first row)
csv_row() {
	[ -s "$BENCH_CSV" ] || echo "bench,case,a,a_value,b,b_value,unit,ratio,target,met" >"$BENCH_CSV"
	local IFS=, f out=()
	for f in "$@"; do out+=("${f//,/;}"); done # a comma would shift the columns
	echo "${out[*]}" >>"$BENCH_CSV"
}
