#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# nginx's fork pattern without nginx: the parent logs in (one release), a
# forked child calls C_Initialize again, logs in from the inherited keys
# without the broker, and signs.
. "$(dirname "$0")/lib.sh"

setup_world
start_broker
"$AK_PROBE" "$AK_MODULE" fork-login 1234 >"$T/probe.out" 2>&1
rc=$?
diag_stream <"$T/probe.out"
check "parent and child both log in and sign" test "$rc" -eq 0
check "the child saw the inherited private keys" bash -c "sed -n '/^child:/,\$p' '$T/probe.out' | grep -q 'private_keys: [1-9]'"
check "the broker saw exactly one release" test "$(releases)" -eq 1
# OpenSC's own fork test: C_Initialize again in a forked child.
check "pkcs11-tool --test-fork" $AK_RUN pkcs11-tool --module "$AK_MODULE" --test-fork
check "pkcs11-tool --login --test-fork" $AK_RUN pkcs11-tool --module "$AK_MODULE" --login --pin 1234 --test-fork

# The child never contacts the broker nor reads a file: between the parent's
# login and the fork, stop the broker and take away the sim chip's (root-only)
# keys and the module config.
P11PROBE_BEFORE_FORK="kill $BROKER_PID; mv '$T/sim' '$T/sim.gone'; mv '$ATTESTKEY_CONF' '$T/conf.gone'" "$AK_PROBE" "$AK_MODULE" fork-login 1234 >"$T/probe2.out" 2>&1
rc=$?
diag_stream <"$T/probe2.out"
check "a child logs in and signs with no broker, no sim keys and no config" test "$rc" -eq 0
finish
