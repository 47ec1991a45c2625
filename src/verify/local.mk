# SPDX-License-Identifier: Apache-2.0
# Broker-side evidence verifiers and token policy.
noinst_LTLIBRARIES += libakverify.la
libakverify_la_SOURCES = \
	src/verify/snp.c \
	src/verify/kds.c \
	src/verify/kds.h \
	src/verify/policy.c
libakverify_la_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
libakverify_la_LIBADD = $(CRYPTO_LIBS) $(JANSSON_LIBS) $(CURL_LIBS)
