# SPDX-License-Identifier: Apache-2.0
examplesdir = $(docdir)/examples
dist_examples_DATA = \
	conf/attestkey.conf.example \
	conf/openssl-pkcs11.cnf.example \
	conf/nginx-attestkey.conf.example \
	conf/broker.conf.example \
	conf/logrotate

# The p11-kit registration, with the module's installed path filled in.
p11moduleconfdir = $(p11_module_configs)
p11moduleconf_DATA = conf/attestkey.module
CLEANFILES += conf/attestkey.module
conf/attestkey.module: $(srcdir)/conf/attestkey.module.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && \
	sed -e 's|@pkcs11_moduledir[@]|$(pkcs11_moduledir)|g' $(srcdir)/conf/attestkey.module.in >$@.tmp && \
	mv $@.tmp $@
