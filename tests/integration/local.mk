# SPDX-License-Identifier: Apache-2.0
# Integration tests: TAP shell scripts that start the real broker, and drive
# the real module through pkcs11-tool, p11-kit, libp11's engine and nginx.
check_PROGRAMS += tests/integration/p11probe
tests_integration_p11probe_SOURCES = tests/integration/p11probe.c
tests_integration_p11probe_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_integration_p11probe_LDADD = -ldl
check_PROGRAMS += tests/integration/p11diff
tests_integration_p11diff_SOURCES = tests/integration/p11diff.c
tests_integration_p11diff_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_integration_p11diff_LDADD = -ldl
# issue 8: searches core files for the secret parts of private keys
check_PROGRAMS += tests/integration/corescan
tests_integration_corescan_SOURCES = tests/integration/corescan.c
tests_integration_corescan_LDADD = $(CRYPTO_LIBS)
# issue 8: slow clients against the broker (broker-attack.sh)
check_PROGRAMS += tests/integration/slowclient
tests_integration_slowclient_SOURCES = tests/integration/slowclient.c
tests_integration_slowclient_CFLAGS = $(AM_CFLAGS) $(SSL_CFLAGS) $(PTHREAD_CFLAGS)
tests_integration_slowclient_LDADD = $(SSL_LIBS) $(CRYPTO_LIBS) -lpthread
# module-tls.sh: a hostile OpenSSL provider, loaded first by openssl.cnf
check_LTLIBRARIES = tests/integration/hostile-provider.la
tests_integration_hostile_provider_la_SOURCES = tests/integration/hostile-provider.c
tests_integration_hostile_provider_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
# no sanitizer flags: openssl and curl load it without ASan's runtime
tests_integration_hostile_provider_la_CFLAGS = -std=gnu11 -Wall -Wextra $(CRYPTO_CFLAGS)
# audit.sh: fdatasync() that fails (a disk whose write-back failed)
check_LTLIBRARIES += tests/integration/failsync.la
tests_integration_failsync_la_SOURCES = tests/integration/failsync.c
tests_integration_failsync_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
# no sanitizer flags: preloaded before the broker's ASan runtime
tests_integration_failsync_la_CFLAGS = -std=gnu11 -Wall -Wextra
# audit-flush.sh: fdatasync() on a slow disk, so that releases overlap it
check_LTLIBRARIES += tests/integration/slowsync.la
tests_integration_slowsync_la_SOURCES = tests/integration/slowsync.c
tests_integration_slowsync_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_integration_slowsync_la_CFLAGS = -std=gnu11 -Wall -Wextra
# collectors.sh: the kernel's side of configfs-tsm, /dev/sev-guest and
# /dev/tdx_guest, LD_PRELOADed; signs with the simulated SNP chip
check_LTLIBRARIES += tests/integration/fakekernel.la
tests_integration_fakekernel_la_SOURCES = tests/integration/fakekernel.c
tests_integration_fakekernel_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere \
	-Wl,--version-script=$(srcdir)/tests/integration/fakekernel.map
tests_integration_fakekernel_la_LIBADD = libakevidence.la libakcommon.la \
	$(CURL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) $(JOSE_LIBS) -ldl
EXTRA_tests_integration_fakekernel_la_DEPENDENCIES = $(srcdir)/tests/integration/fakekernel.map
EXTRA_DIST += tests/integration/fakekernel.map
# issue 9: a static HTTP server for the KDS / PCS look-alikes (httpfixture-lib.sh)
check_PROGRAMS += tests/integration/httpfixture
tests_integration_httpfixture_SOURCES = tests/integration/httpfixture.c
tests_integration_httpfixture_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
tests_integration_httpfixture_LDADD = $(MHD_LIBS)

