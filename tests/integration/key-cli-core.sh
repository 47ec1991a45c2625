#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `attestkey key` leaves no copy of a private key in its memory (issue 10,
# item 4: keys made and written from the secure heap, wiped after use): each
# command is stopped at exit() under gdb, before OpenSSL's cleanup, and its
# core searched (corescan) for the secret parts of the keys it handled. The
# secure heap itself is MADV_DONTDUMP, as it is in a kernel core.
. "$(dirname "$0")/lib.sh"
need openssl gdb
[ -z "$AK_RUN" ] || skip_all "the sanitizer build: gcore would dump ASan's shadow memory"
gcore_works || skip_all "gcore cannot attach to a process here ($(tail -n 1 "$T/gcore-check.log"))"
CORESCAN="$top_builddir/tests/integration/corescan"
mkdir -m 700 "$T/store"
S="file:$T/store"

# core_of NAME ARGS...: run `attestkey key ARGS` to its exit() and dump it
core_of() {
	local name=$1
	shift
	gdb -q -batch -ex 'set breakpoint pending on' -ex 'break exit' -ex run \
		-ex "gcore $T/$name.core" -ex kill --args "$AK_TOOL" key "$@" >"$T/$name.gdb" 2>&1
	[ -s "$T/$name.core" ] || { diag "no core of attestkey key $*:"; diag_stream <"$T/$name.gdb"; }
}
# clean "description" CORE KEY...: corescan finds no part of the keys
clean() {
	local d=$1 core=$2
	shift 2
	if "$CORESCAN" "$@" -- "$T/$core.core" >"$T/$core.scan" 2>&1; then
		ok "$d"
	else
		not_ok "$d"
		diag_stream <"$T/$core.scan"
	fi
	rm -f "$T/$core.core"
}

for t in rsa2048 rsa4096 p256 p521 ed25519; do
	core_of "gen-$t" generate --store "$S" --type "$t" --cert self-signed "k-$t"
	check "generate --type $t wrote its key and stopped at exit()" \
		sh -c "test -f '$T/store/k-$t.key' && grep -q '^Breakpoint 1, .*exit' '$T/gen-$t.gdb'"
	clean "generate --type $t --cert self-signed: no part of the key in the core" "gen-$t" "$T/store/k-$t.key"
done
core_of csr generate --store "$S" --type rsa3072 --cert csr --out "$T/csr.pem" k-csr
clean "generate --cert csr: no part of the key in the core" csr "$T/store/k-csr.key"
core_of rotate rotate --store "$S" k-rsa2048
clean "rotate: neither the old nor the new key in the core" rotate "$T/store/k-rsa2048.key.1" "$T/store/k-rsa2048.key"
core_of show show --store "$S" k-p256
clean "show: no part of the key it read in the core" show "$T/store/k-p256.key"
core_of list list --store "$S"
clean "list: no part of any key in the core" list "$T/store/"k-*.key
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/imp.key" 2>/dev/null
core_of import import --store "$S" --key "$T/imp.key" k-imp
check "import ran" test -f "$T/store/k-imp.key"
clean "import: no part of the imported key in the core" import "$T/imp.key"
# the scan finds a key that is there: a core of openssl(1) holding it
gdb -q -batch -ex 'set breakpoint pending on' -ex 'break exit' -ex run -ex "gcore $T/control.core" -ex kill \
	--args openssl pkey -in "$T/imp.key" -noout -text >"$T/control.gdb" 2>&1
refuse "control: corescan finds the key in a core of openssl pkey -text" \
	"$CORESCAN" "$T/imp.key" -- "$T/control.core"
finish
