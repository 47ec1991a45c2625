/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the TDX collateral / TCB unit tests: the real vectors. */
#ifndef ATTESTKEY_TEST_TDX_UTIL_H
#define ATTESTKEY_TEST_TDX_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestkey/common.h"
#include "attestkey/tdx.h"

/* <rel> in $ATTESTKEY_VECTORS (make check: tests/data, the copy of
 * ../shared/testvectors that ships in the tarball), else tests/data. */
static inline char *tdx_path(const char *rel)
{
	const char *base = getenv("ATTESTKEY_VECTORS");
	char *p = NULL;
	int n;

	n = asprintf(&p, "%s/%s", base ? base : "tests/data", rel);
	if (n < 0)
		p = NULL;
	assert_non_null(p);
	return p;
}

static inline uint8_t *tdx_read(const char *rel, size_t *len)
{
	char *path = tdx_path(rel);
	uint8_t *d = ak_read_file(path, len);

	if (!d)
		fail_msg("cannot read test vector %s", path);
	free(path);
	return d;
}

static inline X509 *tdx_cert(const char *rel)
{
	size_t len;
	uint8_t *pem = tdx_read(rel, &len);
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	free(pem);
	assert_non_null(x);
	return x;
}

static inline STACK_OF(X509) * tdx_chain(const char *rel)
{
	size_t len;
	uint8_t *pem = tdx_read(rel, &len);
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;

	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	BIO_free(b);
	free(pem);
	assert_true(sk_X509_num(sk) > 0);
	return sk;
}

static inline X509_CRL *tdx_crl(const char *rel)
{
	size_t len;
	uint8_t *der = tdx_read(rel, &len);
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

	free(der);
	assert_non_null(crl);
	return crl;
}

static inline int tdx_contains(const char *haystack, const char *needle)
{
	return haystack && strstr(haystack, needle) != NULL;
}

/* Parse a quote (the real parser, src/common/tdx.c) and take its PCK leaf,
 * the first certificate of the quote's PEM chain. */
static inline void tdx_quote_fill(const uint8_t *buf, size_t len, struct ak_tdx_quote *q,
				  X509 **leaf)
{
	BIO *bio;

	assert_int_equal(ak_tdx_quote_parse(buf, len, q), 0);
	bio = BIO_new_mem_buf(q->pck_chain_pem, (int)q->pck_chain_len);
	*leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(*leaf);
}

#endif
