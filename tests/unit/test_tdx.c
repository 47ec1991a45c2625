/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel TDX: the quote parser (src/common/tdx.c) and the verifier
 * (src/verify/tdx.c) against the real quotes in tests/data/tdx
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
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/common.h"
#include "attestkey/tdx.h"
#include "attestkey/verify.h"
#include "../../src/verify/tdx_internal.h"

/* $ATTESTKEY_VECTORS (make check sets it to tests/data, the copy of
 * ../shared/testvectors that ships in the tarball), else tests/data. */
static char *vec_path(const char *rel)
{
	const char *v = getenv("ATTESTKEY_VECTORS");
	char *p = NULL;
	int n;

	n = asprintf(&p, "%s/%s", v ? v : "tests/data", rel);
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
    {"tdx/v4-spr-go-tdx-guest",
     4974,
     4935,
     4,
     2,
     "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215"
     "cbb",
     "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dace"
     "ad6f0c87a6d766c66f6f29f8acb281f1113",
     {3, 0, 4},
     false},
    {"tdx/v5-tdx15-go-tdx-guest",
     5006,
     5006,
     5,
     3,
     "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f"
     "876",
     "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1"
     "255c9c79ecb3ed82cd1b486233e31c25c3a",
     {0x0b, 1, 4},
     false},
    {"tdx/v4-gcp-cos113-go-tdx-guest",
     8000,
     4935,
     4,
     2,
     "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f"
     "94a",
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000",
     {4, 1, 7},
     false},
    {"tdx/v4-debug-trustee",
     4936,
     4936,
     4,
     2,
     "705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f"
     "031",
     "7c71fe2c86eff65a7cf8dbc22b3275689fd0464a267baced1bf94fc1324656aeb755da3d44d098c0c87382f3a5f85"
     "b45c8a28fee1d3bdb38342bf96671501429",
     {3, 0, 5},
     true},
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
		if (i == V4_SPR) {
			assert_int_equal(len - q.quote_len, 39);
			assert_memory_equal(buf + q.quote_len,
					    "\nextra bytes(only for testing purpose)\n", 39);
		}
		if (i == V4_GCP)
			assert_int_equal(len - q.quote_len, 3065);
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
	    {AK_TDX_OFF_VERSION, 2, 3},	     {AK_TDX_OFF_VERSION, 2, 6},
	    {AK_TDX_OFF_VERSION, 2, 0},	     {AK_TDX_OFF_ATT_KEY_TYPE, 2, 3},
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
	} bad[] = {{1, 384}, {1, 648}, {4, 648}, {0, 648},
		   {3, 584}, {3, 649}, {3, 0},	 {3, 0xffffffffu}};
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
				put16(m + o.cert_hdr, (uint16_t)(k % 3 == 0   ? 5
								 : k % 3 == 1 ? 7
									      : 0));
				break;
			default: /* inner type */
				put16(m + o.inner_hdr, (uint16_t)(k % 3 == 0   ? 6
								  : k % 3 == 1 ? 4
									       : 0));
				break;
			}
			if (ak_tdx_quote_parse(m, qlen + 64, &q) != -EBADMSG)
				fail_msg("%s: mutation %d parses", vecs[i].dir, k);
		}
		free(m);
		free(buf);
	}
}

/* ---- the verifier on the real quotes ------------------------------------ */

#define T2023 1687132800 /* 2023-06-19: the 2023 collateral is valid */
#define T2025 1759190400 /* 2025-09-30: the 2025-09 TCB info is valid */
#define T2026 1769990400 /* 2026-02-02: v5's TCB info is valid */

struct run {
	const char *collateral; /* under testvectors/, or NULL */
	const char *tcb_info, *qe_identity;
	time_t now;
	const uint8_t *report_data;
	const char *roots; /* under testvectors/; default intel-roots */
};

static enum ak_reason verify_buf(const uint8_t *buf, size_t len, const struct run *r,
				 struct vf_tdx_result *res, char *msg, size_t msglen)
{
	struct vf_tdx_trust *t = NULL;
	struct vf_tdx_input in = {
	    .quote = buf, .quote_len = len, .now = r->now, .expected_report_data = r->report_data};
	char *roots = vec_path(r->roots ? r->roots : "intel-roots"), *col = NULL, *ti = NULL,
	     *qi = NULL;
	enum ak_reason reason;

	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, roots), 0);
	if (r->collateral) {
		col = vec_path(r->collateral);
		assert_int_equal(vf_tdx_trust_set_collateral_dir(t, col), 0);
	}
	if (r->tcb_info)
		in.tcb_info_path = ti = vec_path(r->tcb_info);
	if (r->qe_identity)
		in.qe_identity_path = qi = vec_path(r->qe_identity);
	reason = vf_tdx_verify(t, &in, res, msg, msglen);
	vf_tdx_trust_free(t);
	free(roots);
	free(col);
	free(ti);
	free(qi);
	return reason;
}

static enum ak_reason verify_vec(int i, const struct run *r, struct vf_tdx_result *res, char *msg,
				 size_t msglen)
{
	size_t len;
	uint8_t *buf = quote_of(i, &len);
	enum ak_reason reason = verify_buf(buf, len, r, res, msg, msglen);

	/* the result's pointers point into buf: only fields are used below */
	memset(&res->quote.signed_data, 0, sizeof(void *));
	free(buf);
	return reason;
}

static const struct run run_spr = {.collateral = "tdx/v4-spr-go-tdx-guest", .now = T2023};

