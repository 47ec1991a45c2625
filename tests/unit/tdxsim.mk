# SPDX-License-Identifier: Apache-2.0
# The simulated TDX guest (src/evidence/sim_tdx.c).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_tdx_sim
TESTS += tests/unit/test_tdx_sim

tests_unit_test_tdx_sim_SOURCES = tests/unit/test_tdx_sim.c
tests_unit_test_tdx_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_tdx_sim_LDADD = libakverify.la libakevidence.la libakcommon.la \
	$(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
