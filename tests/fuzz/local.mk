# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets (docs/security.md "Fuzzing", tests/fuzz/README.md).
# ./configure --enable-fuzzing (clang) links them with libFuzzer; any other
# build links tests/fuzz/standalone.c instead, so make check runs every
# seed and regression input of tests/fuzz/corpus/ on every build.
FUZZ_NAMES = snp_report tdx_quote broker_request module_response ini_config \
	vault_response azure broker_key
FUZZ_PROGS = tests/fuzz/fuzz_snp_report tests/fuzz/fuzz_tdx_quote \
	tests/fuzz/fuzz_broker_request tests/fuzz/fuzz_module_response tests/fuzz/fuzz_ini_config \
	tests/fuzz/fuzz_vault_response tests/fuzz/fuzz_azure tests/fuzz/fuzz_broker_key
check_PROGRAMS += $(FUZZ_PROGS)
TESTS += tests/fuzz/fuzz.sh
TESTS_ENVIRONMENT += AK_FUZZ_NAMES='$(FUZZ_NAMES)' AK_FUZZING='$(AK_FUZZING)'
EXTRA_DIST += tests/fuzz/fuzz.sh tests/fuzz/README.md tests/fuzz/seeds.py tests/fuzz/corpus tests/fuzz/keys
noinst_HEADERS += tests/fuzz/fuzz.h

if FUZZING
FUZZ_DRIVER =
FUZZ_LINK = -fsanitize=fuzzer
else
FUZZ_DRIVER = tests/fuzz/standalone.c
FUZZ_LINK =
endif
FUZZ_INCLUDES = $(AM_CPPFLAGS) -DAK_FUZZ_TESTDATA='"$(abs_top_srcdir)/tests/data"' \
	-DAK_FUZZ_SRCDIR='"$(abs_top_srcdir)/tests/fuzz"'
FUZZ_LINKFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
FUZZ_COMMON = tests/fuzz/fuzz.c $(FUZZ_DRIVER)
FUZZ_VERIFY_LIBS = libakverify.la libakcommon.la $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) \
	$(INIH_LIBS) $(CURL_LIBS)

tests_fuzz_fuzz_snp_report_SOURCES = tests/fuzz/fuzz_snp_report.c $(FUZZ_COMMON)
tests_fuzz_fuzz_snp_report_CPPFLAGS = $(FUZZ_INCLUDES)
tests_fuzz_fuzz_snp_report_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_snp_report_LDADD = $(FUZZ_VERIFY_LIBS)

tests_fuzz_fuzz_tdx_quote_SOURCES = tests/fuzz/fuzz_tdx_quote.c $(FUZZ_COMMON)
tests_fuzz_fuzz_tdx_quote_CPPFLAGS = $(FUZZ_INCLUDES)
tests_fuzz_fuzz_tdx_quote_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_tdx_quote_LDADD = $(FUZZ_VERIFY_LIBS)

tests_fuzz_fuzz_broker_request_SOURCES = tests/fuzz/fuzz_broker_request.c \
	tests/unit/test_broker_util.c $(FUZZ_COMMON)
tests_fuzz_fuzz_broker_request_CPPFLAGS = $(FUZZ_INCLUDES)
tests_fuzz_fuzz_broker_request_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
tests_fuzz_fuzz_broker_request_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_broker_request_LDADD = libakbroker.la libakverify.la libakvault.la libakcommon.la \
	$(MHD_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) $(CURL_LIBS) \
	$(P11KIT_LIBS)

# the module's release.c (its answers' handling, no transfer) and what it
# uses; libakevidence only resolves the collector release.c calls
tests_fuzz_fuzz_module_response_SOURCES = tests/fuzz/fuzz_module_response.c $(FUZZ_COMMON)
tests_fuzz_fuzz_module_response_CPPFLAGS = $(FUZZ_INCLUDES) $(P11KIT_CFLAGS)
tests_fuzz_fuzz_module_response_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_module_response_LDADD = libakpkcs11.la libakevidence.la libakcommon.la \
	$(CURL_MODULE_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)

# the module's parser (GnuTLS libcurl) and the broker's (OpenSSL libcurl)
# in one program: neither calls libcurl while parsing
tests_fuzz_fuzz_ini_config_SOURCES = tests/fuzz/fuzz_ini_config.c $(FUZZ_COMMON)
tests_fuzz_fuzz_ini_config_CPPFLAGS = $(FUZZ_INCLUDES) $(P11KIT_CFLAGS)
tests_fuzz_fuzz_ini_config_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_ini_config_LDADD = libakpkcs11.la libakevidence.la libakbroker.la libakverify.la \
	libakvault.la libakcommon.la $(MHD_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) \
	$(JOSE_LIBS) $(INIH_LIBS) $(P11KIT_LIBS) $(CURL_MODULE_LIBS)

tests_fuzz_fuzz_azure_SOURCES = tests/fuzz/fuzz_azure.c $(FUZZ_COMMON)
tests_fuzz_fuzz_azure_CPPFLAGS = $(FUZZ_INCLUDES)
tests_fuzz_fuzz_azure_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_azure_LDADD = $(FUZZ_VERIFY_LIBS)

# src/common/vault.c compiled in (its parsing is static): not libakvault.la
tests_fuzz_fuzz_vault_response_SOURCES = tests/fuzz/fuzz_vault_response.c $(FUZZ_COMMON)
tests_fuzz_fuzz_vault_response_CPPFLAGS = $(FUZZ_INCLUDES)
tests_fuzz_fuzz_vault_response_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
tests_fuzz_fuzz_vault_response_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_vault_response_LDADD = libakcommon.la $(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS)

# broker_key_from_pem (libakbroker), and src/broker/keystore_vault.c
# compiled in (what it does with Vault's answers is static); libakbroker's
# own copy of it is then not linked (an archive member nothing needs)
tests_fuzz_fuzz_broker_key_SOURCES = tests/fuzz/fuzz_broker_key.c $(FUZZ_COMMON)
tests_fuzz_fuzz_broker_key_CPPFLAGS = $(FUZZ_INCLUDES)
tests_fuzz_fuzz_broker_key_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
tests_fuzz_fuzz_broker_key_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_broker_key_LDADD = libakbroker.la libakverify.la libakvault.la libakcommon.la \
	$(MHD_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) $(CURL_LIBS) \
	$(P11KIT_LIBS)

# Longer runs (FUZZ_SECONDS each, default 300), new inputs kept in the
# build directory's tests/fuzz/work/<target>/; FUZZ_TARGETS picks targets.
fuzz: $(FUZZ_PROGS)
	@if test "$(AK_FUZZING)" != yes; then \
	  echo "make fuzz: configure with CC=clang --enable-fuzzing first" >&2; exit 1; fi
	@secs="$(FUZZ_SECONDS)"; $(TESTS_ENVIRONMENT) FUZZ_SECONDS=$${secs:-300} \
	  $(SHELL) $(srcdir)/tests/fuzz/fuzz.sh --long >tests/fuzz/fuzz.log 2>&1; \
	  grep -v '^# ' tests/fuzz/fuzz.log; echo "make fuzz: the whole log is tests/fuzz/fuzz.log"; \
	  ! grep -q '^not ok' tests/fuzz/fuzz.log
CLEANFILES += tests/fuzz/fuzz.log
clean-local: clean-fuzz
clean-fuzz:
	-rm -rf tests/fuzz/work tests/fuzz/check-work tests/fuzz/artifacts
.PHONY: fuzz clean-fuzz