/* README: each quote's TCB result with its collateral at its time. */
static void test_verify_vectors(void **state)
{
	struct vf_tdx_result r;
	char msg[512];
	const struct run spr25 = {.collateral = "tdx/v4-spr-go-tdx-guest",
				  .tcb_info = "tdx/v4-spr-go-tdx-guest/tcb_info_2025-09.json",
				  .now = T2025};
	const struct run v5 = {.collateral = "tdx/v5-tdx15-go-tdx-guest", .now = T2026};
	const struct run gcp = {.tcb_info = "tdx/v4-gcp-cos113-go-tdx-guest/tcb_info_2025-09.json",
				.qe_identity = "tdx/v4-spr-go-tdx-guest/qe_identity.json",
				.now = T2025};

	(void)state;
	/* v4-spr: no TCB level matches, with either TCB info */
	assert_int_equal(verify_vec(V4_SPR, &run_spr, &r, msg, sizeof(msg)), AK_R_OK);
	assert_true(r.tcb_evaluated);
	assert_int_equal(r.tcb_status, VF_TDX_TCB_NOT_SUPPORTED);
	assert_false(r.collateral_expired);
	assert_string_equal(r.fmspc, "50806f000000");
	assert_int_equal(strlen(r.pck_serial) % 2, 0);
	assert_true(strlen(r.pck_serial) >= 2);
	assert_int_equal(r.qe_status, VF_TDX_TCB_UP_TO_DATE);
	assert_int_equal(verify_vec(V4_SPR, &spr25, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.tcb_status, VF_TDX_TCB_NOT_SUPPORTED);
	/* v5, TDX 1.5: UpToDate; its QE identity is from 2023, so expired */
	assert_int_equal(verify_vec(V5, &v5, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.tcb_status, VF_TDX_TCB_UP_TO_DATE);
	assert_int_equal(r.module_status, VF_TDX_TCB_UP_TO_DATE);
	assert_string_equal(r.fmspc, "90c06f000000");
	assert_true(r.collateral_expired);
	assert_non_null(strstr(r.expired, "qe_identity"));
	assert_null(strstr(r.expired, "tcb_info"));
	/* v4-gcp with the 2025-09 TCB info: UpToDate */
	assert_int_equal(verify_vec(V4_GCP, &gcp, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.tcb_status, VF_TDX_TCB_UP_TO_DATE);
	assert_string_equal(r.fmspc, "00806f050000");
	/* v4-debug: UpToDate in 2023, OutOfDate with INTEL-SA-00837 in 2025 */
	assert_int_equal(verify_vec(V4_DEBUG, &run_spr, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.tcb_status, VF_TDX_TCB_UP_TO_DATE);
	assert_true(r.quote.body.td_attributes & AK_TDX_TD_ATTR_DEBUG);
	assert_int_equal(verify_vec(V4_DEBUG, &spr25, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.tcb_status, VF_TDX_TCB_OUT_OF_DATE);
	assert_non_null(strstr(r.advisory_ids, "INTEL-SA-00837"));
}

/* The protocol's evidence JSON {"quote": base64url}. */
static void test_verify_json(void **state)
{
	struct vf_tdx_trust *t = NULL;
	struct vf_tdx_result r;
	char msg[512], *col = vec_path("tdx/v4-spr-go-tdx-guest"), *roots = vec_path("intel-roots");
	size_t len;
	uint8_t *buf = quote_of(V4_DEBUG, &len);
	char *b64 = ak_b64url_encode(buf, len);
	json_t *ev = json_pack("{s:s}", "quote", b64), *bad = json_pack("{s:s}", "quote", "@@");

	(void)state;
	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, roots), 0);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, col), 0);
	/* now = 0 is the current time: the 2023 collateral has expired */
	assert_int_equal(vf_tdx_verify_json(t, ev, NULL, &r, msg, sizeof(msg)), AK_R_OK);
	assert_true(r.tcb_evaluated);
	assert_true(r.collateral_expired);
	assert_null(r.quote.signed_data);
	assert_null(r.quote.pck_chain_pem);
	assert_int_equal(r.quote.version, 4);
	assert_int_equal(vf_tdx_verify_json(t, bad, NULL, &r, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	assert_int_equal(
	    vf_tdx_verify_json(t, json_object_get(ev, "quote"), NULL, &r, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	json_decref(ev);
	json_decref(bad);
	free(b64);
	free(buf);
	free(col);
	free(roots);
	vf_tdx_trust_free(t);
}

/* The trust store: a PEM file or a directory, and nothing else trusted. */
static void test_trust_roots(void **state)
{
	struct vf_tdx_trust *t = NULL;
	char *p;

	(void)state;
	assert_int_equal(vf_tdx_trust_new(&t), 0);
	p = vec_path("intel-roots");
	assert_int_equal(vf_tdx_trust_add_roots(t, p), 0);
	free(p);
	assert_int_equal(sk_X509_num(t->roots), 1);
	assert_int_equal(sk_X509_num(t->tcb_signers), 2);
	assert_non_null(t->root_crl);
	/* newest signer first: the 2018 and 2025 certificates share a key */
	assert_true(ASN1_TIME_compare(X509_get0_notAfter(sk_X509_value(t->tcb_signers, 0)),
				      X509_get0_notAfter(sk_X509_value(t->tcb_signers, 1))) > 0);
	vf_tdx_trust_free(t);
	assert_int_equal(vf_tdx_trust_new(&t), 0);
	p = vec_path("intel-roots/Intel_SGX_Root_CA.pem");
	assert_int_equal(vf_tdx_trust_add_roots(t, p), 0);
	free(p);
	assert_int_equal(sk_X509_num(t->roots), 1);
	/* a file without a self-signed certificate, a missing path */
	p = vec_path("intel-roots/Intel_SGX_PCK_Platform_CA.pem");
	assert_int_equal(vf_tdx_trust_add_roots(t, p), -EINVAL);
	free(p);
	p = vec_path("intel-roots/IntelSGXRootCA_crl.der");
	assert_int_equal(vf_tdx_trust_add_roots(t, p), -EINVAL);
	free(p);
	p = vec_path("intel-roots/none.pem");
	assert_int_equal(vf_tdx_trust_add_roots(t, p), -ENOENT);
	free(p);
	vf_tdx_trust_free(t);
}

/* One byte of a copy of v4-spr changed, verified with its 2023 collateral. */
static enum ak_reason verify_flipped(size_t off, uint8_t xor, char *msg, size_t msglen)
{
	struct vf_tdx_result r;
	size_t len;
	uint8_t *buf = quote_of(V4_SPR, &len);
	enum ak_reason reason;

	assert_true(off < len);
	buf[off] ^= xor;
	reason = verify_buf(buf, len, &run_spr, &r, msg, msglen);
	free(buf);
	return reason;
}

/* Each signature, and what each covers, changed by one bit. */
static void test_verify_signatures(void **state)
{
	struct ak_tdx_quote q;
	struct vf_tdx_result r;
	size_t len, qe;
	uint8_t *buf = quote_of(V4_SPR, &len);
	char msg[512];

	(void)state;
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
	qe = (size_t)(q.qe_report_raw - buf);
	assert_int_equal(verify_buf(buf, len, &run_spr, &r, msg, sizeof(msg)), AK_R_OK);
	/* quote signature r, s; the signed header and body (MRTD) */
	assert_int_equal(verify_flipped(q.signed_len + 4 + 5, 1, msg, sizeof(msg)),
			 AK_R_BAD_SIGNATURE);
	assert_non_null(strstr(msg, "quote signature"));
	assert_int_equal(verify_flipped(q.signed_len + 4 + 40, 0x80, msg, sizeof(msg)),
			 AK_R_BAD_SIGNATURE);
	assert_int_equal(verify_flipped(48 + AK_TDX_BODY_MRTD, 1, msg, sizeof(msg)),
			 AK_R_BAD_SIGNATURE);
	assert_non_null(strstr(msg, "quote signature"));
	assert_int_equal(verify_flipped(AK_TDX_OFF_USER_DATA, 1, msg, sizeof(msg)),
			 AK_R_BAD_SIGNATURE);
	/* QE report signature, and the QE report it covers (ISVSVN) */
	assert_int_equal(verify_flipped(qe + 384 + 3, 1, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	assert_non_null(strstr(msg, "QE report signature"));
	assert_int_equal(verify_flipped(qe + AK_SGX_OFF_ISVSVN, 1, msg, sizeof(msg)),
			 AK_R_BAD_SIGNATURE);
	assert_non_null(strstr(msg, "QE report signature"));
	/* the attestation key and the QE auth data: QE report data */
	assert_int_equal(verify_flipped(q.signed_len + 4 + 64 + 7, 1, msg, sizeof(msg)),
			 AK_R_BAD_SIGNATURE);
	assert_non_null(strstr(msg, "QE report data"));
	assert_int_equal(verify_flipped((size_t)(q.qe_auth - buf), 1, msg, sizeof(msg)),
			 AK_R_BAD_SIGNATURE);
	assert_non_null(strstr(msg, "QE authentication data"));
	free(buf);
}

/* Every TD report field the policy reads, flipped: the quote signature
 * covers it (v4 body, and the v5 TDX 1.5 body with its descriptor). */
static void test_verify_policy_fields(void **state)
{
	static const size_t offs[] = {
	    AK_TDX_BODY_TEE_TCB_SVN,  AK_TDX_BODY_TD_ATTRIBUTES, AK_TDX_BODY_MRTD + 47,
	    AK_TDX_BODY_MRCONFIGID,   AK_TDX_BODY_MROWNER,	 AK_TDX_BODY_MROWNERCONFIG,
	    AK_TDX_BODY_RTMR0,	      AK_TDX_BODY_RTMR0 + 48,	 AK_TDX_BODY_RTMR0 + 96,
	    AK_TDX_BODY_RTMR0 + 144,  AK_TDX_BODY_REPORT_DATA,	 AK_TDX_BODY_SEAM_ATTRIBUTES,
	    AK_TDX_BODY_MRSIGNERSEAM, AK_TDX_BODY_XFAM,
	};
	static const size_t offs15[] = {AK_TDX_BODY_TEE_TCB_SVN2, AK_TDX_BODY_MRSERVICETD, 0};
	const struct run v5 = {.collateral = "tdx/v5-tdx15-go-tdx-guest", .now = T2026};
	struct vf_tdx_result r;
	size_t len, len5;
	uint8_t *buf = quote_of(V4_SPR, &len), *b5 = quote_of(V5, &len5);
	char msg[512];

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(offs); i++) {
		buf[48 + offs[i]] ^= 1;
		assert_int_equal(verify_buf(buf, len, &run_spr, &r, msg, sizeof(msg)),
				 AK_R_BAD_SIGNATURE);
		assert_non_null(strstr(msg, "quote signature"));
		buf[48 + offs[i]] ^= 1;
	}
	assert_int_equal(verify_buf(b5, len5, &v5, &r, msg, sizeof(msg)), AK_R_OK);
	for (size_t i = 0; i < AK_ARRAY_SIZE(offs15); i++) {
		b5[54 + offs15[i]] ^= 0x10;
		assert_int_equal(verify_buf(b5, len5, &v5, &r, msg, sizeof(msg)),
				 AK_R_BAD_SIGNATURE);
		b5[54 + offs15[i]] ^= 0x10;
	}
	free(b5);
	free(buf);
}

/* REPORTDATA vs the binding: a refusal that still reports the TCB. */
static void test_verify_report_data(void **state)
{
	struct vf_tdx_result r;
	struct run run = run_spr;
	uint8_t rd[64];
	char msg[512];

	(void)state;
	assert_int_equal(ak_hex_decode(vecs[V4_SPR].report_data, rd, 64), 0);
	run.report_data = rd;
	assert_int_equal(verify_vec(V4_SPR, &run, &r, msg, sizeof(msg)), AK_R_OK);
	rd[63] ^= 1;
	assert_int_equal(verify_vec(V4_SPR, &run, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_non_null(strstr(msg, vecs[V4_SPR].report_data + 2));
	assert_true(r.tcb_evaluated);
	assert_int_equal(r.tcb_status, VF_TDX_TCB_NOT_SUPPORTED);
}

/* The index of the n-th PEM certificate in the quote's chain. */
static size_t pem_cert(const uint8_t *buf, const struct ak_tdx_quote *q, int n)
{
	const char *p = (const char *)q->pck_chain_pem;

	for (int i = 0; i <= n; i++) {
		p = strstr(p + (i ? 1 : 0), "-----BEGIN CERTIFICATE-----");
		assert_non_null(p);
	}
	return (size_t)((const uint8_t *)p - buf);
}

/* PCK chain: intermediate left out, leaf's signature broken, a foreign
 * root, a time before the leaf, no chain at all. */
static void test_verify_chain(void **state)
{
	struct ak_tdx_quote q;
	struct vf_tdx_result r;
	struct run run = run_spr;
	size_t len, off;
	uint8_t *buf = quote_of(V4_SPR, &len), *m = malloc(len);
	char msg[512];

	(void)state;
	assert_non_null(m);
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
	/* the PCK Platform CA turned into another PEM type: skipped */
	memcpy(m, buf, len);
	off = pem_cert(buf, &q, 1);
	memcpy(m + off, "-----BEGIN XERTIFICATE-----", 27);
	off = (size_t)((uint8_t *)strstr((char *)m + off, "-----END CERTIFICATE-----") - m);
	memcpy(m + off, "-----END XERTIFICATE-----", 25);
	assert_int_equal(verify_buf(m, len, &run_spr, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	assert_non_null(strstr(msg, "Intel SGX PCK Certificate"));
	/* one base64 digit of the leaf's signature (near its end) changed */
	memcpy(m, buf, len);
	off = pem_cert(buf, &q, 1);
	off -= strlen("-----END CERTIFICATE-----\n") + 8;
	m[off] = m[off] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_buf(m, len, &run_spr, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	/* the leaf's PEM header broken: no certificate reads */
	assert_int_equal(verify_flipped(pem_cert(buf, &q, 0) + 11, 'C' ^ 'X', msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	/* a foreign root (AMD's): the quote's own root is not trusted */
	run.roots = "snp/amd-roots/ark-milan.pem";
	assert_int_equal(verify_buf(buf, len, &run, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	assert_non_null(strstr(msg, "configured Intel SGX Root CA"));
	assert_false(r.tcb_evaluated);
	/* before the PCK certificate's notBefore (2022-09-20) */
	run = run_spr;
	run.now = 1640995200; /* 2022-01-01 */
	assert_int_equal(verify_buf(buf, len, &run, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	assert_non_null(strstr(msg, "not yet valid"));
	/* no collateral at all */
	run = run_spr;
	run.collateral = NULL;
	assert_int_equal(verify_buf(buf, len, &run, &r, msg, sizeof(msg)),
			 AK_R_COLLATERAL_UNAVAILABLE);
	/* a quote that does not parse */
	assert_int_equal(verify_buf(buf, 100, &run_spr, &r, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	assert_non_null(strstr(msg, "does not parse"));
	free(m);
	free(buf);
}

/* ---- revocation, with a test PCK chain ------------------------------------ */

/* A test CA (root or platform CA) or PCK leaf, valid 2020..2040. */
static X509 *mk_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial,
		     bool ca, X509 *sgx_from)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *e;

	assert_non_null(x);
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), 1577836800));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), 2208988800));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
					       -1, -1, 0));
	assert_true(X509_set_subject_name(x, name));
	assert_true(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name));
	assert_true(X509_set_pubkey(x, key));
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	assert_true(e && X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
				ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	assert_true(e && X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	if (sgx_from) {
		/* the real PCK certificate's SGX extensions (FMSPC, TCB...) */
		ASN1_OBJECT *oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
		int i = X509_get_ext_by_OBJ(sgx_from, oid, -1);

		assert_true(i >= 0);
		assert_true(X509_add_ext(x, X509_get_ext(sgx_from, i), -1));
		ASN1_OBJECT_free(oid);
	}
	assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return x;
}

/* A CRL of `ca`, valid [this, next], revoking `revoked` when given. */
static void write_crl(const char *path, X509 *ca, EVP_PKEY *key, time_t this, time_t next,
		      X509 *revoked)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *tm = ASN1_TIME_new();
	FILE *f;

	assert_true(crl && tm && X509_CRL_set_version(crl, 1));
	assert_true(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)));
	assert_true(ASN1_TIME_set(tm, this) && X509_CRL_set1_lastUpdate(crl, tm));
	assert_true(ASN1_TIME_set(tm, next) && X509_CRL_set1_nextUpdate(crl, tm));
	if (revoked) {
		X509_REVOKED *rv = X509_REVOKED_new();

		assert_true(rv &&
			    X509_REVOKED_set_serialNumber(rv, X509_get_serialNumber(revoked)));
		assert_true(X509_REVOKED_set_revocationDate(rv, tm));
		assert_true(X509_CRL_add0_revoked(crl, rv));
	}
	assert_true(X509_CRL_sort(crl));
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_true(i2d_X509_CRL_fp(f, crl));
	fclose(f);
	ASN1_TIME_free(tm);
	X509_CRL_free(crl);
}

static void append_pem(BIO *b, X509 *x)
{
	assert_true(PEM_write_bio_X509(b, x));
}

/* The v4-spr quote with a test PCK chain (test leaf carrying the real
 * leaf's SGX extensions, test Platform CA, test root) and its QE report
 * re-signed by the test leaf: everything else (QE report data, quote
 * signature) is the real quote's, and the TCB info is Intel's. */
struct fake {
	char dir[64];
	char root_pem[96];
	uint8_t *quote;
	size_t len;
	X509 *root, *ca, *leaf;
	EVP_PKEY *root_key, *ca_key, *leaf_key;
};

/* leaf_curve: the test leaf's curve (the QE report is re-signed only for
 * P-256); bad_att_key: the attestation key replaced by (1, 1), not a curve
 * point, with the QE report data recomputed to bind it. */
static void fake_make_ex(struct fake *f, const char *leaf_curve, bool bad_att_key)
{
	struct ak_tdx_quote q;
	size_t len, pem_len, qe_off, sig_off, pos;
	uint8_t *buf = quote_of(V4_SPR, &len), *der_sig = NULL, *out;
	const unsigned char *dp;
	char *pem;
	BIO *b = BIO_new(BIO_s_mem());
	BIO *real = NULL;
	X509 *real_leaf;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es;
	size_t der_len = 0;
	FILE *fp;
	static const char *const links[] = {"tcb_info.json", "qe_identity.json",
					    "tcb_info_issuer_chain.pem",
					    "qe_identity_issuer_chain.pem"};

	memset(f, 0, sizeof(*f));
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
	real = BIO_new_mem_buf(q.pck_chain_pem, (int)q.pck_chain_len);
	real_leaf = PEM_read_bio_X509(real, NULL, NULL, NULL);
	assert_non_null(real_leaf);
	f->root_key = EVP_EC_gen("P-256");
	f->ca_key = EVP_EC_gen("P-256");
	f->leaf_key = EVP_EC_gen(leaf_curve);
	assert_true(f->root_key && f->ca_key && f->leaf_key);
	if (bad_att_key) {
		uint8_t *ak = buf + q.signed_len + 4 + 64,
			*rd = buf + (q.qe_report_raw - buf) + AK_SGX_OFF_REPORT_DATA;
		EVP_MD_CTX *h = EVP_MD_CTX_new();

		memset(ak, 0, 64);
		ak[31] = ak[63] = 1;
		memset(rd, 0, 64);
		assert_true(h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) &&
			    EVP_DigestUpdate(h, ak, 64) &&
			    EVP_DigestUpdate(h, q.qe_auth, q.qe_auth_len) &&
			    EVP_DigestFinal_ex(h, rd, NULL));
		EVP_MD_CTX_free(h);
	}
	f->root = mk_cert("attestkey test Root CA", f->root_key, NULL, f->root_key, 1, true, NULL);
	f->ca = mk_cert("attestkey test PCK Platform CA", f->ca_key, f->root, f->root_key, 2, true,
			NULL);
	f->leaf = mk_cert("attestkey test PCK Certificate", f->leaf_key, f->ca, f->ca_key, 77,
			  false, real_leaf);
	append_pem(b, f->leaf);
	append_pem(b, f->ca);
	append_pem(b, f->root);
	pem_len = (size_t)BIO_get_mem_data(b, &pem);
	/* QE report re-signed with the test leaf's key, r||s big-endian */
	assert_true(md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, f->leaf_key) == 1);
	assert_int_equal(EVP_DigestSign(md, NULL, &der_len, q.qe_report_raw, 384), 1);
	der_sig = malloc(der_len);
	assert_int_equal(EVP_DigestSign(md, der_sig, &der_len, q.qe_report_raw, 384), 1);
	dp = der_sig;
	es = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
	assert_non_null(es);
	/* the quote, rebuilt around the new chain */
	qe_off = (size_t)(q.qe_report_raw - buf);
	sig_off = q.signed_len + 4;
	pos = (size_t)(q.pck_chain_pem - buf);
	f->len = pos + pem_len;
	out = f->quote = malloc(f->len);
	assert_non_null(out);
	memcpy(out, buf, pos);
	memcpy(out + pos, pem, pem_len);
	if (!strcmp(leaf_curve, "P-256")) {
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), out + qe_off + 384, 32), 32);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), out + qe_off + 384 + 32, 32),
				 32);
	}
	put32(out + pos - 4, (uint32_t)pem_len);				/* inner size */
	put32(out + sig_off + 128 + 2, (uint32_t)(f->len - sig_off - 128 - 6)); /* outer */
	put32(out + q.signed_len, (uint32_t)(f->len - sig_off));		/* signature data */
	/* collateral: Intel's TCB info and QE identity, test CRLs */
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_tdx.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	for (size_t i = 0; i < AK_ARRAY_SIZE(links); i++) {
		char rel[128], to[128], *from;

		snprintf(rel, sizeof(rel), "tdx/v4-spr-go-tdx-guest/%s", links[i]);
		from = vec_path(rel);
		snprintf(to, sizeof(to), "%s/%s", f->dir, links[i]);
		assert_int_equal(symlink(from, to), 0);
		free(from);
	}
	snprintf(f->root_pem, sizeof(f->root_pem), "%s/test-root.pem", f->dir);
	fp = fopen(f->root_pem, "w");
	assert_non_null(fp);
	assert_true(PEM_write_X509(fp, f->root));
	fclose(fp);
	ECDSA_SIG_free(es);
	free(der_sig);
	EVP_MD_CTX_free(md);
	X509_free(real_leaf);
	BIO_free(real);
	BIO_free(b);
	free(buf);
}

