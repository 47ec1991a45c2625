#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Issue 8, item 4 (module side) and item 7: mlock(2) is not inherited by a
# fork child, so a module whose child logs in again (reattest_after_fork)
# must lock its secure heap again: the child's VmLck after its login and
# signatures is above 0. Without reattest_after_fork the child's VmLck is
# reported as a comment.
#
# Every TAP line here is a measurement: a failure to set up is a "Bail out!",
# so that the script can stand in XFAIL_TESTS until the fix lands.
. "$(dirname "$0")/lib.sh"

setup_world
start_broker
# vmlck WHO FILE: the kB of WHO's VmLck line in p11probe's output
vmlck() { awk -v w="$1" '$1 == w && $2 == "VmLck:" { print $3 }' "$2"; }
# probe NAME: p11probe fork-vmlck, output in $T/NAME.out; bails on failure
probe() {
	"$AK_PROBE" "$AK_MODULE" fork-vmlck 1234 >"$T/$1.out" 2>&1 ||
		{ diag_stream <"$T/$1.out"; bail "p11probe fork-vmlck ($1) failed"; }
	[ -n "$(vmlck child "$T/$1.out")" ] || { diag_stream <"$T/$1.out"; bail "no VmLck from the child ($1)"; }
}

probe inherit
diag "without reattest_after_fork: parent VmLck $(vmlck parent "$T/inherit.out") kB, child (inherited keys) VmLck $(vmlck child "$T/inherit.out") kB"
[ "$(releases)" -eq 1 ] || bail "expected 1 release without reattest_after_fork, the audit log has $(releases)"

write_module_conf "[module]" "reattest_after_fork = true"
probe reattest
[ "$(releases)" -eq 3 ] || bail "the child did not attest again with reattest_after_fork (releases: $(releases))"
child=$(vmlck child "$T/reattest.out")
diag "with reattest_after_fork: parent VmLck $(vmlck parent "$T/reattest.out") kB, child VmLck $child kB"
if [ "$child" -gt 0 ]; then ok "the child's secure heap is locked after its own login (reattest_after_fork)"
else not_ok "the child's secure heap is locked after its own login (reattest_after_fork)"; fi
finish_lines_only
