# SPDX-License-Identifier: Apache-2.0
# The `attestkey` admin/diagnostic CLI.
bin_PROGRAMS += attestkey
attestkey_SOURCES = \
	src/tool/tool.h \
	src/tool/main.c \
	src/tool/util.c \
	src/tool/sim.c \
	src/tool/snp.c \
	src/tool/binding.c \
	src/tool/evidence.c
# evidence.c reads the module's configuration with its parser (config.c)
attestkey_CPPFLAGS = $(AM_CPPFLAGS) $(P11KIT_CFLAGS)
attestkey_LDADD = libakverify.la libakpkcs11.la libakevidence.la libakcommon.la \
	$(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)
