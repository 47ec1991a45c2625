/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX collateral and TCB evaluation (src/verify/tdx_tcb.c,
 * tdx_collateral.c) and the TDX policy (policy_tdx.c), against the real
 * quotes and Intel collateral in tests/data/tdx (its README.md
 * states the TCB status each must reach).
 */
#include "config.h"

#include "test_tdx_util.h"

#include <errno.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/tdx.h"
#include "attestkey/verify.h"
#include "tdx_internal.h"

#define SPR "tdx/v4-spr-go-tdx-guest"
#define V5 "tdx/v5-tdx15-go-tdx-guest"
#define COS "tdx/v4-gcp-cos113-go-tdx-guest"
#define DBG "tdx/v4-debug-trustee"

/* 2023-06-19T08:42:58Z: a day after the SPR collateral's issueDate, when
 * TCB info, QE identity, both CRLs and the 2018 TCB signing certificate
 * were all valid. */
#define T_SPR 1687164178
/* 2026-02-02: in the v5 TCB info's window (its QE identity is from 2023). */
#define T_V5 1770000000
/* 2025-09-30: in the window of the 2025-09 TCB infos. */
#define T_2025 1759190400

struct vec {
	uint8_t *buf;
	size_t len;
	struct ak_tdx_quote q;
	X509 *leaf;
	struct vf_tdx_pck_info pck;
};

static void vec_load(struct vec *v, const char *dir)
{
	char rel[128], msg[256];

	snprintf(rel, sizeof(rel), "%s/quote.dat", dir);
	v->buf = tdx_read(rel, &v->len);
	tdx_quote_fill(v->buf, v->len, &v->q, &v->leaf);
	if (vf_tdx_pck_info_parse(v->leaf, &v->pck, msg, sizeof(msg)) != 0)
		fail_msg("%s: %s", dir, msg);
}

static void vec_free(struct vec *v)
{
	X509_free(v->leaf);
	free(v->buf);
}

/* Roots: Intel's SGX Root CA (vf_tdx_trust_add_roots of the PEM file);
 * TCB signers: the current signing certificate. */
static struct vf_tdx_trust *trust_new(void)
{
	struct vf_tdx_trust *t = NULL;
	char *root = tdx_path("intel-roots/Intel_SGX_Root_CA.pem");

	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, root), 0);
	free(root);
	assert_int_equal(sk_X509_num(t->tcb_signers), 0);
	sk_X509_push(t->tcb_signers,
		     tdx_cert("intel-roots/Intel_SGX_TCB_Signing_2025-05-06_to_2032-05-06.pem"));
	return t;
}

/* Collateral: the files named (relative to the vectors), chains from the
 * same directory when it has them. */
static void coll_files(struct vf_tdx_collateral *c, const char *tcb, const char *qe,
		       const char *chain_dir)
{
	char rel[160];

	memset(c, 0, sizeof(*c));
	c->tcb_info = (char *)tdx_read(tcb, &c->tcb_info_len);
	c->qe_identity = (char *)tdx_read(qe, &c->qe_identity_len);
	if (chain_dir) {
		snprintf(rel, sizeof(rel), "%s/tcb_info_issuer_chain.pem", chain_dir);
		c->tcb_info_chain = tdx_chain(rel);
		snprintf(rel, sizeof(rel), "%s/qe_identity_issuer_chain.pem", chain_dir);
		c->qe_identity_chain = tdx_chain(rel);
	}
}

static enum ak_reason eval(struct vec *v, struct vf_tdx_collateral *c, time_t now,
			   struct vf_tdx_result *res, char *msg, size_t msglen)
{
	struct vf_tdx_trust *t = trust_new();
	enum ak_reason r;

	memset(res, 0, sizeof(*res));
	r = vf_tdx_tcb_evaluate(t, c, &v->pck, &v->q, now, res, msg, msglen);
	vf_tdx_trust_free(t);
	return r;
}

/* One quote with its collateral, evaluated. */
struct run {
	struct vec v;
	struct vf_tdx_collateral c;
	struct vf_tdx_result res;
	char msg[512];
};

static void run_open(struct run *r, const char *vec, const char *tcb, const char *qe,
		     const char *chain)
{
	memset(r, 0, sizeof(*r));
	vec_load(&r->v, vec);
	coll_files(&r->c, tcb, qe, chain);
}

static enum ak_reason run_eval(struct run *r, time_t now)
{
	return eval(&r->v, &r->c, now, &r->res, r->msg, sizeof(r->msg));
}

/* Evaluates; fails the test unless it gives `want` with msg containing `needle`. */
static void run_expect(struct run *r, time_t now, enum ak_reason want, const char *needle)
{
	enum ak_reason got = run_eval(r, now);

	if (got != want || (needle && !tdx_contains(r->msg, needle)))
		fail_msg("%s, expected %s with '%s': %s", ak_reason_name(got), ak_reason_name(want),
			 needle ? needle : "", r->msg);
}

static void run_close(struct run *r)
{
	vf_tdx_collateral_clear(&r->c);
	vec_free(&r->v);
}

/* ---- PCK extensions -------------------------------------------------------- */

static void test_pck_info(void **state)
{
	static const struct {
		const char *dir, *fmspc;
	} cases[] = {
	    {SPR, "50806f000000"},
	    {V5, "90c06f000000"},
	    {COS, "00806f050000"},
	    {DBG, "50806f000000"},
	};
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		struct vec v;
		char hex[13];

		vec_load(&v, cases[i].dir);
		ak_hex_encode(v.pck.fmspc, 6, hex);
		assert_string_equal(hex, cases[i].fmspc);
		assert_int_equal(v.pck.pceid[0], 0);
		assert_int_equal(v.pck.pceid[1], 0);
		assert_false(v.pck.processor_ca); /* all issued by the PCK Platform CA */
		assert_true(v.pck.pcesvn > 0);
		vec_free(&v);
	}
}

static void test_pck_info_spr_values(void **state)
{
	/* From `openssl asn1parse` of the SPR leaf: comps 03 03 02 02 02 01
	 * 00 02 00.., PCESVN 11, CPUSVN 0303020202010002 00.. */
	static const uint8_t comps[16] = {3, 3, 2, 2, 2, 1, 0, 2};
	struct vec v;
	(void)state;

	vec_load(&v, SPR);
	assert_memory_equal(v.pck.sgx_comp_svn, comps, 16);
	assert_int_equal(v.pck.pcesvn, 11);
	assert_memory_equal(v.pck.cpusvn, comps, 16);
	vec_free(&v);
}

