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
	src/tool/evidence.c \
	src/tool/key.h \
	src/tool/key.c \
	src/tool/key_file.c \
	src/tool/key_vault.c \
	src/tool/key_pkcs11.c \
	src/tool/doctor.h \
	src/tool/doctor.c \
	src/tool/doctor_broker.c \
	src/tool/setup.c
# evidence.c reads the module's configuration with its parser (config.c)
# doctor.c dlopens the module for its login check; doctor_broker.c runs the
# broker's own configuration checks (libakbroker)
attestkey_CPPFLAGS = $(AM_CPPFLAGS) $(P11KIT_CFLAGS) $(CURL_CFLAGS) -DAK_INTEL_ROOTS_DEFAULT='"$(pkgdatadir)/intel"' \
	-DAK_PKCS11_MODULE_DEFAULT='"$(pkcs11_moduledir)/attestkey-pkcs11.so"'
attestkey_LDADD = libakbroker.la libakverify.la libakpkcs11.la libakevidence.la libakvault.la libakcommon.la \
	$(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) $(MHD_LIBS) \
	$(P11KIT_LIBS) -ldl
# Intel's SGX Root CA and TCB signing certificates (public; copied from
# ../shared/testvectors/intel-roots, see data/intel/README.md): the
# default of `attestkey tdx verify --roots`.
attestkey_SOURCES += src/tool/tdx.c src/tool/azure.c
inteldir = $(pkgdatadir)/intel
dist_intel_DATA = \
	data/intel/Intel_SGX_Root_CA.pem \
	data/intel/Intel_SGX_TCB_Signing_2025-05-06_to_2032-05-06.pem \
	data/intel/Intel_SGX_TCB_Signing_2018-05-21_to_2025-05-21_EXPIRED.pem
EXTRA_DIST += data/intel/README.md
