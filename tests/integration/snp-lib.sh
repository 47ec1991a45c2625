# SPDX-License-Identifier: Apache-2.0
# Shared by snp-vectors.sh and snp-kds.sh: where the SNP vectors are, and
# helpers to run `attestkey snp verify --json` and edit report bytes.
need jq
# The shared vector set next to the source tree, else the copy under
# tests/data (in a release tarball).
SNPV="$top_srcdir/../shared/testvectors/snp"
[ -d "$SNPV" ] || SNPV="$top_srcdir/tests/data/snp"
AMD="$top_srcdir/data/amd"
export ATTESTKEY_AMD_DIR="$AMD"
[ -f "$SNPV/milan-v2-virtee/report.bin" ] || skip_all "no SNP vectors in $SNPV"

# verdict NAME VERDICT REASON ARGS...: `snp verify --json ARGS` says VERDICT
# (accept|refuse) with REASON and exits 0 (accept) or 1 (refuse); the JSON
# is left in $T/NAME.json for further checks
verdict() {
	local name=$1 want=$2 reason=$3 rc
	shift 3
	"$AK_TOOL" snp verify --json "$@" >"$T/$name.json" 2>"$T/$name.err"
	rc=$?
	local want_rc=1
	[ "$want" = accept ] && want_rc=0
	if [ $rc -ne $want_rc ]; then
		not_ok "$name: exit status $rc for $want"
		diag "command: attestkey snp verify --json $*"
		diag_stream <"$T/$name.err"
		diag_stream <"$T/$name.json"
		return
	fi
	if jq -e --arg v "$want" --arg r "$reason" '.verdict == $v and .reason == $r' \
		"$T/$name.json" >/dev/null 2>&1; then
		ok "$name: $want ($reason)"
	else
		not_ok "$name: expected $want ($reason)"
		diag_stream <"$T/$name.json"
	fi
}
# json NAME DESCRIPTION JQ-EXPRESSION: the JSON of `verdict NAME` satisfies it
json() { check "$1: $2" jq -e "$3" "$T/$1.json"; }

# patch FILE OFFSET HEX: overwrite bytes at OFFSET (a shell number) with HEX
patch() {
	printf "$(printf '%s' "$3" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
}
# byte FILE OFFSET: the byte at OFFSET as two hex digits
byte() { od -An -tx1 -j $(($2)) -N1 "$1" | tr -d ' \n'; }
# flip FILE OFFSET: invert the low bit of the byte at OFFSET
flip() { patch "$1" "$2" "$(printf '%02x' $((0x$(byte "$1" "$2") ^ 1)))"; }
