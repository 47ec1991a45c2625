/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the SEV-SNP unit tests (test_snp*.c, test_policy.c). */
#ifndef ATTESTKEY_TEST_SNP_UTIL_H
#define ATTESTKEY_TEST_SNP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "attestkey/common.h"

/* $ATTESTKEY_TESTDATA/snp/<rel> (make check sets it). */
static inline char *snp_data_path(const char *rel)
{
	const char *base = getenv("ATTESTKEY_TESTDATA");
	char *p = NULL;

	if (!base)
		base = "tests/data";
	if (asprintf(&p, "%s/snp/%s", base, rel) < 0)
		p = NULL;
	assert_non_null(p);
	return p;
}

/* Reads a test vector; fails the test when it is missing. */
static inline uint8_t *snp_read(const char *rel, size_t *len)
{
	char *path = snp_data_path(rel);
	uint8_t *d = ak_read_file(path, len);

	if (!d)
		fail_msg("cannot read test vector %s", path);
	free(path);
	return d;
}

/* True when haystack contains needle. */
static inline int snp_contains(const char *haystack, const char *needle)
{
	return strstr(haystack, needle) != NULL;
}

#endif
