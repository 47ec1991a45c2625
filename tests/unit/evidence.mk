# SPDX-License-Identifier: Apache-2.0
# The guest collectors (src/evidence/); collectors.sh drives them against
# the fake kernel.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_evidence_guest
TESTS += tests/unit/test_evidence_guest
tests_unit_test_evidence_guest_SOURCES = tests/unit/test_evidence_guest.c
tests_unit_test_evidence_guest_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_evidence_guest_LDADD = libakevidence.la libakcommon.la \
	$(CMOCKA_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