static void fake_make(struct fake *f)
{
	fake_make_ex(f, "P-256", false);
}

static void fake_free(struct fake *f)
{
	static const char *const names[] = {"tcb_info.json",
					    "qe_identity.json",
					    "tcb_info_issuer_chain.pem",
					    "qe_identity_issuer_chain.pem",
					    "pck_crl.der",
					    "root_ca_crl.der",
					    "test-root.pem"};

	for (size_t i = 0; i < AK_ARRAY_SIZE(names); i++) {
		char p[128];

		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	rmdir(f->dir);
	X509_free(f->root);
	X509_free(f->ca);
	X509_free(f->leaf);
	EVP_PKEY_free(f->root_key);
	EVP_PKEY_free(f->ca_key);
	EVP_PKEY_free(f->leaf_key);
	free(f->quote);
}

/* A trust for the fake quote: its test root (and Intel's, for the TCB
 * info), its directory as the collateral. */
static struct vf_tdx_trust *fake_trust(struct fake *f)
{
	struct vf_tdx_trust *t = NULL;
	char *intel = vec_path("intel-roots/Intel_SGX_Root_CA.pem");

	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, intel), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, f->root_pem), 0);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, f->dir), 0);
	free(intel);
	return t;
}

static enum ak_reason fake_verify_with(struct vf_tdx_trust *t, struct fake *f,
				       struct vf_tdx_result *r, char *msg, size_t msglen)
{
	struct vf_tdx_input in = {.quote = f->quote, .quote_len = f->len, .now = T2023};

