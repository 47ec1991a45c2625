# SPDX-License-Identifier: Apache-2.0
# Azure vTPM evidence (issue 14): parsers and verifier.
EXTRA_DIST += \
	tests/data/azure/PROVENANCE.md \
	tests/data/azure/snp-milan/hcl-report.bin \
	tests/data/azure/snp-milan/pcrs-sha256.json \
	tests/data/azure/snp-milan/tpm-quote.msg \
	tests/data/azure/snp-milan/tpm-quote.sig \
	tests/data/azure/snp-milan/vcek-ask-ark.pem

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_azure
TESTS += tests/unit/test_azure
tests_unit_test_azure_SOURCES = tests/unit/test_azure.c tests/unit/test_snp_util.h
tests_unit_test_azure_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_azure_LDADD = libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)

check_PROGRAMS += tests/unit/test_azure_verify
TESTS += tests/unit/test_azure_verify
tests_unit_test_azure_verify_SOURCES = tests/unit/test_azure_verify.c tests/unit/test_snp_util.h
tests_unit_test_azure_verify_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_azure_verify_LDADD = libakverify.la libakevidence.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
