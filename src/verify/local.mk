# SPDX-License-Identifier: Apache-2.0
# Broker-side evidence verifiers and token policy.
noinst_LTLIBRARIES += libakverify.la
libakverify_la_SOURCES = \
	src/verify/snp.c \
	src/verify/kds.c \
	src/verify/kds.h \
	src/verify/tdx.c \
	src/verify/policy.c \
	src/verify/policy_internal.h \
	src/verify/policy_tdx.c \
	src/verify/tdx_collateral.c \
	src/verify/tdx_internal.h \
	src/verify/tdx_tcb.c \
	src/verify/tdx_memo.c \
	src/verify/azure.c \
	src/verify/policy_az.c \
	src/verify/verify_msg.h
libakverify_la_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
libakverify_la_LIBADD = $(CRYPTO_LIBS) $(JANSSON_LIBS) $(CURL_LIBS)
