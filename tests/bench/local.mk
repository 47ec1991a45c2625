# SPDX-License-Identifier: Apache-2.0
# make bench (issue 4): built and run only on request, never by make check.
EXTRA_PROGRAMS = tests/bench/p11bench
tests_bench_p11bench_SOURCES = tests/bench/p11bench.c
tests_bench_p11bench_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_bench_p11bench_LDADD = $(CRYPTO_LIBS) -ldl
EXTRA_DIST += tests/bench/run.sh tests/bench/README.md
CLEANFILES += tests/bench/p11bench bench-results.csv

bench: tests/bench/p11bench attestkey attestkey-broker attestkey-pkcs11.la
	top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)' \
		$(SHELL) $(srcdir)/tests/bench/run.sh
.PHONY: bench
EXTRA_PROGRAMS += tests/bench/loginbench
tests_bench_loginbench_SOURCES = tests/bench/loginbench.c
tests_bench_loginbench_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_bench_loginbench_LDADD = -ldl
EXTRA_DIST += tests/bench/bench-lib.sh tests/bench/login.sh
CLEANFILES += tests/bench/loginbench
EXTRA_PROGRAMS += tests/bench/brokerload
tests_bench_brokerload_SOURCES = tests/bench/brokerload.c
tests_bench_brokerload_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(JOSE_CFLAGS)
tests_bench_brokerload_LDADD = libakevidence.la libakcommon.la $(CURL_LIBS) $(CRYPTO_LIBS) \
	$(JANSSON_LIBS) $(JOSE_LIBS) -lpthread
CLEANFILES += tests/bench/brokerload
