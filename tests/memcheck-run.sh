#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# LOG_COMPILER of make memcheck (docs/security.md "valgrind (make memcheck)"):
# a test program runs under $AK_VALGRIND; a test script runs as it is and
# starts the broker and the module under $AK_VALGRIND itself
# (tests/integration/lib.sh, ak_valgrind).
case $1 in
*.sh) exec "$@" ;;
*) exec $AK_VALGRIND "$@" ;;
esac
