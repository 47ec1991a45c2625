# SPDX-License-Identifier: Apache-2.0
# Shared core: linked into the module, the broker and the CLI.
noinst_LTLIBRARIES += libakcommon.la
libakcommon_la_SOURCES = \
	src/common/log.c \
	src/common/memzero.c \
	src/common/encode.c \
	src/common/secmem.c \
	src/common/secjson.c \
	src/common/protocol.c \
	src/common/jwe.c \
	src/common/hsmenv.c \
	src/common/pkey.c \
	src/common/snp.c \
	src/common/tdx.c
libakcommon_la_LIBADD = $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)