static void test_pck_info_refusals(void **state)
{
	struct vf_tdx_pck_info pck;
	X509 *root = tdx_cert("intel-roots/Intel_SGX_Root_CA.pem");
	char msg[256];
	(void)state;

	assert_int_equal(vf_tdx_pck_info_parse(root, &pck, msg, sizeof(msg)), -EBADMSG);
	assert_true(tdx_contains(msg, "no SGX extensions (OID 1.2.840.113741.1.13.1)"));
	assert_int_equal(vf_tdx_pck_info_parse(NULL, &pck, msg, sizeof(msg)), -EBADMSG);
	X509_free(root);
}

/* The SPR leaf with its SGX extension edited in place (same length: a
 * tag or an OID arc changed) or its issuer CN replaced. */
static X509 *leaf_edited(const uint8_t *pattern, size_t plen, size_t at, uint8_t byte,
			 const char *issuer_cn)
{
	struct vec v;
	ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
	X509 *x;
	int idx;

	vec_load(&v, SPR);
	x = X509_dup(v.leaf);
	vec_free(&v);
	idx = X509_get_ext_by_OBJ(x, obj, -1);
	assert_true(idx >= 0);
	if (pattern) {
		ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(X509_get_ext(x, idx));
		uint8_t *hit = memmem(data->data, (size_t)data->length, pattern, plen);

		assert_non_null(hit);
		hit[at] = byte;
	}
	if (issuer_cn) {
		X509_NAME *n = X509_NAME_new();

		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)issuer_cn,
					   -1, -1, 0);
		X509_set_issuer_name(x, n);
		X509_NAME_free(n);
	}
	ASN1_OBJECT_free(obj);
	return x;
}

static void test_pck_info_malformed(void **state)
{
	/* 06 0A <OID 1.2.840.113741.1.13.1.4> 04 06: the FMSPC pair */
	static const uint8_t fmspc[] = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf8,
					0x4d, 0x01, 0x0d, 0x01, 0x04, 0x04, 0x06};
	static const uint8_t pceid[] = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf8,
					0x4d, 0x01, 0x0d, 0x01, 0x03, 0x04, 0x02};
	/* 06 0B <OID ...1.2.1> 02 01: SGX TCB Comp01 SVN */
	static const uint8_t comp1[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d,
					0x01, 0x0d, 0x01, 0x02, 0x01, 0x02, 0x01};
	static const uint8_t pcesvn[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d,
					 0x01, 0x0d, 0x01, 0x02, 0x11, 0x02, 0x01};
	static const struct {
		const uint8_t *pattern;
		size_t plen, at;
		uint8_t byte;
		const char *issuer, *needle;
	} cases[] = {
	    {fmspc, sizeof(fmspc), 12, 0x0c, NULL,
	     "SGX extension 1.2.840.113741.1.13.1.4 is malformed"},
	    {fmspc, sizeof(fmspc), 11, 0x09, NULL, "FMSPC (1.2.840.113741.1.13.1.4) is missing"},
	    {pceid, sizeof(pceid), 11, 0x09, NULL, "PCE-ID (1.2.840.113741.1.13.1.3) is missing"},
	    {comp1, sizeof(comp1), 13, 0x04, NULL,
	     "SGX extension 1.2.840.113741.1.13.1.2.1 is malformed"},
	    {comp1, sizeof(comp1), 12, 0x13, NULL, "Comp01..16 SVN"},
	    {pcesvn, sizeof(pcesvn), 12, 0x13, NULL,
	     "PCESVN (1.2.840.113741.1.13.1.2.17) is missing"},
	    {NULL, 0, 0, 0, "Intel SGX PCK Fancy CA",
	     "issuer CN 'Intel SGX PCK Fancy CA' is neither"},
	};
	struct vf_tdx_pck_info pck;
	char msg[256];
	X509 *x;
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		x = leaf_edited(cases[i].pattern, cases[i].plen, cases[i].at, cases[i].byte,
				cases[i].issuer);
		assert_int_equal(vf_tdx_pck_info_parse(x, &pck, msg, sizeof(msg)), -EBADMSG);
		if (!tdx_contains(msg, cases[i].needle))
			fail_msg("case %zu: %s", i, msg);
		X509_free(x);
	}
	/* the Processor CA names the other CRL */
	x = leaf_edited(NULL, 0, 0, 0, "Intel SGX PCK Processor CA");
	assert_int_equal(vf_tdx_pck_info_parse(x, &pck, msg, sizeof(msg)), 0);
	assert_true(pck.processor_ca);
	X509_free(x);
}

/* ---- signatures ------------------------------------------------------------ */

static void test_signatures_each_file(void **state)
{
	static const struct {
		const char *vec, *tcb, *qe, *chain;
		time_t now;
	} cases[] = {
	    {SPR, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR, T_SPR},
	    {SPR, SPR "/tcb_info_2025-09.json", SPR "/qe_identity.json", NULL, T_2025},
	    {V5, V5 "/tcb_info.json", V5 "/qe_identity.json", NULL, T_V5},
	    {COS, COS "/tcb_info_2025-09.json", V5 "/qe_identity.json", NULL, T_2025},
	};
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		struct run r;

		run_open(&r, cases[i].vec, cases[i].tcb, cases[i].qe, cases[i].chain);
		run_expect(&r, cases[i].now, AK_R_OK, NULL);
		assert_true(r.res.tcb_evaluated);
		run_close(&r);
	}
}

/* Flip one byte inside the signed value, then inside the signature. */
static void test_signatures_flipped(void **state)
{
	static const char *const keys[] = {"\"issueDate\"", "\"signature\""};
	(void)state;

	for (int which = 0; which < 2; which++) {
		for (size_t k = 0; k < AK_ARRAY_SIZE(keys); k++) {
			struct run r;
			char *at;

			run_open(&r, SPR, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR);
			at = strstr(which == 0 ? r.c.tcb_info : r.c.qe_identity, keys[k]);
			assert_non_null(at);
			at += strlen(keys[k]) + 3; /* :"2 -> the first digit */
			*at = *at == '1' ? '2' : '1';
			run_expect(&r, T_SPR, AK_R_BAD_SIGNATURE,
				   which == 0 ? "TCB info: signature does not verify"
					      : "QE identity: signature does not verify");
			assert_false(r.res.tcb_evaluated);
			run_close(&r);
		}
	}
}

