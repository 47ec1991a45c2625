# SPDX-License-Identifier: Apache-2.0
# TDX collateral, TCB evaluation and policy against ../shared/testvectors.
EXTRA_DIST += tests/unit/test_tdx_util.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_tdx_tcb
TESTS += tests/unit/test_tdx_tcb

tests_unit_test_tdx_tcb_SOURCES = tests/unit/test_tdx_tcb.c
tests_unit_test_tdx_tcb_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/verify
tests_unit_test_tdx_tcb_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_tdx_tcb_LDADD = libakverify.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(CURL_LIBS)
endif
