# SPDX-License-Identifier: Apache-2.0
# Broker unit tests: nonce, key store, configuration and the request
# handler (driven without a socket through libakbroker.la).
EXTRA_DIST += tests/unit/test_broker_util.h

if HAVE_CMOCKA
BROKER_TESTS = \
	tests/unit/test_broker_nonce \
	tests/unit/test_broker_keystore \
	tests/unit/test_broker_config \
	tests/unit/test_broker_heap \
	tests/unit/test_broker_handler \
	tests/unit/test_broker_sim \
	tests/unit/test_broker_ratelimit \
	tests/unit/test_broker_fairshare \
	tests/unit/test_metrics
check_PROGRAMS += $(BROKER_TESTS)
TESTS += $(BROKER_TESTS)

BROKER_TEST_LDADD = libakbroker.la libakverify.la libakvault.la libakcommon.la \
	$(CMOCKA_LIBS) $(MHD_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) \
	$(CURL_LIBS) $(P11KIT_LIBS)

tests_unit_test_broker_nonce_SOURCES = tests/unit/test_broker_nonce.c
tests_unit_test_broker_nonce_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_broker_nonce_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_broker_ratelimit_SOURCES = tests/unit/test_broker_ratelimit.c
tests_unit_test_broker_ratelimit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_broker_ratelimit_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_broker_fairshare_SOURCES = tests/unit/test_broker_fairshare.c
tests_unit_test_broker_fairshare_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_broker_fairshare_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_broker_keystore_SOURCES = tests/unit/test_broker_keystore.c \
	tests/unit/test_broker_util.c
tests_unit_test_broker_keystore_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_broker_keystore_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_broker_config_SOURCES = tests/unit/test_broker_config.c \
	tests/unit/test_broker_util.c
tests_unit_test_broker_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_broker_config_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_broker_heap_SOURCES = tests/unit/test_broker_heap.c \
	tests/unit/test_broker_util.c
tests_unit_test_broker_heap_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_broker_heap_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_broker_handler_SOURCES = tests/unit/test_broker_handler.c \
	tests/unit/test_broker_util.c
tests_unit_test_broker_handler_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(MHD_CFLAGS)
tests_unit_test_broker_handler_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c tests/unit/test_broker_util.c
tests_unit_test_metrics_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_metrics_LDADD = $(BROKER_TEST_LDADD)

tests_unit_test_broker_sim_SOURCES = tests/unit/test_broker_sim.c \
	tests/unit/test_broker_util.c
tests_unit_test_broker_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(MHD_CFLAGS)
tests_unit_test_broker_sim_LDADD = libakbroker.la libakevidence.la libakverify.la libakvault.la \
	libakcommon.la $(CMOCKA_LIBS) $(MHD_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) \
	$(INIH_LIBS) $(CURL_LIBS) $(P11KIT_LIBS)
endif

# check-tsan (tests/unit/pkcs11.mk; docs/security.md "ThreadSanitizer"): the
# broker's own TSan compile, main.c and the sources of the libraries it links
# (the libtool ones may carry ASan), then the integration tests in
# TSAN_BROKER_TESTS with it as the broker (AK_TSAN_BROKER,
# tests/integration/lib.sh): each one fails on a ThreadSanitizer report.
TSAN_BROKER_SRCS = $(attestkey_broker_SOURCES) $(libakbroker_la_SOURCES) \
	$(libakverify_la_SOURCES) $(libakvault_la_SOURCES) $(libakcommon_la_SOURCES)
# The broker's threads: concurrent releases and the audit log's group
# commit (audit-flush), SIGHUP reloads and audit reopens while serving
# (broker-reload), SIGTERM's drain (broker-drain), the metrics listener's
# threads and /readyz (metrics), hundreds of connections at once, the
# connection guard, the rate limit and fair-share tables (broker-attack),
# two replicas on the real Vault's key store, one killed mid-run (replicas).
TSAN_BROKER_TESTS = tests/integration/audit-flush.sh tests/integration/broker-reload.sh \
	tests/integration/broker-drain.sh tests/integration/metrics.sh \
	tests/integration/broker-attack.sh tests/integration/replicas.sh
check-tsan-broker:
	@mkdir -p $(TSAN_DIR)
	srcs=`for f in $(TSAN_BROKER_SRCS); do case $$f in *.c) echo $(srcdir)/$$f;; esac; done`; \
	$(CC) -std=gnu11 $(TSAN_FLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
		$(PTHREAD_CFLAGS) $(CRYPTO_CFLAGS) $(JANSSON_CFLAGS) $(JOSE_CFLAGS) $(INIH_CFLAGS) \
		$(MHD_CFLAGS) $(GNUTLS_CFLAGS) $(CURL_CFLAGS) $(P11KIT_CFLAGS) \
		$$srcs -o $(TSAN_DIR)/attestkey-broker \
		$(MHD_LIBS) $(GNUTLS_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) \
		$(INIH_LIBS) $(P11KIT_LIBS) -lpthread
	AK_TSAN_BROKER='$(abs_top_builddir)/$(TSAN_DIR)/attestkey-broker' \
		$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(TSAN_BROKER_TESTS)'
if HAVE_CMOCKA
	@echo "check-tsan: eight threads verifying TDX quotes with one trust and its memo; a memo chain used first by another thread"
	srcs=`for f in $(libakverify_la_SOURCES) $(libakcommon_la_SOURCES); do \
		case $$f in *.c) echo $(srcdir)/$$f;; esac; done`; \
	$(CC) -std=gnu11 $(TSAN_FLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
		$(PTHREAD_CFLAGS) $(CRYPTO_CFLAGS) $(JANSSON_CFLAGS) $(JOSE_CFLAGS) $(CURL_CFLAGS) \
		$(CMOCKA_CFLAGS) $$srcs $(srcdir)/tests/unit/test_tdx.c -o $(TSAN_DIR)/test_tdx \
		$(CMOCKA_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) -lpthread
	AK_TEST_FILTER='test_verify_threads*' ATTESTKEY_VECTORS='$(abs_top_srcdir)/tests/data' \
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$(abs_srcdir)/tests/unit/tsan.supp" \
		$(TSAN_DIR)/test_tdx
endif
.PHONY: check-tsan-broker
