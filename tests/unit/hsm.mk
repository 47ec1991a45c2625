# SPDX-License-Identifier: Apache-2.0
# The PKCS#11 HSM key store and its envelope (docs/hsm.md), against a real
# SoftHSMv2 token each test makes in its own directory.
EXTRA_DIST += tests/unit/test_hsm_util.h

if HAVE_CMOCKA
HSM_TESTS = \
	tests/unit/test_hsm_keystore \
	tests/unit/test_hsm_envelope
check_PROGRAMS += $(HSM_TESTS)
TESTS += $(HSM_TESTS)

HSM_TEST_LDADD = libakbroker.la libakverify.la libakvault.la libakcommon.la \
	$(CMOCKA_LIBS) $(MHD_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) \
	$(CURL_LIBS) $(P11KIT_LIBS)

tests_unit_test_hsm_keystore_SOURCES = tests/unit/test_hsm_keystore.c \
	tests/unit/test_hsm_util.c tests/unit/test_broker_util.c
tests_unit_test_hsm_keystore_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(P11KIT_CFLAGS)
tests_unit_test_hsm_keystore_LDADD = $(HSM_TEST_LDADD)

tests_unit_test_hsm_envelope_SOURCES = tests/unit/test_hsm_envelope.c \
	tests/unit/test_hsm_util.c tests/unit/test_broker_util.c
tests_unit_test_hsm_envelope_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_hsm_envelope_LDADD = $(HSM_TEST_LDADD)
endif