static void test_signatures_untrusted(void **state)
{
	struct vf_tdx_trust *t = trust_new();
	char *ark = tdx_path("snp/amd-roots/ark-milan.pem");
	struct run r;
	(void)state;

	run_open(&r, SPR, SPR "/tcb_info.json", SPR "/qe_identity.json", NULL);
	/* No issuer chain and no TCB signer: nothing to verify with. */
	X509_free(sk_X509_pop(t->tcb_signers));
	assert_int_equal(
	    vf_tdx_tcb_evaluate(t, &r.c, &r.v.pck, &r.v.q, T_SPR, &r.res, r.msg, sizeof(r.msg)),
	    AK_R_BAD_SIGNATURE);
	assert_true(tdx_contains(r.msg, "none given"));
	vf_tdx_trust_free(t);
	/* A signer that chains to another root. */
	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, ark), 0);
	sk_X509_push(t->tcb_signers,
		     tdx_cert("intel-roots/Intel_SGX_TCB_Signing_2025-05-06_to_2032-05-06.pem"));
	assert_int_equal(
	    vf_tdx_tcb_evaluate(t, &r.c, &r.v.pck, &r.v.q, T_SPR, &r.res, r.msg, sizeof(r.msg)),
	    AK_R_UNTRUSTED_CHAIN);
	assert_true(tdx_contains(r.msg, "does not chain to a trusted root"));
	vf_tdx_trust_free(t);
	free(ark);
	run_close(&r);
}

/* An issuer chain whose first certificate did not sign (here the PCK CRL's
 * chain): the roots dir's TCB signing certificate is tried next. */
static void test_signer_fallback(void **state)
{
	struct run r;
	(void)state;

	run_open(&r, SPR, SPR "/tcb_info.json", SPR "/qe_identity.json", NULL);
	r.c.tcb_info_chain = tdx_chain(SPR "/pck_crl_issuer_chain.pem");
	run_expect(&r, T_SPR, AK_R_OK, NULL);
	/* the 2025 signer is valid now: only the collateral itself is stale */
	run_expect(&r, 0, AK_R_OK, NULL);
	assert_true(tdx_contains(r.res.expired, "tcb_info (nextUpdate"));
	assert_false(tdx_contains(r.res.expired, "signing certificate"));
	run_close(&r);
}

/* The signed bytes are the top-level member's, wherever "tcbInfo" also
 * appears; a duplicated member is refused. */
static void test_signatures_exact_bytes(void **state)
{
	static const char *const prefixes[] = {
	    "{\"note\":\"tcbInfo\",\"decoy\":{\"tcbInfo\":{\"id\":\"TDX\"}},",
	    "{\"tcbInfo\":{\"id\":\"TDX\"},",
	};
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(prefixes); i++) {
		struct run r;
		char *body = NULL;

		run_open(&r, SPR, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR);
		assert_true(asprintf(&body, "%s%s", prefixes[i], r.c.tcb_info + 1) > 0);
		free(r.c.tcb_info);
		r.c.tcb_info = body;
		r.c.tcb_info_len = strlen(body);
		if (i == 0)
			run_expect(&r, T_SPR, AK_R_OK, NULL);
		else
			run_expect(&r, T_SPR, AK_R_COLLATERAL_UNAVAILABLE,
				   "TCB info does not parse as JSON: duplicate");
		run_close(&r);
	}
}

/* ---- TCB evaluation: the README's expected statuses ------------------------- */

static void expect(const char *vec, const char *tcb, const char *qe, const char *chain, time_t now,
		   enum vf_tdx_tcb_status want, enum vf_tdx_tcb_status module, const char *advisory)
{
	struct run r;

	run_open(&r, vec, tcb, qe, chain);
	run_expect(&r, now, AK_R_OK, NULL);
	if (r.res.tcb_status != want)
		fail_msg("%s with %s: %s, expected %s", vec, tcb,
			 vf_tdx_tcb_status_name(r.res.tcb_status), vf_tdx_tcb_status_name(want));
	assert_true(r.res.tcb_evaluated);
	assert_int_equal(r.res.module_status, module);
	assert_int_equal(r.res.qe_status, VF_TDX_TCB_UP_TO_DATE);
	if (advisory)
		assert_true(tdx_contains(r.res.advisory_ids, advisory));
	else if (want == VF_TDX_TCB_UP_TO_DATE)
		assert_string_equal(r.res.advisory_ids, "");
	if (want != VF_TDX_TCB_NOT_SUPPORTED)
		assert_true(r.res.tcb_date[0] == '2');
	run_close(&r);
}

static void test_tcb_spr_not_supported(void **state)
{
	(void)state;
	/* README: no TCB level matches, with either TCB info. */
	expect(SPR, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR, T_SPR,
	       VF_TDX_TCB_NOT_SUPPORTED, VF_TDX_TCB_NONE, NULL);
	expect(SPR, SPR "/tcb_info_2025-09.json", SPR "/qe_identity.json", NULL, T_2025,
	       VF_TDX_TCB_NOT_SUPPORTED, VF_TDX_TCB_NONE, NULL);
}

static void test_tcb_v5_up_to_date(void **state)
{
	struct run r;
	(void)state;

	/* README: UpToDate (platform level 2024-11-13; module TDX_01 isvsvn 11). */
	expect(V5, V5 "/tcb_info.json", V5 "/qe_identity.json", NULL, T_V5, VF_TDX_TCB_UP_TO_DATE,
	       VF_TDX_TCB_UP_TO_DATE, NULL);
	run_open(&r, V5, V5 "/tcb_info.json", V5 "/qe_identity.json", NULL);
	assert_int_equal(r.v.q.body_type, 3);
	assert_int_equal(r.v.q.body.tee_tcb_svn[1], 1);
	run_expect(&r, T_V5, AK_R_OK, NULL);
	assert_int_equal(r.res.platform_status, VF_TDX_TCB_UP_TO_DATE);
	assert_string_equal(r.res.fmspc, "90c06f000000");
	/* the QE identity is from 2023: expired at the TCB info's time */
	assert_true(r.res.collateral_expired);
	assert_true(tdx_contains(r.res.expired, "qe_identity (nextUpdate 2023-07-08T07:24:59Z)"));
	assert_false(tdx_contains(r.res.expired, "tcb_info"));
	run_close(&r);
}

