# SPDX-License-Identifier: Apache-2.0
# Intel TDX quote parser and verifier (test_tdx), collateral, TCB evaluation
# and policy (test_tdx_tcb), collateral from an Intel PCS look-alike
# (test_tdx_pcs, with tests/integration/httpfixture), all against
# tests/data/tdx and tests/data/intel-roots (copies of ../shared/testvectors,
# see tests/data/tdx/README.md).
EXTRA_DIST += tests/unit/test_tdx_util.h \
	tests/data/intel-roots/IntelSGXRootCA_crl.der \
	tests/data/intel-roots/Intel_SGX_PCK_Platform_CA.pem \
	tests/data/intel-roots/Intel_SGX_Root_CA.pem \
	tests/data/intel-roots/Intel_SGX_TCB_Signing_2018-05-21_to_2025-05-21_EXPIRED.pem \
	tests/data/intel-roots/Intel_SGX_TCB_Signing_2025-05-06_to_2032-05-06.pem \
	tests/data/tdx/README.md \
	tests/data/tdx/v4-debug-trustee/quote.dat \
	tests/data/tdx/v4-gcp-cos113-go-tdx-guest/quote.dat \
	tests/data/tdx/v4-gcp-cos113-go-tdx-guest/tcb_info_2025-09.json \
	tests/data/tdx/v4-spr-go-tdx-guest/pck_crl.der \
	tests/data/tdx/v4-spr-go-tdx-guest/pck_crl_issuer_chain.pem \
	tests/data/tdx/v4-spr-go-tdx-guest/qe_identity.json \
	tests/data/tdx/v4-spr-go-tdx-guest/qe_identity_issuer_chain.pem \
	tests/data/tdx/v4-spr-go-tdx-guest/quote.dat \
	tests/data/tdx/v4-spr-go-tdx-guest/root_ca_crl.der \
	tests/data/tdx/v4-spr-go-tdx-guest/tcb_info.json \
	tests/data/tdx/v4-spr-go-tdx-guest/tcb_info_2025-09.json \
	tests/data/tdx/v4-spr-go-tdx-guest/tcb_info_issuer_chain.pem \
	tests/data/tdx/v5-tdx15-go-tdx-guest/qe_identity.json \
	tests/data/tdx/v5-tdx15-go-tdx-guest/quote.dat \
	tests/data/tdx/v5-tdx15-go-tdx-guest/tcb_info.json

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