INTEGRATION_TESTS = \
	tests/integration/broker-api.sh \
	tests/integration/protocol-v2.sh \
	tests/integration/pkcs11-tool.sh \
	tests/integration/engine.sh \
	tests/integration/fork.sh \
	tests/integration/refusals.sh \
	tests/integration/audit.sh \
	tests/integration/audit-flush.sh \
	tests/integration/replicas.sh \
	tests/integration/broker-store.sh \
	tests/integration/nginx.sh \
	tests/integration/tdx-sim.sh \
	tests/integration/nginx-tdx.sh \
	tests/integration/public-objects.sh \
	tests/integration/public-cache.sh \
	tests/integration/module-tls.sh \
	tests/integration/clients.sh \
	tests/integration/softhsm-diff.sh \
	tests/integration/corescan-self.sh \
	tests/integration/coredump.sh \
	tests/integration/coredump-broker.sh \
	tests/integration/fork-vmlck.sh \
	tests/integration/broker-attack.sh \
	tests/integration/collectors.sh \
	tests/integration/httpfixture.sh \
	tests/integration/tdx-verify.sh \
	tests/integration/snp-vectors.sh \
	tests/integration/snp-kds.sh \
	tests/integration/vault-client.sh \
	tests/integration/vault-broker.sh \
	tests/integration/vault-nginx.sh \
	tests/integration/broker-reload.sh \
	tests/integration/broker-drain.sh \
	tests/integration/broker-reload-hsm.sh \
	tests/integration/broker-check-config.sh \
	tests/integration/hsm-store.sh \
	tests/integration/hsm-login.sh \
	tests/integration/hsm-invariant.sh \
	tests/integration/metrics.sh
# issue 12: the broker's deny list, attestkey-broker revoke, /v1/admin/
INTEGRATION_TESTS += tests/integration/revoke.sh
# issue 11 item 6: attestkey doctor
INTEGRATION_TESTS += tests/integration/doctor.sh
# issue 11 item 7: attestkey setup sim, run as docs/quickstart.md shows it
INTEGRATION_TESTS += tests/integration/setup-sim.sh
# issue 10 item 4: attestkey key (the provisioning CLI)
INTEGRATION_TESTS += tests/integration/key-cli.sh tests/integration/key-cli-core.sh \
	tests/integration/key-cli-vault.sh tests/integration/key-cli-pkcs11.sh
EXTRA_DIST += tests/integration/key-cli-lib.sh
# issue 11 items 4, 5 and 7: the systemd unit, the quiet unconfigured
# module, an install that stays in its prefix, the Debian packages
INTEGRATION_TESTS += tests/integration/systemd-unit.sh tests/integration/quiet-module.sh \
	tests/integration/install-prefix.sh
# packages.sh is in TESTS already (Makefile.am: it starts first)
EXTRA_DIST += tests/integration/pkg-lib.sh tests/integration/packages.sh
# issue 12: leases, renewal, revocation, offline grace, rotation, fork
INTEGRATION_TESTS += tests/integration/lease.sh tests/integration/lease-grace.sh \
	tests/integration/lease-rotate.sh tests/integration/lease-nginx.sh \
	tests/integration/lease-vault-nginx.sh
EXTRA_DIST += tests/integration/lease-lib.sh
# issue 13 item 3: fault injection (docs/security.md "Fault injection")
INTEGRATION_TESTS += tests/integration/faults.sh tests/integration/faults-vault.sh
# issue 14: attestkey az-snp verify on the real Azure vTPM evidence
INTEGRATION_TESTS += tests/integration/az-verify.sh tests/integration/az-verify-sim.sh
# issue 14: the Azure vTPM collector and `sim azure` against swtpm
INTEGRATION_TESTS += tests/integration/az-swtpm.sh
# issue 14: nginx on a key released to an Azure guest (swtpm + tpm2-tss)
INTEGRATION_TESTS += tests/integration/az-nginx.sh
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) tests/integration/lib.sh tests/integration/nginx-lib.sh \
	tests/integration/coredump-lib.sh tests/integration/httpfixture-lib.sh \
	tests/integration/snp-lib.sh tests/integration/vault-lib.sh \
	tests/integration/hsm-lib.sh
# issue 10: drives the Vault client against the real Vault (vault-*.sh)
check_PROGRAMS += tests/integration/vaultprobe
tests_integration_vaultprobe_SOURCES = tests/integration/vaultprobe.c
tests_integration_vaultprobe_LDADD = libakvault.la libakcommon.la $(CURL_LIBS) $(CRYPTO_LIBS) \
	$(JANSSON_LIBS) $(JOSE_LIBS) $(INIH_LIBS) $(PTHREAD_LIBS)
# issue 12: leases, renewal, revocation, offline grace, rotation, fork
check_PROGRAMS += tests/integration/leasehost
tests_integration_leasehost_SOURCES = tests/integration/leasehost.c
tests_integration_leasehost_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS) $(CRYPTO_CFLAGS)
tests_integration_leasehost_LDADD = $(CRYPTO_LIBS) $(PTHREAD_LIBS) -ldl
