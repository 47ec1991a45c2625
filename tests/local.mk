# SPDX-License-Identifier: Apache-2.0
# Unit tests (cmocka) have one fragment per owner; integration tests are TAP
# shell scripts run through tap-driver.sh.
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	ATTESTKEY_TESTDATA='$(abs_top_srcdir)/tests/data' \
	ATTESTKEY_VECTORS="$${ATTESTKEY_VECTORS:-$(abs_top_srcdir)/tests/data}" \
	ATTESTKEY_AMD_DIR='$(abs_top_srcdir)/data/amd'

include $(srcdir)/tests/unit/snp.mk
include $(srcdir)/tests/unit/evidence.mk
include $(srcdir)/tests/unit/tdx.mk
include $(srcdir)/tests/unit/common.mk
include $(srcdir)/tests/unit/broker.mk
include $(srcdir)/tests/unit/pkcs11.mk
include $(srcdir)/tests/unit/hsm.mk
include $(srcdir)/tests/unit/tdxsim.mk
include $(srcdir)/tests/unit/vault.mk
include $(srcdir)/tests/unit/key.mk
include $(srcdir)/tests/unit/azure.mk
include $(srcdir)/tests/integration/local.mk
include $(srcdir)/tests/bench/local.mk
include $(srcdir)/tests/fuzz/local.mk

# make memcheck (docs/security.md "valgrind (make memcheck)"): the unit
# tests, and the broker and the module in MEMCHECK_INTEGRATION, under
# valgrind's memcheck; an error or a definite or indirect leak fails.
VALGRIND = valgrind
MEMCHECK = $(VALGRIND) --tool=memcheck --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	--num-callers=40 --suppressions=$(abs_top_srcdir)/tests/valgrind.supp
MEMCHECK_INTEGRATION = tests/integration/broker-api.sh tests/integration/refusals.sh \
	tests/integration/protocol-v2.sh tests/integration/revoke.sh \
	tests/integration/vault-broker.sh tests/integration/hsm-login.sh \
	tests/integration/az-nginx.sh tests/integration/lease.sh
EXTRA_DIST += tests/memcheck-run.sh tests/valgrind.supp
memcheck:
	@command -v $(VALGRIND) >/dev/null || { \
		echo "make memcheck: $(VALGRIND) not found (Debian: apt-get install valgrind)" >&2; exit 1; }
	@unit=; for t in $(TESTS); do case $$t in tests/unit/*) unit="$$unit $$t" ;; esac; done; \
	AK_VALGRIND='$(MEMCHECK)' $(MAKE) $(AM_MAKEFLAGS) check \
		TESTS="$$unit $(MEMCHECK_INTEGRATION)" LOG_COMPILER='$(abs_top_srcdir)/tests/memcheck-run.sh'
.PHONY: memcheck
