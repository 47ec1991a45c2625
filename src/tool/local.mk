# SPDX-License-Identifier: Apache-2.0
# The `attestkey` admin/diagnostic CLI.
bin_PROGRAMS += attestkey
attestkey_SOURCES = \
	src/tool/tool.h \
	src/tool/main.c \
	src/tool/util.c \
	src/tool/sim.c \
	src/tool/snp.c \
	src/tool/binding.c
attestkey_LDADD = libakverify.la libakevidence.la libakcommon.la \
	$(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)
