# SPDX-License-Identifier: Apache-2.0
# The PKCS#11 module's unit tests, through C_GetFunctionList on the
# convenience library (so the test-only hook of src/pkcs11/p11.h is reachable).
if HAVE_CMOCKA
PKCS11_TEST_LIBS = libakpkcs11.la libakevidence.la libakcommon.la $(CMOCKA_LIBS) \
	$(CURL_MODULE_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)
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

check_PROGRAMS += tests/unit/test_pkcs11_threads
TESTS += tests/unit/test_pkcs11_threads
tests_unit_test_pkcs11_threads_SOURCES = tests/unit/test_pkcs11_threads.c
tests_unit_test_pkcs11_threads_CPPFLAGS = $(PKCS11_TEST_CPPFLAGS)
tests_unit_test_pkcs11_threads_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pkcs11_threads_LDADD = $(PKCS11_TEST_LIBS)
endif

# ThreadSanitizer run of the threads test (issue 3 item 5, called by
# .ci/run) and of the lease test of the login test (issue 12). Its own compile of the module, core and collector sources with
# -fsanitize=thread: the libtool libraries may carry ASan, which cannot mix
# with TSan. OpenSSL itself is not instrumented; see
# tests/unit/tsan.supp for the only suppressions and why. Then the
# broker's (check-tsan-broker, tests/unit/broker.mk).
TSAN_DIR = tests/unit/tsan
TSAN_SRCS = $(libakpkcs11_la_SOURCES) $(libakevidence_la_SOURCES) \
	$(libakcommon_la_SOURCES)
TSAN_FLAGS = -fsanitize=thread -g -O1 -fno-omit-frame-pointer
EXTRA_DIST += tests/unit/tsan.supp
check-tsan:
if HAVE_CMOCKA
	@mkdir -p $(TSAN_DIR)
	srcs=`for f in $(TSAN_SRCS); do case $$f in *.c) echo $(srcdir)/$$f;; esac; done`; \
	for t in test_pkcs11_threads test_pkcs11_login; do \
	$(CC) -std=gnu11 $(TSAN_FLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
		-I$(top_srcdir)/src/pkcs11 $(P11KIT_CFLAGS) $(CURL_CFLAGS) $(PTHREAD_CFLAGS) \
		$(CRYPTO_CFLAGS) $(JANSSON_CFLAGS) $(JOSE_CFLAGS) $(INIH_CFLAGS) $(CMOCKA_CFLAGS) \
		$(MHD_CFLAGS) $$srcs $(srcdir)/tests/unit/$$t.c -o $(TSAN_DIR)/$$t \
		$(CMOCKA_LIBS) $(CURL_MODULE_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) \
		$(INIH_LIBS) $(MHD_LIBS) $(TSS2_LIBS) -lpthread || exit 1; done
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$(abs_srcdir)/tests/unit/tsan.supp" \
		$(TSAN_DIR)/test_pkcs11_threads
	@echo "check-tsan: issue 12, the renewer beside signing, refusals and wipes"
	AK_TEST_FILTER=test_lease \
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$(abs_srcdir)/tests/unit/tsan.supp" \
		$(TSAN_DIR)/test_pkcs11_login
else
	@echo "check-tsan: cmocka is missing, skipped"
endif
	@$(MAKE) $(AM_MAKEFLAGS) check-tsan-broker
clean-local: clean-tsan
clean-tsan:
	rm -rf $(TSAN_DIR)
.PHONY: check-tsan clean-tsan
