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

# The broker's systemd unit (docs/operations.md, "systemd"), with the
# installed paths filled in.
if INSTALL_SYSTEMD_UNIT
systemdsystemunit_DATA = conf/attestkey-broker.service
else
noinst_DATA = conf/attestkey-broker.service
endif
EXTRA_DIST += conf/attestkey-broker.service.in
CLEANFILES += conf/attestkey-broker.service
conf/attestkey-broker.service: $(srcdir)/conf/attestkey-broker.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		-e 's|@docdir[@]|$(docdir)|g' $(srcdir)/conf/attestkey-broker.service.in >$@.tmp && \
	mv $@.tmp $@
