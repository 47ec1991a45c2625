/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel TDX: the quote parser (src/common/tdx.c) and the verifier
 * (src/verify/tdx.c) against the real quotes in ../shared/testvectors/tdx
 * (its README.md says what each must give), and mutations of them.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "attestkey/common.h"
#include "attestkey/tdx.h"

/* $ATTESTKEY_VECTORS, else $top_srcdir/../shared/testvectors (make check
 * sets top_srcdir), else ../shared/testvectors. */
static char *vec_path(const char *rel)
{
	const char *v = getenv("ATTESTKEY_VECTORS"), *top = getenv("top_srcdir");
	char *p = NULL;
	int n;

	if (v)
		n = asprintf(&p, "%s/%s", v, rel);
	else if (top)
		n = asprintf(&p, "%s/../shared/testvectors/%s", top, rel);
	else
		n = asprintf(&p, "../shared/testvectors/%s", rel);
	assert_true(n > 0);
	return p;
}

static uint8_t *vec_read(const char *rel, size_t *len)
{
	char *path = vec_path(rel);
	uint8_t *d = ak_read_file(path, len);

	if (!d)
		fail_msg("cannot read test vector %s", path);
	free(path);
	return d;
}

static const struct vec_info {
	const char *dir;
	size_t file_len, quote_len;
	uint16_t version, body_type;
	const char *mrtd, *report_data;
	uint8_t tee_tcb_svn[3];
	bool debug;
} vecs[] = {
    {"tdx/v4-spr-go-tdx-guest", 4974, 4935, 4, 2,
     "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb",
     "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113",
     {3, 0, 4}, false},
    {"tdx/v5-tdx15-go-tdx-guest", 5006, 5006, 5, 3,
     "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876",
     "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a",
     {0x0b, 1, 4}, false},
    {"tdx/v4-gcp-cos113-go-tdx-guest", 8000, 4935, 4, 2,
     "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a",
     "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
     {4, 1, 7}, false},
    {"tdx/v4-debug-trustee", 4936, 4936, 4, 2,
     "705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031",
     "7c71fe2c86eff65a7cf8dbc22b3275689fd0464a267baced1bf94fc1324656aeb755da3d44d098c0c87382f3a5f85b45c8a28fee1d3bdb38342bf96671501429",
     {3, 0, 5}, true},
};
#define V4_SPR 0
#define V5 1
#define V4_GCP 2
#define V4_DEBUG 3

static uint8_t *quote_of(int i, size_t *len)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "%s/quote.dat", vecs[i].dir);
	return vec_read(rel, len);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offsets of the length fields of a parsed quote, from its pointers. */
struct offs {
	size_t sig_len, cert_hdr, auth_len, inner_hdr;
};

static struct offs offs_of(const uint8_t *buf, const struct ak_tdx_quote *q)
{
	struct offs o;

	o.sig_len = q->signed_len;
	o.cert_hdr = q->signed_len + 4 + 128;
	o.auth_len = (size_t)(q->qe_report_raw - buf) + AK_SGX_REPORT_BODY_LEN + 64;
	o.inner_hdr = (size_t)(q->qe_auth - buf) + q->qe_auth_len;
	return o;
}

/* ---- the parser on the real quotes ------------------------------------- */

static void test_parse_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(vecs); i++) {
		const struct vec_info *v = &vecs[i];
		struct ak_tdx_quote q;
		char hex[129];
		size_t len;
		uint8_t *buf = quote_of((int)i, &len);

		assert_int_equal(len, v->file_len);
		assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
		assert_int_equal(q.version, v->version);
		assert_int_equal(q.body_type, v->body_type);
		assert_int_equal(q.att_key_type, AK_TDX_ATT_KEY_TYPE_ECDSA_P256);
		assert_int_equal(q.tee_type, AK_TDX_TEE_TYPE_TDX);
		assert_int_equal(q.quote_len, v->quote_len);
		ak_hex_encode(q.body.mrtd, 48, hex);
		assert_string_equal(hex, v->mrtd);
		ak_hex_encode(q.body.report_data, 64, hex);
		assert_string_equal(hex, v->report_data);
		assert_memory_equal(q.body.tee_tcb_svn, v->tee_tcb_svn, 3);
		assert_int_equal(!!(q.body.td_attributes & AK_TDX_TD_ATTR_DEBUG), v->debug);
		/* the signed region: header||body (v4), header||type||size||body (v5) */
		assert_ptr_equal(q.signed_data, buf);
		assert_int_equal(q.signed_len, v->version == 4 ? 48 + 584 : 48 + 6 + 648);
		/* QE report: TD_QE (isvprodid 2) */
		assert_ptr_equal(q.qe_report_raw, buf + q.signed_len + 4 + 128 + 6);
		assert_int_equal(q.qe_report.isvprodid, 2);
		assert_int_equal(q.qe_auth_len, 32);
		assert_true(q.pck_chain_len > 27);
		assert_memory_equal(q.pck_chain_pem, "-----BEGIN CERTIFICATE-----", 27);
		assert_ptr_equal(q.pck_chain_pem + q.pck_chain_len, buf + q.quote_len);
		free(buf);
	}
}

