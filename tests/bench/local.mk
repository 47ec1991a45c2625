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