static void test_tcb_cos113_up_to_date(void **state)
{
	(void)state;
	expect(COS, COS "/tcb_info_2025-09.json", V5 "/qe_identity.json", NULL, T_2025,
	       VF_TDX_TCB_UP_TO_DATE, VF_TDX_TCB_UP_TO_DATE, NULL);
}

static void test_tcb_debug(void **state)
{
	(void)state;
	/* README: UpToDate with the 2023 SPR file, OutOfDate (INTEL-SA-00837, ...)
	 * with the 2025-09 one. */
	expect(DBG, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR, T_SPR,
	       VF_TDX_TCB_UP_TO_DATE, VF_TDX_TCB_NONE, NULL);
	expect(DBG, SPR "/tcb_info_2025-09.json", SPR "/qe_identity.json", NULL, T_2025,
	       VF_TDX_TCB_OUT_OF_DATE, VF_TDX_TCB_NONE, "INTEL-SA-00837");
}

static void test_tcb_fmspc_mismatch(void **state)
{
	struct run r;
	(void)state;

	run_open(&r, V5, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR);
	run_expect(&r, T_SPR, AK_R_TCB_MISMATCH,
		   "TCB info is for FMSPC 50806f000000, the PCK certificate's FMSPC is "
		   "90c06f000000");
	assert_false(r.res.tcb_evaluated);
	run_close(&r);
}

/* ---- expiry ------------------------------------------------------------------ */

static void test_expiry(void **state)
{
	struct run r;
	(void)state;

	run_open(&r, DBG, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR);
	r.c.pck_crl = tdx_crl(SPR "/pck_crl.der");
	r.c.root_crl = tdx_crl(SPR "/root_ca_crl.der");
	/* injected time: everything in its window */
	run_expect(&r, T_SPR, AK_R_OK, NULL);
	assert_false(r.res.collateral_expired);
	assert_string_equal(r.res.expired, "");
	/* real time: each piece named, and the evaluation still done */
	run_expect(&r, 0, AK_R_OK, NULL);
	assert_true(r.res.collateral_expired);
	assert_int_equal(r.res.tcb_status, VF_TDX_TCB_UP_TO_DATE);
	assert_true(tdx_contains(r.res.expired, "tcb_info (nextUpdate 2023-07-18T08:42:58Z)"));
	assert_true(tdx_contains(r.res.expired, "qe_identity (nextUpdate 2023-07-08T07:24:59Z)"));
	assert_true(tdx_contains(r.res.expired, "pck_crl (nextUpdate 2023-07-08T07:27:52Z)"));
	assert_true(tdx_contains(r.res.expired, "root_ca_crl (nextUpdate 2024-04-02T10:22:51Z)"));
	/* the 2018 TCB signing certificate of the issuer chain expired in 2025 */
	assert_true(tdx_contains(r.res.expired, "TCB signing certificate 'Intel SGX TCB Signing' "
						"(notAfter 2025-05-21"));
	/* before the collateral was issued */
	run_expect(&r, T_SPR - 30 * 86400, AK_R_OK, NULL);
	assert_true(r.res.collateral_expired);
	assert_true(
	    tdx_contains(r.res.expired, "tcb_info (issueDate 2023-06-18T08:42:58Z is after"));
	run_close(&r);
}

/* ---- QE identity ----------------------------------------------------------- */

static void test_qe_identity_mismatch(void **state)
{
	static const char *const needles[] = {"MRSIGNER", "ISVPRODID 3", "MISCSELECT",
					      "ATTRIBUTES"};
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(needles); i++) {
		struct run r;

		run_open(&r, SPR, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR);
		switch (i) {
		case 0:
			r.v.q.qe_report.mrsigner[5] ^= 1;
			break;
		case 1:
			r.v.q.qe_report.isvprodid = 3;
			break;
		case 2:
			r.v.q.qe_report.miscselect ^= 1;
			break;
		default:
			r.v.q.qe_report.attributes[0] ^= 0x02;
			break; /* DEBUG */
		}
		run_expect(&r, T_SPR, AK_R_BAD_SIGNATURE, needles[i]);
		run_close(&r);
	}
}

static void test_qe_isvsvn(void **state)
{
	struct run r;
	(void)state;

	run_open(&r, DBG, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR);
	/* README: QE isvsvn 4 -> UpToDate; below every level -> not supported */
	r.v.q.qe_report.isvsvn = 0;
	run_expect(&r, T_SPR, AK_R_OK, NULL);
	assert_int_equal(r.res.qe_status, VF_TDX_TCB_NOT_SUPPORTED);
	assert_int_equal(r.res.tcb_status, VF_TDX_TCB_NOT_SUPPORTED);
	run_close(&r);
}

static void test_module_mismatch(void **state)
{
	struct run r;
	(void)state;

	run_open(&r, V5, V5 "/tcb_info.json", V5 "/qe_identity.json", NULL);
	r.v.q.body.tee_tcb_svn[1] = 2; /* no TDX_02 identity */
	run_expect(&r, T_V5, AK_R_TCB_MISMATCH, "TDX_02");
	r.v.q.body.tee_tcb_svn[1] = 1;
	r.v.q.body.mrsignerseam[0] ^= 1;
	run_expect(&r, T_V5, AK_R_TCB_MISMATCH, "MRSIGNERSEAM");
	r.v.q.body.mrsignerseam[0] ^= 1;
	r.v.q.body.seam_attributes = 1;
	run_expect(&r, T_V5, AK_R_TCB_MISMATCH, "SEAMATTRIBUTES");
	r.v.q.body.seam_attributes = 0;
	r.v.q.body.tee_tcb_svn[0] = 1; /* module isvsvn below every module level */
	run_expect(&r, T_V5, AK_R_OK, NULL);
	assert_int_equal(r.res.tcb_status, VF_TDX_TCB_NOT_SUPPORTED);
	/* TDX_01 isvsvn 4: an OutOfDate module. TEE_TCB_SVN2 (0d 01 04: the
	 * running module) reaches the latest level: Intel advises a relaunch. */
	r.v.q.body.tee_tcb_svn[0] = 4;
	run_expect(&r, T_V5, AK_R_OK, NULL);
	assert_int_equal(r.res.module_status, VF_TDX_TCB_OUT_OF_DATE);
	assert_int_equal(r.res.tcb_status, VF_TDX_TCB_TD_RELAUNCH_ADVISED);
	assert_true(tdx_contains(r.res.advisory_ids, "INTEL-SA-01036"));
	/* without a newer running module: OutOfDate */
	memset(r.v.q.body.tee_tcb_svn2, 0, 16);
	run_expect(&r, T_V5, AK_R_OK, NULL);
	assert_int_equal(r.res.tcb_status, VF_TDX_TCB_OUT_OF_DATE);
	/* a TDX 1.0 body is never advised to relaunch */
	r.v.q.body_type = 2;
	memcpy(r.v.q.body.tee_tcb_svn2, "\x0d\x01\x04", 3);
	run_expect(&r, T_V5, AK_R_OK, NULL);
	assert_int_equal(r.res.tcb_status, VF_TDX_TCB_OUT_OF_DATE);
	run_close(&r);
}