/* The v5 quote's TDX 1.5 fields come from the 648-byte body. */
static void test_parse_v5_body15(void **state)
{
	struct ak_tdx_quote q;
	size_t len;
	uint8_t *buf = quote_of(V5, &len);
	const uint8_t *body = buf + 48 + 6;

	(void)state;
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
	assert_int_equal(get32(buf + 50), AK_TDX_BODY15_LEN);
	assert_memory_equal(q.body.tee_tcb_svn2, body + AK_TDX_BODY_TEE_TCB_SVN2, 16);
	assert_memory_equal(q.body.mrservicetd, body + AK_TDX_BODY_MRSERVICETD, 48);
	assert_memory_equal(q.body.rtmr[3], body + AK_TDX_BODY_RTMR0 + 3 * 48, 48);
	free(buf);
}

/* A v4 quote re-wrapped as v5 with body type 2 (TDX 1.0 body) parses the
 * same fields; the signed region then includes the descriptor. */
static void test_parse_v5_body10(void **state)
{
	struct ak_tdx_quote q4, q5;
	size_t len;
	uint8_t *buf = quote_of(V4_SPR, &len), *v5 = malloc(len + 6);

	(void)state;
	assert_non_null(v5);
	memcpy(v5, buf, 48);
	put16(v5, 5);
	put16(v5 + 48, 2);
	put32(v5 + 50, AK_TDX_BODY10_LEN);
	memcpy(v5 + 54, buf + 48, len - 48);
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q4), 0);
	assert_int_equal(ak_tdx_quote_parse(v5, len + 6, &q5), 0);
	assert_int_equal(q5.version, 5);
	assert_int_equal(q5.body_type, 2);
	assert_int_equal(q5.signed_len, q4.signed_len + 6);
	assert_int_equal(q5.quote_len, q4.quote_len + 6);
	assert_memory_equal(&q5.body, &q4.body, sizeof(q4.body));
	assert_memory_equal(q5.sig, q4.sig, 64);
	/* body type 2 in a v5 quote must say 584 bytes */
	put32(v5 + 50, AK_TDX_BODY15_LEN);
	assert_int_equal(ak_tdx_quote_parse(v5, len + 6, &q5), -EBADMSG);
	free(v5);
	free(buf);
}

/* Real captures carry trailing bytes: a note (v4-spr, 39 bytes) or zero
 * padding (v4-gcp, 3065 bytes). Whatever follows is ignored, and the quote
 * alone, exactly as long as its lengths say, parses too. */
static void test_parse_trailing(void **state)
{
	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(vecs); i++) {
		struct ak_tdx_quote q, q2;
		size_t len;
		uint8_t *buf = quote_of((int)i, &len), *big;

		assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
		if (i == V4_SPR)
			assert_memory_equal(buf + q.quote_len,
					    "\nextra bytes(only for testing purpose)\n", 39);
		if (i == V4_GCP)
			for (size_t j = q.quote_len; j < len; j++)
				assert_int_equal(buf[j], 0);
		assert_int_equal(ak_tdx_quote_parse(buf, q.quote_len, &q2), 0);
		assert_int_equal(q2.quote_len, q.quote_len);
		big = malloc(q.quote_len + 4096);
		assert_non_null(big);
		memcpy(big, buf, q.quote_len);
		memset(big + q.quote_len, 0xA5, 4096);
		assert_int_equal(ak_tdx_quote_parse(big, q.quote_len + 4096, &q2), 0);
		assert_int_equal(q2.quote_len, q.quote_len);
		assert_memory_equal(q2.sig, q.sig, 64);
		free(big);
		free(buf);
	}
}

/* Cut anywhere inside the quote, at every byte: header, body descriptor,
 * body, signature data length, signature, key, certification data. A copy
 * of exactly that many bytes keeps ASan watching every read. */
static void test_parse_truncated(void **state)
{
	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(vecs); i++) {
		struct ak_tdx_quote q;
		size_t len;
		uint8_t *buf = quote_of((int)i, &len);

		assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
		for (size_t cut = 0; cut < q.quote_len; cut++) {
			uint8_t *c = malloc(cut ? cut : 1);

			assert_non_null(c);
			memcpy(c, buf, cut);
			if (ak_tdx_quote_parse(c, cut, &q) != -EBADMSG)
				fail_msg("%s cut at %zu bytes parses", vecs[i].dir, cut);
			free(c);
		}
		assert_int_equal(ak_tdx_quote_parse(NULL, 0, &q), -EBADMSG);
		free(buf);
	}
}

