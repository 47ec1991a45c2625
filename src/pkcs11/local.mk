# SPDX-License-Identifier: Apache-2.0
# The PKCS#11 module: all code in a convenience library (so unit tests reach
# it through C_GetFunctionList), then the module itself, which exports only
# the three entry points of attestkey.map.
noinst_LTLIBRARIES += libakpkcs11.la
libakpkcs11_la_SOURCES = \
	src/pkcs11/p11.h \
	src/pkcs11/config.c \
	src/pkcs11/object.c \
	src/pkcs11/crypto.c \
	src/pkcs11/digest.c \
	src/pkcs11/release.c \
	src/pkcs11/pubcache.c \
	src/pkcs11/module.c
libakpkcs11_la_CPPFLAGS = $(AM_CPPFLAGS) $(P11KIT_CFLAGS) $(CURL_CFLAGS) \
	-DLOCALSTATEDIR='"$(localstatedir)"'
libakpkcs11_la_LIBADD = $(CURL_MODULE_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS)
noinst_HEADERS += include/attestkey/pkcs11-3.h

pkcs11_module_LTLIBRARIES = attestkey-pkcs11.la
attestkey_pkcs11_la_SOURCES =
# no sources of its own: force the C linker (automake manual, "Libtool Convenience Libraries")
nodist_EXTRA_attestkey_pkcs11_la_SOURCES = dummy.c
attestkey_pkcs11_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -no-undefined \
	-Wl,--version-script=$(srcdir)/src/pkcs11/attestkey.map
attestkey_pkcs11_la_LIBADD = libakpkcs11.la libakevidence.la libakcommon.la \
	$(CURL_MODULE_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) $(PTHREAD_CFLAGS)
EXTRA_attestkey_pkcs11_la_DEPENDENCIES = $(srcdir)/src/pkcs11/attestkey.map
EXTRA_DIST += src/pkcs11/attestkey.map

# The module's man pages (Markdown) and its p11-kit registration template;
# conf/local.mk turns attestkey.module.in into the installed .module file.
dist_doc_DATA += docs/attestkey-pkcs11.8.md docs/attestkey.conf.5.md
EXTRA_DIST += conf/attestkey.module.in

# A PKCS#11 module is dlopen()ed by path: the libtool archive is not wanted.
# (pkcs11_moduledir has no "exec" in its name: automake installs it with
# the data, so the hook is install-data's.)
install-data-hook: remove-module-la
remove-module-la:
	rm -f $(DESTDIR)$(pkcs11_moduledir)/attestkey-pkcs11.la
# without the .la, libtool's uninstall no longer knows the .so: remove it
# (make distcheck's distuninstallcheck)
uninstall-hook: remove-module-so
remove-module-so:
	rm -f $(DESTDIR)$(pkcs11_moduledir)/attestkey-pkcs11.so
.PHONY: remove-module-la remove-module-so
