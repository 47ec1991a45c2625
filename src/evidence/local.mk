# SPDX-License-Identifier: Apache-2.0
# Guest-side evidence collectors (and the simulated SEV-SNP chip).
noinst_LTLIBRARIES += libakevidence.la
libakevidence_la_SOURCES = \
	src/evidence/guest.h \
	src/evidence/collect.c \
	src/evidence/tsm.c \
	src/evidence/sevguest.c \
	src/evidence/tdxguest.c \
	src/evidence/sim.c \
	src/evidence/sim_internal.h \
	src/evidence/sim_tdx.c \
	src/evidence/sim_azure.c \
	src/evidence/azure.c \
	src/evidence/tpm.h \
	src/evidence/tpm.c
# azure.c uses libcurl (THIM) but does not link it: the module brings the
# GnuTLS libcurl (CURL_MODULE_LIBS), every other program the OpenSSL one.
libakevidence_la_LIBADD = $(TSS2_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS)