/* Header fields the verifier relies on. */
static void test_parse_header_fields(void **state)
{
	static const struct {
		size_t off;
		int width;
		uint32_t value;
	} bad[] = {
	    {AK_TDX_OFF_VERSION, 2, 3},   {AK_TDX_OFF_VERSION, 2, 6},
	    {AK_TDX_OFF_VERSION, 2, 0},   {AK_TDX_OFF_ATT_KEY_TYPE, 2, 3},
	    {AK_TDX_OFF_ATT_KEY_TYPE, 2, 0}, {AK_TDX_OFF_TEE_TYPE, 4, 0}, /* SGX */
	    {AK_TDX_OFF_TEE_TYPE, 4, 0x80},
	};
	size_t len;
	uint8_t *buf = quote_of(V4_SPR, &len);

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(bad); i++) {
		struct ak_tdx_quote q;
		uint8_t *m = malloc(len);

		assert_non_null(m);
		memcpy(m, buf, len);
		if (bad[i].width == 2)
			put16(m + bad[i].off, (uint16_t)bad[i].value);
		else
			put32(m + bad[i].off, bad[i].value);
		assert_int_equal(ak_tdx_quote_parse(m, len, &q), -EBADMSG);
		free(m);
	}
	free(buf);
}

/* v5 body descriptor: only TD reports (2, 3), each at its size. */
static void test_parse_v5_descriptor(void **state)
{
	static const struct {
		uint16_t type;
		uint32_t size;
	} bad[] = {{1, 384}, {1, 648}, {4, 648}, {0, 648}, {3, 584}, {3, 649}, {3, 0},
		   {3, 0xffffffffu}};
	size_t len;
	uint8_t *buf = quote_of(V5, &len);

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(bad); i++) {
		struct ak_tdx_quote q;
		uint8_t *m = malloc(len);

		assert_non_null(m);
		memcpy(m, buf, len);
		put16(m + 48, bad[i].type);
		put32(m + 50, bad[i].size);
		assert_int_equal(ak_tdx_quote_parse(m, len, &q), -EBADMSG);
		free(m);
	}
	free(buf);
}

/* Each length field off by one either way, or huge; each certification
 * data type wrong. The buffer keeps 64 spare bytes after the quote so that
 * a length one too long does not simply run off the end. */
static void test_parse_wrong_lengths(void **state)
{
	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(vecs); i++) {
		struct ak_tdx_quote q;
		struct offs o;
		size_t len, qlen;
		uint8_t *buf = quote_of((int)i, &len), *m;

		assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
		o = offs_of(buf, &q);
		qlen = q.quote_len;
		m = malloc(qlen + 64);
		assert_non_null(m);
		for (int k = 0; k < 18; k++) {
			long d = (k % 3 == 0) ? 1 : (k % 3 == 1) ? -1 : 0x10000000;
			size_t field;
			uint32_t v;

			memcpy(m, buf, qlen);
			memset(m + qlen, 0, 64);
			switch (k / 3) {
			case 0: /* signature data length */
				field = o.sig_len;
				v = get32(m + field);
				put32(m + field, (uint32_t)(v + d));
				break;
			case 1: /* outer certification data size */
				field = o.cert_hdr + 2;
				v = get32(m + field);
				put32(m + field, (uint32_t)(v + d));
				break;
			case 2: /* QE auth data length (u16) */
				field = o.auth_len;
				v = (uint32_t)(m[field] | m[field + 1] << 8);
				put16(m + field, (uint16_t)(d == 0x10000000 ? 0xffff : v + d));
				break;
			case 3: /* inner (PCK chain) certification data size */
				field = o.inner_hdr + 2;
				v = get32(m + field);
				put32(m + field, (uint32_t)(v + d));
				break;
			case 4: /* outer type */
				put16(m + o.cert_hdr,
				      (uint16_t)(k % 3 == 0 ? 5 : k % 3 == 1 ? 7 : 0));
				break;
			default: /* inner type */
				put16(m + o.inner_hdr,
				      (uint16_t)(k % 3 == 0 ? 6 : k % 3 == 1 ? 4 : 0));
				break;
			}
			if (ak_tdx_quote_parse(m, qlen + 64, &q) != -EBADMSG)
				fail_msg("%s: mutation %d parses", vecs[i].dir, k);
		}
		free(m);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_vectors),
	    cmocka_unit_test(test_parse_v5_body15),
	    cmocka_unit_test(test_parse_v5_body10),
	    cmocka_unit_test(test_parse_trailing),
	    cmocka_unit_test(test_parse_truncated),
	    cmocka_unit_test(test_parse_header_fields),
	    cmocka_unit_test(test_parse_v5_descriptor),
	    cmocka_unit_test(test_parse_wrong_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
