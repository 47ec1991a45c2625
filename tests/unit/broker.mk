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