	return vf_tdx_verify(t, &in, r, msg, msglen);
}

/* The fake quote against a trust of its own. */
static enum ak_reason fake_verify(struct fake *f, struct vf_tdx_result *r, char *msg, size_t msglen)
{
	struct vf_tdx_trust *t = fake_trust(f);
	enum ak_reason reason = fake_verify_with(t, f, r, msg, msglen);

	vf_tdx_trust_free(t);
	return reason;
}

static void crl_files(struct fake *f, time_t next, bool revoke_leaf, bool revoke_ca)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/pck_crl.der", f->dir);
	write_crl(p, f->ca, f->ca_key, T2023 - 86400, next, revoke_leaf ? f->leaf : NULL);
	snprintf(p, sizeof(p), "%s/root_ca_crl.der", f->dir);
	write_crl(p, f->root, f->root_key, T2023 - 86400, T2023 + 86400 * 30,
		  revoke_ca ? f->ca : NULL);
}

/* CRLs: revoked leaf or CA -> cert_revoked; an expired CRL does not stop
 * the verification (noted in `expired`) and still revokes; without CRLs
 * the chain verifies. */
static void test_verify_revocation(void **state)
{
	struct fake f;
	struct vf_tdx_result r;
	char msg[512];

	(void)state;
	fake_make(&f);
	/* control: no CRL, then CRLs revoking nothing */
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_OK);
	assert_true(r.tcb_evaluated);
	assert_string_equal(r.pck_serial, "4d"); /* 77 */
	crl_files(&f, T2023 + 86400 * 30, false, false);
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_OK);
	assert_false(r.collateral_expired);
	/* the leaf revoked by the Platform CA's CRL */
	crl_files(&f, T2023 + 86400 * 30, true, false);
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_CERT_REVOKED);
	assert_non_null(strstr(msg, "attestkey test PCK Certificate"));
	/* the CA revoked by the root CA CRL */
	crl_files(&f, T2023 + 86400 * 30, false, true);
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_CERT_REVOKED);
	assert_non_null(strstr(msg, "attestkey test PCK Platform CA"));
	/* an expired PCK CRL: verification goes on, expiry is recorded */
	crl_files(&f, T2023 - 3600, false, false);
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_OK);
	assert_true(r.tcb_evaluated);
	assert_true(r.collateral_expired);
	assert_non_null(strstr(r.expired, "pck_crl"));
	/* ... and its revocations still count */
	crl_files(&f, T2023 - 3600, true, false);
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_CERT_REVOKED);
	/* a CRL signed by the wrong key fails the chain */
	{
		char p[128];

		snprintf(p, sizeof(p), "%s/pck_crl.der", f.dir);
		write_crl(p, f.ca, f.leaf_key, T2023 - 86400, T2023 + 86400, NULL);
		assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
		assert_non_null(strstr(msg, "CRL"));
	}
	fake_free(&f);
}

