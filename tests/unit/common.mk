# SPDX-License-Identifier: Apache-2.0
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_common
TESTS += tests/unit/test_common
tests_unit_test_common_SOURCES = tests/unit/test_common.c
tests_unit_test_common_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_common_LDADD = libakcommon.la $(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
check_PROGRAMS += tests/unit/test_jwk_public
TESTS += tests/unit/test_jwk_public
tests_unit_test_jwk_public_SOURCES = tests/unit/test_jwk_public.c
tests_unit_test_jwk_public_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_jwk_public_LDADD = libakcommon.la $(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_envelope
TESTS += tests/unit/test_envelope
tests_unit_test_envelope_SOURCES = tests/unit/test_envelope.c
tests_unit_test_envelope_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_envelope_LDADD = libakcommon.la $(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