/* ---- re-signed collateral: the statuses Intel combines ---------------------- */

/* A test root and TCB signer (never trusted outside these tests), to sign
 * edited copies of the real TCB info and QE identity. */
struct signer {
	EVP_PKEY *root_key, *key;
	X509 *root, *cert;
};

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), issuer ? 2 : 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600L * 24 * 365 * 10);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365 * 10);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
				  issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
				  issuer ? "critical,digitalSignature"
					 : "critical,keyCertSign,cRLSign");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return x;
}

static void signer_init(struct signer *sg)
{
	sg->root_key = EVP_EC_gen("P-256");
	sg->key = EVP_EC_gen("P-256");
	assert_non_null(sg->root_key);
	assert_non_null(sg->key);
	sg->root = make_cert("attestkey test root", sg->root_key, NULL, NULL);
	sg->cert = make_cert("attestkey test TCB signing", sg->key, sg->root, sg->root_key);
}

static void signer_free(struct signer *sg)
{
	X509_free(sg->root);
	X509_free(sg->cert);
	EVP_PKEY_free(sg->root_key);
	EVP_PKEY_free(sg->key);
}

/* {"<key>":<value>,"signature":"<r||s hex>"} signed by sg. */
static char *sign_doc(struct signer *sg, const char *key, json_t *value, size_t *len)
{
	char *text = json_dumps(value, JSON_COMPACT), *body = NULL, hex[129];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80], rs[64];
	const unsigned char *p = der;
	size_t derlen = sizeof(der);
	ECDSA_SIG *sig;

	assert_non_null(text);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sg->key), 1);
	assert_int_equal(
	    EVP_DigestSign(md, der, &derlen, (const unsigned char *)text, strlen(text)), 1);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	assert_non_null(sig);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32), 32);
	ak_hex_encode(rs, 64, hex);
	assert_true(asprintf(&body, "{\"%s\":%s,\"signature\":\"%s\"}", key, text, hex) > 0);
	*len = strlen(body);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	free(text);
	return body;
}

/* The v4-debug quote against edited copies of the SPR 2023 TCB info and QE
 * identity, re-signed by a test signer. */
struct resigned {
	struct signer sg;
	json_t *tcb, *qe; /* the "tcbInfo" / "enclaveIdentity" values, to edit */
	struct vec v;
	struct vf_tdx_result res;
	char msg[512];
};

static json_t *value_of(const char *rel, const char *key)
{
	size_t len;
	uint8_t *data = tdx_read(rel, &len);
	json_t *root = json_loadb((const char *)data, len, 0, NULL), *v;

	free(data);
	assert_non_null(root);
	v = json_incref(json_object_get(root, key));
	json_decref(root);
	assert_non_null(v);
	return v;
}

static void resigned_open(struct resigned *rs)
{
	memset(rs, 0, sizeof(*rs));
	signer_init(&rs->sg);
	rs->tcb = value_of(SPR "/tcb_info.json", "tcbInfo");
	rs->qe = value_of(SPR "/qe_identity.json", "enclaveIdentity");
	vec_load(&rs->v, DBG);
}

static enum ak_reason resigned_eval(struct resigned *rs)
{
	struct vf_tdx_collateral c = {0};
	struct vf_tdx_trust *t = NULL;
	enum ak_reason r;

	assert_int_equal(vf_tdx_trust_new(&t), 0);
	sk_X509_push(t->roots, X509_dup(rs->sg.root));
	sk_X509_push(t->tcb_signers, X509_dup(rs->sg.cert));
	c.tcb_info = sign_doc(&rs->sg, "tcbInfo", rs->tcb, &c.tcb_info_len);
	c.qe_identity = sign_doc(&rs->sg, "enclaveIdentity", rs->qe, &c.qe_identity_len);
	memset(&rs->res, 0, sizeof(rs->res));
	r = vf_tdx_tcb_evaluate(t, &c, &rs->v.pck, &rs->v.q, T_SPR, &rs->res, rs->msg,
				sizeof(rs->msg));
	vf_tdx_collateral_clear(&c);
	vf_tdx_trust_free(t);
	return r;
}

static void resigned_close(struct resigned *rs)
{
	json_decref(rs->tcb);
	json_decref(rs->qe);
	vec_free(&rs->v);
	signer_free(&rs->sg);
}

/* Every level of a TCB info (or a module identity / QE identity) to `s`. */
static void all_levels(json_t *doc, const char *s)
{
	size_t i;
	json_t *l;

	json_array_foreach(json_object_get(doc, "tcbLevels"), i, l)
	    json_object_set_new(l, "tcbStatus", json_string(s));
}

