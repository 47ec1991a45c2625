# SPDX-License-Identifier: Apache-2.0
# `attestkey key` (src/tool/key.c and the file store) without a shell.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_key
TESTS += tests/unit/test_key
tests_unit_test_key_SOURCES = tests/unit/test_key.c src/tool/key.c src/tool/key_file.c
tests_unit_test_key_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_key_LDADD = libakcommon.la $(CMOCKA_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) \
	$(JOSE_LIBS) $(INIH_LIBS)
endif
