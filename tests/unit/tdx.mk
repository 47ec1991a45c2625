# SPDX-License-Identifier: Apache-2.0
# Intel TDX quote parser and verifier (test_tdx), collateral, TCB evaluation
# and policy (test_tdx_tcb), collateral from an Intel PCS look-alike
# (test_tdx_pcs, with tests/integration/httpfixture), all against
# ../shared/testvectors/tdx.
EXTRA_DIST += tests/unit/test_tdx_util.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_tdx tests/unit/test_tdx_tcb tests/unit/test_tdx_pcs
TESTS += tests/unit/test_tdx tests/unit/test_tdx_tcb tests/unit/test_tdx_pcs
tests_unit_test_tdx_SOURCES = tests/unit/test_tdx.c
tests_unit_test_tdx_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_tdx_LDADD = libakverify.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)

TDX_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/verify
TDX_TEST_LDADD = libakverify.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(CURL_LIBS)

tests_unit_test_tdx_tcb_SOURCES = tests/unit/test_tdx_tcb.c
tests_unit_test_tdx_tcb_CPPFLAGS = $(TDX_TEST_CPPFLAGS)
tests_unit_test_tdx_tcb_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_tdx_tcb_LDADD = $(TDX_TEST_LDADD)

tests_unit_test_tdx_pcs_SOURCES = tests/unit/test_tdx_pcs.c
tests_unit_test_tdx_pcs_CPPFLAGS = $(TDX_TEST_CPPFLAGS)
tests_unit_test_tdx_pcs_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS)
tests_unit_test_tdx_pcs_LDADD = $(TDX_TEST_LDADD)
endif