/* One trust for many verifications, as the broker keeps it: what its
 * memo of parsed chains and CRLs remembers never outlives the bytes. A
 * CRL written between two verifications revokes at the next one, an
 * honest CRL written after it lifts that, and a quote whose PCK chain
 * differs by one byte is parsed (and refused) for what it is. */
static void test_verify_shared_trust(void **state)
{
	struct fake f;
	struct vf_tdx_trust *t;
	struct vf_tdx_result r;
	char msg[512];
	size_t i;

	(void)state;
	fake_make(&f);
	t = fake_trust(&f);
	crl_files(&f, T2023 + 86400 * 30, false, false);
	assert_int_equal(fake_verify_with(t, &f, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(fake_verify_with(t, &f, &r, msg, sizeof(msg)), AK_R_OK);
	crl_files(&f, T2023 + 86400 * 30, true, false);
	assert_int_equal(fake_verify_with(t, &f, &r, msg, sizeof(msg)), AK_R_CERT_REVOKED);
	assert_non_null(strstr(msg, "attestkey test PCK Certificate"));
	crl_files(&f, T2023 + 86400 * 30, false, true);
	assert_int_equal(fake_verify_with(t, &f, &r, msg, sizeof(msg)), AK_R_CERT_REVOKED);
	assert_non_null(strstr(msg, "attestkey test PCK Platform CA"));
	crl_files(&f, T2023 + 86400 * 30, false, false);
	assert_int_equal(fake_verify_with(t, &f, &r, msg, sizeof(msg)), AK_R_OK);
	/* one byte of the PCK leaf's PEM changed: not the remembered chain */
	for (i = 0; i + 27 < f.len; i++)
		if (!memcmp(f.quote + i, "-----BEGIN CERTIFICATE-----", 27))
			break;
	assert_true(i + 27 < f.len);
	f.quote[i + 27 + 40] ^= 0x01;
	assert_int_not_equal(fake_verify_with(t, &f, &r, msg, sizeof(msg)), AK_R_OK);
	f.quote[i + 27 + 40] ^= 0x01;
	assert_int_equal(fake_verify_with(t, &f, &r, msg, sizeof(msg)), AK_R_OK);
	assert_true(vf_tdx_memo_count(t->memo) <= 16);
	vf_tdx_trust_free(t);
	fake_free(&f);
}

/* The memo itself: equal bytes give the first parse's objects, other
 * bytes their own; it holds at most 16 objects however many distinct
 * chains a client sends, and a reference handed out outlives eviction. */
static void test_memo(void **state)
{
	struct ak_tdx_quote q;
	struct vf_tdx_memo *m = vf_tdx_memo_new();
	size_t len, crl_len;
	uint8_t *buf = quote_of(V4_SPR, &len);
	uint8_t *crl_der = vec_read("tdx/v4-spr-go-tdx-guest/pck_crl.der", &crl_len);
	STACK_OF(X509) *a, *b, *held;
	X509_CRL *c1, *c2;
	char *other;
	int n;

	(void)state;
	assert_non_null(m);
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
	a = vf_tdx_memo_chain(m, q.pck_chain_pem, q.pck_chain_len, 8);
	b = vf_tdx_memo_chain(m, q.pck_chain_pem, q.pck_chain_len, 8);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(sk_X509_num(a), 3);
	assert_true(a != b); /* each caller owns its stack ... */
	assert_ptr_equal(sk_X509_value(a, 0), sk_X509_value(b, 0)); /* ... of shared certs */
	assert_int_equal(vf_tdx_memo_count(m), 1);
	/* another bound is another key: 1 certificate read at most 1 + 1 */
	held = vf_tdx_memo_chain(m, q.pck_chain_pem, q.pck_chain_len, 1);
	assert_int_equal(sk_X509_num(held), 2);
	assert_int_equal(vf_tdx_memo_count(m), 2);
	/* 100 distinct texts holding the same chain (a comment line before it) */
	for (n = 0; n < 100; n++) {
		STACK_OF(X509) *sk;

		assert_true(asprintf(&other, "comment %d\n%.*s", n, (int)q.pck_chain_len,
				     (const char *)q.pck_chain_pem) > 0);
		sk = vf_tdx_memo_chain(m, other, strlen(other), 8);
		assert_int_equal(sk_X509_num(sk), 3);
		assert_ptr_not_equal(sk_X509_value(sk, 0), sk_X509_value(a, 0));
		assert_int_equal(X509_cmp(sk_X509_value(sk, 0), sk_X509_value(a, 0)), 0);
		sk_X509_pop_free(sk, X509_free);
		free(other);
		assert_true(vf_tdx_memo_count(m) <= 16);
	}
	assert_int_equal(vf_tdx_memo_count(m), 16);
	/* evicted long ago, still whole for its holders */
	assert_int_equal(sk_X509_num(held), 2);
	assert_int_equal(X509_cmp(sk_X509_value(held, 0), sk_X509_value(b, 0)), 0);
	/* no certificate at all: an empty stack, not NULL */
	sk_X509_pop_free(held, X509_free);
	held = vf_tdx_memo_chain(m, "no PEM here", 11, 8);
	assert_non_null(held);
	assert_int_equal(sk_X509_num(held), 0);
	sk_X509_free(held);
	/* CRLs: DER, remembered; one byte off is parsed again (and fails) */
	c1 = vf_tdx_memo_crl(m, crl_der, crl_len);
	c2 = vf_tdx_memo_crl(m, crl_der, crl_len);
	assert_non_null(c1);
	assert_ptr_equal(c1, c2);
	X509_CRL_free(c2);
	crl_der[1] ^= 0x01;
	assert_null(vf_tdx_memo_crl(m, crl_der, crl_len));
	crl_der[1] ^= 0x01;
	/* without a memo, a plain parse each time */
	c2 = vf_tdx_memo_crl(NULL, crl_der, crl_len);
	assert_non_null(c2);
	assert_ptr_not_equal(c1, c2);
	assert_int_equal(X509_CRL_cmp(c1, c2), 0);
	X509_CRL_free(c1);
	X509_CRL_free(c2);
	vf_tdx_memo_free(m);
	/* what the memo held is gone; what callers hold is theirs */
	assert_int_equal(X509_cmp(sk_X509_value(a, 0), sk_X509_value(b, 0)), 0);
	assert_non_null(X509_get_subject_name(sk_X509_value(a, 2)));
	sk_X509_pop_free(a, X509_free);
	sk_X509_pop_free(b, X509_free);
	free(crl_der);
	free(buf);
}

/* Eight threads verifying the real quote with one trust (the broker's
 * thread pool); check-tsan runs this under ThreadSanitizer. */
struct verify_job {
	struct vf_tdx_trust *t;
	const uint8_t *quote;
	size_t len;
	int ok;
};

static void *verify_thread(void *arg)
{
	struct verify_job *j = arg;

	for (int i = 0; i < 25; i++) {
		struct vf_tdx_input in = {.quote = j->quote, .quote_len = j->len, .now = T2023};
		struct vf_tdx_result r;
		char msg[512];

		j->ok += vf_tdx_verify(j->t, &in, &r, msg, sizeof(msg)) == AK_R_OK &&
			 r.tcb_evaluated;
	}
	return NULL;
}

static void test_verify_threads(void **state)
{
	struct vf_tdx_trust *t = NULL;
	struct verify_job job[8];
	pthread_t th[8];
	size_t len;
	uint8_t *buf = quote_of(V4_SPR, &len);
	char *roots = vec_path("intel-roots"), *col = vec_path("tdx/v4-spr-go-tdx-guest");

	(void)state;
	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, roots), 0);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, col), 0);
	for (int i = 0; i < 8; i++) {
		job[i] = (struct verify_job){.t = t, .quote = buf, .len = len};
		assert_int_equal(pthread_create(&th[i], NULL, verify_thread, &job[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(job[i].ok, 25);
	}
	/* the PCK chain, the issuer chain (the same bytes for TCB info and QE
	 * identity), two CRLs */
	assert_int_equal(vf_tdx_memo_count(t->memo), 4);
	vf_tdx_trust_free(t);
	free(roots);
	free(col);
	free(buf);
}

/* The memo hands out settled certificates. OpenSSL fills a certificate's
 * extension cache (its key identifiers, purpose flags, hash) at the first
 * use, under the certificate's own lock, and reads it afterwards without
 * the lock: a lock-free fast path on an atomic flag inside libcrypto, which
 * ThreadSanitizer does not see. A thread that took a chain from the memo
 * before another thread used it first would read key identifiers that
 * thread wrote with nothing between them: the data race check-tsan-broker
 * reported in broker-reload.sh (memcmp in ASN1_STRING_cmp, against the
 * ASN1_STRING_set of another request thread). This test forces that order:
 * this thread takes the chain, a helper takes it and uses it first and
 * says so through a relaxed atomic (no happens-before for TSan), then this
 * thread compares the key identifiers. Under check-tsan it fails when the
 * memo publishes unsettled certificates. */
struct first_use {
	struct vf_tdx_memo *m;
	const void *pem;
	size_t len;
	int done; /* relaxed atomics only */
	bool issued;
};

static void *use_first(void *arg)
{
	struct first_use *u = arg;
	STACK_OF(X509) *sk = vf_tdx_memo_chain(u->m, u->pem, u->len, 8);

	u->issued = sk && sk_X509_num(sk) == 3 &&
		    X509_check_issued(sk_X509_value(sk, 1), sk_X509_value(sk, 0)) == X509_V_OK;
	sk_X509_pop_free(sk, X509_free);
	__atomic_store_n(&u->done, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void test_verify_threads_settled(void **state)
{
	struct ak_tdx_quote q;
	size_t len;
	uint8_t *buf = quote_of(V4_SPR, &len);
	struct first_use u = {.m = vf_tdx_memo_new()};
	STACK_OF(X509) *sk;
	pthread_t th;

	(void)state;
	assert_non_null(u.m);
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
	u.pem = q.pck_chain_pem;
	u.len = q.pck_chain_len;
	sk = vf_tdx_memo_chain(u.m, u.pem, u.len, 8); /* parsed and remembered */
	assert_non_null(sk);
	assert_int_equal(sk_X509_num(sk), 3);
	assert_int_equal(pthread_create(&th, NULL, use_first, &u), 0);
	while (!__atomic_load_n(&u.done, __ATOMIC_RELAXED))
		usleep(1000);
	assert_int_equal(X509_check_issued(sk_X509_value(sk, 1), sk_X509_value(sk, 0)), X509_V_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(u.issued);
	sk_X509_pop_free(sk, X509_free);
	vf_tdx_memo_free(u.m);
	free(buf);
}

/* Refusals only a re-signed QE report reaches: a PCK key that is not
 * P-256, an attestation key that is not a P-256 point. */
static void test_verify_keys(void **state)
{
	struct fake f;
	struct vf_tdx_result r;
	char msg[512];

	(void)state;
	fake_make_ex(&f, "P-384", false);
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_non_null(strstr(msg, "not ECDSA P-256"));
	fake_free(&f);
	fake_make_ex(&f, "P-256", true);
	assert_int_equal(fake_verify(&f, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	assert_non_null(strstr(msg, "not a P-256 point"));
	fake_free(&f);
}

/* No root configured: nothing verifies. */
static void test_verify_no_roots(void **state)
{
	struct vf_tdx_trust *t = NULL;
	struct vf_tdx_result r;
	size_t len;
	uint8_t *buf = quote_of(V4_SPR, &len);
	struct vf_tdx_input in = {.quote = buf, .quote_len = len, .now = T2023};
	char msg[256];

	(void)state;
	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	assert_non_null(strstr(msg, "no Intel SGX Root CA"));
	assert_int_equal(vf_tdx_verify(t, NULL, &r, msg, sizeof(msg)), AK_R_INTERNAL);
	vf_tdx_trust_free(t);
	free(buf);
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_vectors),
	    cmocka_unit_test(test_parse_v5_body15),
	    cmocka_unit_test(test_parse_v5_body10),
	    cmocka_unit_test(test_parse_trailing),
	    cmocka_unit_test(test_parse_truncated),
	    cmocka_unit_test(test_parse_header_fields),
	    cmocka_unit_test(test_parse_v5_descriptor),
	    cmocka_unit_test(test_parse_wrong_lengths),
	    cmocka_unit_test(test_trust_roots),
	    cmocka_unit_test(test_verify_vectors),
	    cmocka_unit_test(test_verify_json),
	    cmocka_unit_test(test_verify_signatures),
	    cmocka_unit_test(test_verify_policy_fields),
	    cmocka_unit_test(test_verify_report_data),
	    cmocka_unit_test(test_verify_chain),
	    cmocka_unit_test(test_verify_revocation),
	    cmocka_unit_test(test_verify_shared_trust),
	    cmocka_unit_test(test_memo),
	    cmocka_unit_test(test_verify_threads),
	    cmocka_unit_test(test_verify_threads_settled),
	    cmocka_unit_test(test_verify_keys),
	    cmocka_unit_test(test_verify_no_roots),
	};
	/* clang-format on */

	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (getenv("AK_TEST_FILTER")) /* check-tsan: AK_TEST_FILTER='test_verify_threads*' */
		cmocka_set_test_filter(getenv("AK_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
