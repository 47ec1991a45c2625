# SPDX-License-Identifier: Apache-2.0
# The Vault client's rules and refusals (no Vault needed; the real Vault
# runs in tests/integration/vault-*.sh).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_vault
TESTS += tests/unit/test_vault
tests_unit_test_vault_SOURCES = tests/unit/test_vault.c
tests_unit_test_vault_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS)
tests_unit_test_vault_LDADD = libakvault.la libakcommon.la $(CMOCKA_LIBS) $(CURL_LIBS) \
	$(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS)
endif
# The broker's [keystore NAME] / [token] keystore configuration
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_vault_config
TESTS += tests/unit/test_vault_config
tests_unit_test_vault_config_SOURCES = tests/unit/test_vault_config.c \
	tests/unit/test_broker_util.c
tests_unit_test_vault_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vault_config_LDADD = $(BROKER_TEST_LDADD)
endif
