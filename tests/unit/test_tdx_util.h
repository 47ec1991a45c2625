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

/* ../shared/testvectors/<rel>: $ATTESTKEY_VECTORS, else next to the
 * source tree ($ATTESTKEY_TESTDATA is <srcdir>/tests/data). */
static inline char *tdx_path(const char *rel)
{
	const char *base = getenv("ATTESTKEY_VECTORS");
	const char *data = getenv("ATTESTKEY_TESTDATA");
	char *p = NULL;
	int n;

	if (base)
		n = asprintf(&p, "%s/%s", base, rel);
	else
		n = asprintf(&p, "%s/../../../shared/testvectors/%s", data ? data : "tests/data",
			     rel);
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

static inline STACK_OF(X509) *tdx_chain(const char *rel)
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

static inline uint16_t tdx_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t tdx_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t tdx_le64(const uint8_t *p)
{
	return (uint64_t)tdx_le32(p) | (uint64_t)tdx_le32(p + 4) << 32;
}

/* The fields the TCB evaluation and the policy read, from the layout in
 * include/attestkey/tdx.h (independent of the quote parser, so these
 * tests check the evaluation alone), and the PCK leaf. */
static inline void tdx_quote_fill(const uint8_t *buf, size_t len, struct ak_tdx_quote *q,
				  X509 **leaf)
{
	size_t off, body_len = AK_TDX_BODY10_LEN;
	const uint8_t *b, *r;
	const char *pem;
	BIO *bio;

	memset(q, 0, sizeof(*q));
	assert_true(len > 1024);
	q->version = tdx_le16(buf);
	q->att_key_type = tdx_le16(buf + AK_TDX_OFF_ATT_KEY_TYPE);
	q->tee_type = tdx_le32(buf + AK_TDX_OFF_TEE_TYPE);
	q->body_type = 2;
	off = AK_TDX_HEADER_LEN;
	if (q->version == 5) {
		q->body_type = tdx_le16(buf + off);
		body_len = tdx_le32(buf + off + 2);
		off += 6;
	}
	b = buf + off;
	memcpy(q->body.tee_tcb_svn, b + AK_TDX_BODY_TEE_TCB_SVN, 16);
	memcpy(q->body.mrseam, b + AK_TDX_BODY_MRSEAM, 48);
	memcpy(q->body.mrsignerseam, b + AK_TDX_BODY_MRSIGNERSEAM, 48);
	q->body.seam_attributes = tdx_le64(b + AK_TDX_BODY_SEAM_ATTRIBUTES);
	q->body.td_attributes = tdx_le64(b + AK_TDX_BODY_TD_ATTRIBUTES);
	q->body.xfam = tdx_le64(b + AK_TDX_BODY_XFAM);
	memcpy(q->body.mrtd, b + AK_TDX_BODY_MRTD, 48);
	memcpy(q->body.mrconfigid, b + AK_TDX_BODY_MRCONFIGID, 48);
	memcpy(q->body.mrowner, b + AK_TDX_BODY_MROWNER, 48);
	memcpy(q->body.mrownerconfig, b + AK_TDX_BODY_MROWNERCONFIG, 48);
	for (int i = 0; i < 4; i++)
		memcpy(q->body.rtmr[i], b + AK_TDX_BODY_RTMR0 + 48 * i, 48);
	memcpy(q->body.report_data, b + AK_TDX_BODY_REPORT_DATA, 64);
	if (q->body_type == 3)
		memcpy(q->body.tee_tcb_svn2, b + AK_TDX_BODY_TEE_TCB_SVN2, 16);
	/* sig data: u32 len | sig 64 | key 64 | u16 type | u32 size | QE report */
	r = b + body_len + 4 + 64 + 64 + 2 + 4;
	assert_true((size_t)(r - buf) + AK_SGX_REPORT_BODY_LEN < len);
	memcpy(q->qe_report.cpusvn, r + AK_SGX_OFF_CPUSVN, 16);
	q->qe_report.miscselect = tdx_le32(r + AK_SGX_OFF_MISCSELECT);
	memcpy(q->qe_report.attributes, r + AK_SGX_OFF_ATTRIBUTES, 16);
	memcpy(q->qe_report.mrenclave, r + AK_SGX_OFF_MRENCLAVE, 32);
	memcpy(q->qe_report.mrsigner, r + AK_SGX_OFF_MRSIGNER, 32);
	q->qe_report.isvprodid = tdx_le16(r + AK_SGX_OFF_ISVPRODID);
	q->qe_report.isvsvn = tdx_le16(r + AK_SGX_OFF_ISVSVN);
	memcpy(q->qe_report.report_data, r + AK_SGX_OFF_REPORT_DATA, 64);
	/* the PCK leaf is the first certificate of the PEM chain */
	pem = memmem(buf, len, "-----BEGIN CERTIFICATE-----", 27);
	assert_non_null(pem);
	bio = BIO_new_mem_buf(pem, (int)(len - (size_t)((const uint8_t *)pem - buf)));
	*leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(*leaf);
}

#endif