static void test_resigned_combinations(void **state)
{
	static const struct {
		const char *platform, *qe;
		enum vf_tdx_tcb_status want;
	} cases[] = {
	    {"UpToDate", "UpToDate", VF_TDX_TCB_UP_TO_DATE},
	    {"SWHardeningNeeded", "UpToDate", VF_TDX_TCB_SW_HARDENING_NEEDED},
	    {"ConfigurationNeeded", "UpToDate", VF_TDX_TCB_CONFIGURATION_NEEDED},
	    {"ConfigurationAndSWHardeningNeeded", "UpToDate",
	     VF_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED},
	    {"OutOfDateConfigurationNeeded", "UpToDate",
	     VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED},
	    {"Revoked", "UpToDate", VF_TDX_TCB_REVOKED},
	    /* convergeTcbStatusWithQeTcbStatus */
	    {"UpToDate", "OutOfDate", VF_TDX_TCB_OUT_OF_DATE},
	    {"SWHardeningNeeded", "OutOfDate", VF_TDX_TCB_OUT_OF_DATE},
	    {"ConfigurationNeeded", "OutOfDate", VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED},
	    {"ConfigurationAndSWHardeningNeeded", "OutOfDate",
	     VF_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED},
	    {"UpToDate", "Revoked", VF_TDX_TCB_REVOKED},
	    {"Revoked", "OutOfDate", VF_TDX_TCB_REVOKED},
	};
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		struct resigned rs;

		resigned_open(&rs);
		all_levels(rs.tcb, cases[i].platform);
		all_levels(rs.qe, cases[i].qe);
		if (resigned_eval(&rs) != AK_R_OK)
			fail_msg("%s/%s: %s", cases[i].platform, cases[i].qe, rs.msg);
		if (rs.res.tcb_status != cases[i].want)
			fail_msg("platform %s, QE %s: %s, expected %s", cases[i].platform,
				 cases[i].qe, vf_tdx_tcb_status_name(rs.res.tcb_status),
				 vf_tdx_tcb_status_name(cases[i].want));
		resigned_close(&rs);
	}
}

/* Intel visits the levels highest first, whatever order the file has. */
static void test_resigned_level_order(void **state)
{
	struct resigned rs;
	json_t *levels, *rev;
	(void)state;

	resigned_open(&rs);
	levels = json_object_get(rs.tcb, "tcbLevels");
	rev = json_array();
	for (size_t i = json_array_size(levels); i-- > 0;)
		json_array_append(rev, json_array_get(levels, i));
	json_object_set_new(rs.tcb, "tcbLevels", rev);
	assert_int_equal(resigned_eval(&rs), AK_R_OK);
	assert_int_equal(rs.res.tcb_status, VF_TDX_TCB_UP_TO_DATE);
	resigned_close(&rs);
}

/* Malformed or foreign collateral, with a valid signature. */
static void test_resigned_refusals(void **state)
{
	static const struct {
		const char *doc, *key, *value;
		enum ak_reason want;
		const char *needle;
	} cases[] = {
	    {"tcb", "id", "\"SGX\"", AK_R_TCB_MISMATCH,
	     "TCB info id 'SGX' version 3 is not for TDX"},
	    {"tcb", "version", "2", AK_R_TCB_MISMATCH, "is not for TDX"},
	    {"tcb", "pceId", "\"0100\"", AK_R_TCB_MISMATCH, "PCE-ID 0100"},
	    {"tcb", "fmspc", "\"zz\"", AK_R_COLLATERAL_UNAVAILABLE, "fmspc or pceId"},
	    {"tcb", "nextUpdate", "\"soon\"", AK_R_COLLATERAL_UNAVAILABLE, "nextUpdate"},
	    {"tcb", "tcbLevels", "[]", AK_R_COLLATERAL_UNAVAILABLE, "tcbLevels"},
	    {"tcb", "tcbLevels", "[{\"tcb\":{},\"tcbStatus\":\"UpToDate\"}]",
	     AK_R_COLLATERAL_UNAVAILABLE, "tcbLevels"},
	    {"tcb", "tdxModule", "{}", AK_R_COLLATERAL_UNAVAILABLE, "TDX module"},
	    {"qe", "id", "\"QE\"", AK_R_BAD_SIGNATURE, "id 'QE' version 2 is not a TD_QE"},
	    {"qe", "mrsigner", "\"00\"", AK_R_COLLATERAL_UNAVAILABLE, "QE identity: a field"},
	    {"qe", "tcbLevels", "[{\"tcb\":{\"isvsvn\":1},\"tcbStatus\":\"Fine\"}]",
	     AK_R_COLLATERAL_UNAVAILABLE, "QE identity: tcbLevels[0]"},
	};
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		struct resigned rs;
		enum ak_reason got;

		resigned_open(&rs);
		json_object_set_new(cases[i].doc[0] == 't' ? rs.tcb : rs.qe, cases[i].key,
				    json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
		got = resigned_eval(&rs);
		if (got != cases[i].want || !tdx_contains(rs.msg, cases[i].needle))
			fail_msg("%s %s = %s: %s (%s)", cases[i].doc, cases[i].key, cases[i].value,
				 ak_reason_name(got), rs.msg);
		resigned_close(&rs);
	}
	/* a status a platform level may not carry; one a QE level may not */
	for (int i = 0; i < 3; i++) {
		static const char *const bad[] = {"Fine", "TDRelaunchAdvised", "SWHardeningNeeded"};
		struct resigned rs;

		resigned_open(&rs);
		all_levels(i < 2 ? rs.tcb : rs.qe, bad[i]);
		assert_int_equal(resigned_eval(&rs), AK_R_COLLATERAL_UNAVAILABLE);
		if (!tdx_contains(rs.msg,
				  i < 2 ? "one of Intel's statuses" : "QE identity: tcbLevels[0]"))
			fail_msg("%s: %s", bad[i], rs.msg);
		resigned_close(&rs);
	}
}

/* ---- collateral from a directory ------------------------------------------------ */

