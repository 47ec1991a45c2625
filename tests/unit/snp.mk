# SPDX-License-Identifier: Apache-2.0
# SEV-SNP codecs, verifier, policy and the simulated chip.
EXTRA_DIST += \
	tests/unit/test_snp_util.h \
	tests/data/snp/README.md \
	tests/data/snp/amd-roots/ark-genoa.pem \
	tests/data/snp/amd-roots/ark-milan.pem \
	tests/data/snp/amd-roots/ask-genoa.pem \
	tests/data/snp/amd-roots/ask-milan.pem \
	tests/data/snp/amd-roots/milan-vcek-cert_chain.pem \
	tests/data/snp/genoa-v3-trustee/report.bin \
	tests/data/snp/genoa-v3-trustee/vcek.der \
	tests/data/snp/milan-v2-go-sev-guest/report.bin \
	tests/data/snp/milan-v2-go-sev-guest/vcek.der \
	tests/data/snp/milan-v2-virtee/report.bin \
	tests/data/snp/milan-v2-virtee/report.hex \
	tests/data/snp/milan-v2-virtee/vcek.der \
	tests/data/snp/negative-vcek-trustee/vcek-badsig-hwid-octetstring.der \
	tests/data/snp/negative-vcek-trustee/vcek-badsig-hwid-raw64.der \
	tests/data/snp/turin-vcek-only-virtee/vcek.der

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_snp tests/unit/test_snp_sim tests/unit/test_policy
TESTS += tests/unit/test_snp tests/unit/test_snp_sim tests/unit/test_policy

tests_unit_test_snp_SOURCES = tests/unit/test_snp.c
tests_unit_test_snp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_snp_LDADD = libakverify.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)

tests_unit_test_snp_sim_SOURCES = tests/unit/test_snp_sim.c
tests_unit_test_snp_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_snp_sim_LDADD = libakverify.la libakevidence.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)

tests_unit_test_policy_SOURCES = tests/unit/test_policy.c
tests_unit_test_policy_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_policy_LDADD = libakverify.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif

# issue 9: product detection, KDS URLs, CRL modes, installed roots, new policy keys
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_snp_kds
TESTS += tests/unit/test_snp_kds
tests_unit_test_snp_kds_SOURCES = tests/unit/test_snp_kds.c
tests_unit_test_snp_kds_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_snp_kds_LDADD = libakverify.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
