# SPDX-License-Identifier: Apache-2.0
# Intel TDX quote parser and verifier, against ../shared/testvectors/tdx.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_tdx
TESTS += tests/unit/test_tdx
tests_unit_test_tdx_SOURCES = tests/unit/test_tdx.c
tests_unit_test_tdx_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_tdx_LDADD = libakverify.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