static void test_collateral_dir(void **state)
{
	struct vf_tdx_collateral c;
	struct vf_tdx_input in = {.now = T_SPR};
	struct vf_tdx_trust *t = trust_new();
	struct vf_tdx_result res;
	struct vec v;
	char msg[512], *dir = tdx_path(SPR), *other = tdx_path(SPR "/tcb_info_2025-09.json");
	(void)state;

	vec_load(&v, SPR);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, dir), 0);
	assert_int_equal(vf_tdx_collateral_get(t, &in, &v.pck, &c, msg, sizeof(msg)), AK_R_OK);
	assert_non_null(c.tcb_info);
	assert_non_null(c.qe_identity);
	assert_non_null(c.pck_crl);
	assert_non_null(c.root_crl);
	assert_int_equal(sk_X509_num(c.tcb_info_chain), 2);
	assert_int_equal(sk_X509_num(c.qe_identity_chain), 2);
	assert_int_equal(vf_tdx_tcb_evaluate(t, &c, &v.pck, &v.q, T_SPR, &res, msg, sizeof(msg)),
			 AK_R_OK);
	assert_int_equal(res.tcb_status, VF_TDX_TCB_NOT_SUPPORTED);
	vf_tdx_collateral_clear(&c);
	/* --tcb-info overrides the directory's file */
	in.tcb_info_path = other;
	assert_int_equal(vf_tdx_collateral_get(t, &in, &v.pck, &c, msg, sizeof(msg)), AK_R_OK);
	assert_true(tdx_contains(c.tcb_info, "2025-09-29T18:29:22Z"));
	vf_tdx_collateral_clear(&c);
	in.tcb_info_path = "/nonexistent/tcb.json";
	assert_int_equal(vf_tdx_collateral_get(t, &in, &v.pck, &c, msg, sizeof(msg)),
			 AK_R_COLLATERAL_UNAVAILABLE);
	assert_true(tdx_contains(msg, "TCB info: cannot read /nonexistent/tcb.json"));
	/* a directory without the files, no PCS */
	in.tcb_info_path = NULL;
	free(dir);
	dir = tdx_path(DBG);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, dir), 0);
	assert_int_equal(vf_tdx_collateral_get(t, &in, &v.pck, &c, msg, sizeof(msg)),
			 AK_R_COLLATERAL_UNAVAILABLE);
	assert_true(tdx_contains(msg, "TCB info unavailable: not in "));
	assert_true(tdx_contains(msg, "tcb_info.json, no PCS URL configured"));
	assert_null(c.tcb_info);
	vf_tdx_trust_free(t);
	free(dir);
	free(other);
	vec_free(&v);
}

/* ---- policy ------------------------------------------------------------------ */

#define MRTD_DBG                                                                                   \
	"705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d4204"    \
	"83a9ce5f031"
#define MRTD_SPR                                                                                   \
	"6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e"    \
	"119d7215cbb"

static void set_ok(struct vf_policy *p, const char *k, const char *v)
{
	char err[512];

	if (vf_policy_set(p, k, v, err, sizeof(err)) != 0)
		fail_msg("vf_policy_set(%s, %s): %s", k, v, err);
}

static void set_bad(struct vf_policy *p, const char *k, const char *v, const char *needle)
{
	char err[512];

	assert_int_equal(vf_policy_set(p, k, v, err, sizeof(err)), -EINVAL);
	if (!tdx_contains(err, needle) || !tdx_contains(err, k))
		fail_msg("%s = %s: '%s' lacks '%s'", k, v, err, needle);
}

/* The v4-debug quote, evaluated UpToDate at T_SPR. */
static void debug_result(struct vf_tdx_result *res)
{
	struct run r;

	run_open(&r, DBG, SPR "/tcb_info.json", SPR "/qe_identity.json", SPR);
	run_expect(&r, T_SPR, AK_R_OK, NULL);
	*res = r.res;
	res->quote = r.v.q;
	res->quote.signed_data = NULL;
	res->quote.qe_report_raw = NULL;
	res->quote.qe_auth = NULL;
	res->quote.pck_chain_pem = NULL;
	run_close(&r);
}

static void test_policy_keys(void **state)
{
	struct vf_policy p;
	(void)state;

	vf_policy_init(&p);
	assert_int_equal(p.tcb_status_mask, 1u << VF_TDX_TCB_UP_TO_DATE);
	assert_false(p.allow_expired_collateral);
	set_ok(&p, "mrtd", MRTD_DBG ", " MRTD_SPR);
	set_ok(&p, "mrtd", MRTD_SPR); /* duplicate: harmless */
	assert_int_equal(p.n_mrtds, 2);
	set_bad(&p, "mrtd", "abcd", "96-hex-digit");
	set_bad(&p, "mrtd", MRTD_DBG ",zz", "96-hex-digit");
	assert_int_equal(p.n_mrtds, 2); /* all or nothing */
	set_ok(&p, "mrtd", "any");
	assert_true(p.any_mrtd);
	for (int i = 0; i < 4; i++) {
		char k[8];

		snprintf(k, sizeof(k), "rtmr%d", i);
		set_ok(&p, k, MRTD_SPR);
		assert_true(p.rtmr_set[i]);
		set_bad(&p, k, "00", "96 hex digits");
	}
	set_ok(&p, "mrconfigid", MRTD_SPR);
	set_ok(&p, "mrowner", MRTD_SPR);
	set_ok(&p, "mrownerconfig", MRTD_SPR);
	assert_true(p.mrconfigid_set && p.mrowner_set && p.mrownerconfig_set);
	set_bad(&p, "mrowner", "xyz", "96 hex digits");
	set_ok(&p, "tcb_status", "UpToDate, SWHardeningNeeded,OutOfDate");
	assert_int_equal(p.tcb_status_mask, 1u << VF_TDX_TCB_UP_TO_DATE |
						1u << VF_TDX_TCB_SW_HARDENING_NEEDED |
						1u << VF_TDX_TCB_OUT_OF_DATE);
	set_bad(&p, "tcb_status", "uptodate", "Intel TCB statuses");
	set_bad(&p, "tcb_status", "", "Intel TCB statuses");
	set_ok(&p, "allow_expired_collateral", "true");
	assert_true(p.allow_expired_collateral);
	set_bad(&p, "allow_expired_collateral", "perhaps", "boolean");
	set_ok(&p, "min_tee_tcb_svn", "03000500000000000000000000000000");
	assert_int_equal(p.min_tee_tcb_svn[2], 5);
	set_bad(&p, "min_tee_tcb_svn", "0300", "32 hex digits");
	/* not a policy key at all */
	{
		char err[128];

		assert_int_equal(vf_policy_set(&p, "rtmr4", "00", err, sizeof(err)), -ENOENT);
		assert_true(tdx_contains(err, "'rtmr4' is not a policy key"));
	}
	vf_policy_clear(&p);
	assert_null(p.mrtds);
}

