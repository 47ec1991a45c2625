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
include $(srcdir)/tests/integration/local.mk
include $(srcdir)/tests/bench/local.mk
include $(srcdir)/tests/fuzz/local.mk
