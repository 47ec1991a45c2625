# SPDX-License-Identifier: Apache-2.0
# Shared core: linked into the module, the broker and the CLI.
noinst_LTLIBRARIES += libakcommon.la
libakcommon_la_SOURCES = \
	src/common/log.c \
	src/common/observe.c \
	src/common/memzero.c \
	src/common/encode.c \
	src/common/secmem.c \
	src/common/secjson.c \
	src/common/protocol.c \
	src/common/jwe.c \
	src/common/hsmenv.c \
	src/common/envelope.c \
	src/common/pkey.c \
	src/common/snp.c \
	src/common/tdx.c \
	src/common/azure.c
libakcommon_la_LIBADD = $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)

# The Vault KV v2 client (vault.h): the broker's Vault key store and the
# CLI link it; not the PKCS#11 module, whose libcurl is the GnuTLS one.
noinst_LTLIBRARIES += libakvault.la
libakvault_la_SOURCES = src/common/vault.c
libakvault_la_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
libakvault_la_LIBADD = $(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS)