static void test_policy_check(void **state)
{
	struct vf_tdx_result res, r2;
	struct vf_policy p;
	char msg[512], hex[97];
	(void)state;

	debug_result(&res);
	vf_policy_init(&p);
	/* empty MRTD list */
	assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)),
			 AK_R_MEASUREMENT_NOT_ALLOWED);
	assert_true(tdx_contains(msg, "MRTD " MRTD_DBG " is not in the mrtd allow-list of "
				      "token td (the list is empty)"));
	set_ok(&p, "mrtd", MRTD_SPR);
	assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)),
			 AK_R_MEASUREMENT_NOT_ALLOWED);
	set_ok(&p, "mrtd", MRTD_DBG);
	/* debug TD (README: policy must reject) */
	assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)),
			 AK_R_DEBUG_NOT_ALLOWED);
	assert_true(tdx_contains(msg, "DEBUG (bit 0)"));
	set_ok(&p, "allow_debug", "yes");
	assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)), AK_R_OK);
	assert_string_equal(msg, "ok");
	/* TCB status */
	r2 = res;
	r2.tcb_status = VF_TDX_TCB_OUT_OF_DATE;
	snprintf(r2.advisory_ids, sizeof(r2.advisory_ids), "INTEL-SA-00837");
	assert_int_equal(vf_policy_check_tdx(&p, &r2, "td", msg, sizeof(msg)),
			 AK_R_TCB_STATUS_NOT_ALLOWED);
	assert_true(tdx_contains(msg, "tcb_status OutOfDate, advisories INTEL-SA-00837 is not "
				      "accepted by token td (tcb_status = UpToDate)"));
	set_ok(&p, "tcb_status", "UpToDate,OutOfDate");
	assert_int_equal(vf_policy_check_tdx(&p, &r2, "td", msg, sizeof(msg)), AK_R_OK);
	r2.tcb_evaluated = false;
	assert_int_equal(vf_policy_check_tdx(&p, &r2, "td", msg, sizeof(msg)),
			 AK_R_TCB_STATUS_NOT_ALLOWED);
	assert_true(tdx_contains(msg, "(not evaluated)"));
	/* expired collateral */
	r2 = res;
	r2.collateral_expired = true;
	snprintf(r2.expired, sizeof(r2.expired), "tcb_info (nextUpdate 2023-07-18T08:42:58Z)");
	assert_int_equal(vf_policy_check_tdx(&p, &r2, "td", msg, sizeof(msg)),
			 AK_R_COLLATERAL_EXPIRED);
	assert_true(tdx_contains(msg, "tcb_info (nextUpdate 2023-07-18T08:42:58Z)"));
	set_ok(&p, "allow_expired_collateral", "true");
	assert_int_equal(vf_policy_check_tdx(&p, &r2, "td", msg, sizeof(msg)), AK_R_OK);
	/* RTMRs and the owner registers: expected and actual in the message */
	{
		static const char *const keys[] = {"rtmr0",	 "rtmr1",   "rtmr2",	    "rtmr3",
						   "mrconfigid", "mrowner", "mrownerconfig"};
		static const char *const names[] = {
		    "RTMR0", "RTMR1", "RTMR2", "RTMR3", "MRCONFIGID", "MROWNER", "MROWNERCONFIG"};
		const uint8_t *have[] = {res.quote.body.rtmr[0],      res.quote.body.rtmr[1],
					 res.quote.body.rtmr[2],      res.quote.body.rtmr[3],
					 res.quote.body.mrconfigid,   res.quote.body.mrowner,
					 res.quote.body.mrownerconfig};

		for (size_t i = 0; i < AK_ARRAY_SIZE(keys); i++) {
			char want[256];

			set_ok(&p, keys[i], MRTD_SPR);
			assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)),
					 AK_R_POLICY_MISMATCH);
			ak_hex_encode(have[i], 48, hex);
			snprintf(want, sizeof(want), "%s %s differs from %s " MRTD_SPR, names[i],
				 hex, names[i]);
			if (!tdx_contains(msg, want))
				fail_msg("%s: %s", keys[i], msg);
			set_ok(&p, keys[i], hex);
			assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)),
					 AK_R_OK);
		}
	}
	/* minimum TEE_TCB_SVN, component-wise (the quote has 03 00 05 ...) */
	set_ok(&p, "min_tee_tcb_svn", "03000600000000000000000000000000");
	assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)), AK_R_TCB_TOO_LOW);
	assert_true(tdx_contains(msg, "byte 2 (5) is below min_tee_tcb_svn "
				      "03000600000000000000000000000000 of token td"));
	set_ok(&p, "min_tee_tcb_svn", "03000500000000000000000000000000");
	assert_int_equal(vf_policy_check_tdx(&p, &res, "td", msg, sizeof(msg)), AK_R_OK);
	vf_policy_clear(&p);
}

static void test_status_names(void **state)
{
	(void)state;
	for (int i = 0; i < VF_TDX_TCB_COUNT_; i++) {
		enum vf_tdx_tcb_status s;

		assert_int_equal(vf_tdx_tcb_status_from_name(
				     vf_tdx_tcb_status_name((enum vf_tdx_tcb_status)i), &s),
				 0);
		assert_int_equal(s, i);
	}
	assert_string_equal(vf_tdx_tcb_status_name(VF_TDX_TCB_NOT_SUPPORTED),
			    "TCBLevelNotSupported");
	{
		enum vf_tdx_tcb_status s;

		assert_int_equal(vf_tdx_tcb_status_from_name("Fine", &s), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pck_info),
	    cmocka_unit_test(test_pck_info_spr_values),
	    cmocka_unit_test(test_pck_info_refusals),
	    cmocka_unit_test(test_pck_info_malformed),
	    cmocka_unit_test(test_signatures_each_file),
	    cmocka_unit_test(test_signatures_flipped),
	    cmocka_unit_test(test_signatures_untrusted),
	    cmocka_unit_test(test_signer_fallback),
	    cmocka_unit_test(test_signatures_exact_bytes),
	    cmocka_unit_test(test_tcb_spr_not_supported),
	    cmocka_unit_test(test_tcb_v5_up_to_date),
	    cmocka_unit_test(test_tcb_cos113_up_to_date),
	    cmocka_unit_test(test_tcb_debug),
	    cmocka_unit_test(test_tcb_fmspc_mismatch),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_qe_identity_mismatch),
	    cmocka_unit_test(test_qe_isvsvn),
	    cmocka_unit_test(test_module_mismatch),
	    cmocka_unit_test(test_resigned_combinations),
	    cmocka_unit_test(test_resigned_level_order),
	    cmocka_unit_test(test_resigned_refusals),
	    cmocka_unit_test(test_collateral_dir),
	    cmocka_unit_test(test_policy_keys),
	    cmocka_unit_test(test_policy_check),
	    cmocka_unit_test(test_status_names),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
