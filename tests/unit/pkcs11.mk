# SPDX-License-Identifier: Apache-2.0
# The PKCS#11 module's unit tests, through C_GetFunctionList on the
# convenience library (so the test-only hook of src/pkcs11/p11.h is reachable).
if HAVE_CMOCKA
PKCS11_TEST_LIBS = libakpkcs11.la libakevidence.la libakcommon.la $(CMOCKA_LIBS) \
	$(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)
PKCS11_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/pkcs11 $(P11KIT_CFLAGS)

check_PROGRAMS += tests/unit/test_pkcs11_module
TESTS += tests/unit/test_pkcs11_module
tests_unit_test_pkcs11_module_SOURCES = tests/unit/test_pkcs11_module.c
tests_unit_test_pkcs11_module_CPPFLAGS = $(PKCS11_TEST_CPPFLAGS)
tests_unit_test_pkcs11_module_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pkcs11_module_LDADD = $(PKCS11_TEST_LIBS)

check_PROGRAMS += tests/unit/test_pkcs11_config
TESTS += tests/unit/test_pkcs11_config
tests_unit_test_pkcs11_config_SOURCES = tests/unit/test_pkcs11_config.c
tests_unit_test_pkcs11_config_CPPFLAGS = $(PKCS11_TEST_CPPFLAGS)
tests_unit_test_pkcs11_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pkcs11_config_LDADD = $(PKCS11_TEST_LIBS)

check_PROGRAMS += tests/unit/test_pkcs11_login
TESTS += tests/unit/test_pkcs11_login
tests_unit_test_pkcs11_login_SOURCES = tests/unit/test_pkcs11_login.c
tests_unit_test_pkcs11_login_CPPFLAGS = $(PKCS11_TEST_CPPFLAGS) $(MHD_CFLAGS)
tests_unit_test_pkcs11_login_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pkcs11_login_LDADD = $(PKCS11_TEST_LIBS) $(MHD_LIBS)
endif
