# SPDX-License-Identifier: Apache-2.0
# make bench (issue 4): built and run only on request, never by make check.
# tests/bench/README.md says what each benchmark measures and how to read it.
EXTRA_PROGRAMS = tests/bench/p11bench tests/bench/loginbench tests/bench/brokerload \
	tests/bench/tlsload
tests_bench_p11bench_SOURCES = tests/bench/p11bench.c
tests_bench_p11bench_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_bench_p11bench_LDADD = $(CRYPTO_LIBS) -ldl -lm
tests_bench_loginbench_SOURCES = tests/bench/loginbench.c
tests_bench_loginbench_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_bench_loginbench_LDADD = $(CRYPTO_LIBS) -ldl
tests_bench_brokerload_SOURCES = tests/bench/brokerload.c
tests_bench_brokerload_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) \
	$(JOSE_CFLAGS)
tests_bench_brokerload_LDADD = libakevidence.la libakcommon.la $(CURL_LIBS) $(CRYPTO_LIBS) \
	$(JANSSON_LIBS) $(JOSE_LIBS) -lpthread
tests_bench_tlsload_SOURCES = tests/bench/tlsload.c
tests_bench_tlsload_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS)
tests_bench_tlsload_LDADD = $(SSL_LIBS) $(CRYPTO_LIBS) -lpthread
EXTRA_DIST += tests/bench/README.md tests/bench/run.sh tests/bench/bench-lib.sh \
	tests/bench/signing.sh tests/bench/nginx.sh tests/bench/login.sh tests/bench/broker.sh \
	tests/bench/storm.sh
CLEANFILES += $(EXTRA_PROGRAMS) bench-results.csv

bench: $(EXTRA_PROGRAMS) tests/integration/slowclient attestkey attestkey-broker attestkey-pkcs11.la
	top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)' \
		$(SHELL) $(srcdir)/tests/bench/run.sh
.PHONY: bench

# make soak (issue 13 item 5): SOAK_SECONDS (600) of logins, signing,
# renewals, rotations and broker restarts; tests/soak/soak.sh says what
# must hold. Never run by make check.
EXTRA_DIST += tests/soak/soak.sh
soak: $(check_PROGRAMS) attestkey attestkey-broker attestkey-pkcs11.la
	top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)' \
		$(SHELL) $(srcdir)/tests/soak/soak.sh
.PHONY: soak
