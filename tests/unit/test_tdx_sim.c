/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated TDX guest: what `sim init --tee tdx` writes (PKI, SGX
 * extensions, collateral signed over its exact bytes, key modes) and the
 * quotes the collector builds (layout, the three signatures, the fields the
 * parameters set), checked with OpenSSL against the layout of tdx.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/common.h"
#include "attestkey/evidence.h"
#include "attestkey/tdx.h"
#include "attestkey/verify.h"

static char sim_dir[] = "/tmp/attestkey-test-tdxsim-XXXXXX";

static char *sim_path(const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", sim_dir, name) > 0);
	return p;
}

static int setup(void **state)
{
	struct ev_sim_tdx_opts o;

	(void)state;
	if (!mkdtemp(sim_dir))
		return -1;
	ev_sim_tdx_opts_init(&o);
	return ev_sim_tdx_init(sim_dir, &o) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sim_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static X509 *load_cert(const char *name)
{
	char *p = sim_path(name);
	FILE *f = fopen(p, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	free(p);
	assert_non_null(x);
	return x;
}

/* ECDSA P-256/SHA-256 r||s (big-endian) over data with key. */
static int verify_rs(EVP_PKEY *key, const uint8_t sig[64], const void *data, size_t len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *sv = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int n, ok = 0;

	assert_non_null(s);
	assert_int_equal(ECDSA_SIG_set0(s, r, sv), 1);
	n = i2d_ECDSA_SIG(s, &der);
	if (n > 0 && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1)
		ok = EVP_DigestVerify(md, der, (size_t)n, data, len) == 1;
	OPENSSL_free(der);
	ECDSA_SIG_free(s);
	EVP_MD_CTX_free(md);
	return ok;
}

static EVP_PKEY *raw_p256(const uint8_t xy[64])
{
	uint8_t pt[65];
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[3];

	pt[0] = 4;
	memcpy(pt + 1, xy, 64);
	params[0] = OSSL_PARAM_construct_utf8_string("group", (char *)"P-256", 0);
	params[1] = OSSL_PARAM_construct_octet_string("pub", pt, sizeof(pt));
	params[2] = OSSL_PARAM_construct_end();
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static void test_init_files(void **state)
{
	static const char *const keys[] = {"root_ca.key", "pck_platform_ca.key", "pck.key",
					   "tcb_signing.key", "attestation.key"};
	static const char *const coll[] = {"collateral/tcb_info.json",
					   "collateral/qe_identity.json",
					   "collateral/pck_crl.der",
					   "collateral/root_ca_crl.der",
					   "collateral/tcb_info_issuer_chain.pem",
					   "collateral/qe_identity_issuer_chain.pem",
					   "collateral/pck_crl_issuer_chain.pem"};
	struct stat st;

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(keys); i++) {
		char *p = sim_path(keys[i]);

		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		free(p);
	}
	for (size_t i = 0; i < AK_ARRAY_SIZE(coll); i++) {
		char *p = sim_path(coll[i]);

		assert_int_equal(stat(p, &st), 0);
		assert_true(st.st_size > 0);
		free(p);
	}
}

/* Root -> Platform CA -> PCK and root -> TCB signing verify; the PCK
 * carries the SGX extension with the FMSPC that chip.json names. */
static void test_init_pki(void **state)
{
	X509 *root = load_cert("root_ca.pem"), *ca = load_cert("pck_platform_ca.pem");
	X509 *pck = load_cert("pck.pem"), *tcb = load_cert("tcb_signing.pem");
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	ASN1_OBJECT *oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
	const ASN1_OCTET_STRING *ext;
	char *path = sim_path("chip.json");
	json_t *chip = json_load_file(path, 0, NULL);
	uint8_t fmspc[6], der_fmspc[8] = {0x04, 0x06};
	char name[256];
	int idx;

	(void)state;
	assert_non_null(chip);
	assert_int_equal(ak_hex_decode(json_string_value(json_object_get(chip, "fmspc")), fmspc, 6),
			 0);
	assert_int_equal(X509_STORE_add_cert(store, root), 1);
	sk_X509_push(untrusted, ca);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, pck, untrusted), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_cleanup(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, tcb, NULL), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);
	/* the FMSPC's OCTET STRING (04 06 ...) is inside the SGX extension */
	idx = X509_get_ext_by_OBJ(pck, oid, -1);
	assert_true(idx >= 0);
	ext = X509_EXTENSION_get_data(X509_get_ext(pck, idx));
	memcpy(der_fmspc + 2, fmspc, 6);
	assert_non_null(memmem(ASN1_STRING_get0_data(ext), (size_t)ASN1_STRING_length(ext),
			       der_fmspc, sizeof(der_fmspc)));
	/* the sim's root is not Intel's: its name says so */
	assert_non_null(X509_NAME_oneline(X509_get_subject_name(root), name, sizeof(name)));
	assert_non_null(strstr(name, "not Intel"));
	json_decref(chip);
	free(path);
	ASN1_OBJECT_free(oid);
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(root);
	X509_free(ca);
	X509_free(pck);
	X509_free(tcb);
}

/* The signature of TCB info / QE identity covers the exact bytes of the
 * member's value in the file, as a verifier finds them. */
static void check_signed_json(const char *file, const char *member)
{
	char *path = sim_path(file), *start, *end;
	size_t len = 0;
	char *text = (char *)ak_read_file(path, &len);
	X509 *tcb = load_cert("tcb_signing.pem");
	json_t *doc;
	uint8_t sig[64];
	char key[64];

	assert_non_null(text);
	doc = json_loadb(text, len, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(
	    ak_hex_decode(json_string_value(json_object_get(doc, "signature")), sig, 64), 0);
	snprintf(key, sizeof(key), "{\"%s\":", member);
	assert_true(strncmp(text, key, strlen(key)) == 0);
	start = text + strlen(key);
	end = strstr(start, ",\"signature\":");
	assert_non_null(end);
	assert_true(verify_rs(X509_get0_pubkey(tcb), sig, start, (size_t)(end - start)));
	start[5] ^= 1; /* and not over other bytes */
	assert_false(verify_rs(X509_get0_pubkey(tcb), sig, start, (size_t)(end - start)));
	json_decref(doc);
	X509_free(tcb);
	free(text);
	free(path);
}

static void test_collateral_signed(void **state)
{
	char *path = sim_path("collateral/tcb_info.json");
	json_t *doc = json_load_file(path, 0, NULL), *info;
	time_t now = time(NULL);
	struct tm tm = {0};
	const char *next;

	(void)state;
	check_signed_json("collateral/tcb_info.json", "tcbInfo");
	check_signed_json("collateral/qe_identity.json", "enclaveIdentity");
	info = json_object_get(doc, "tcbInfo");
	assert_string_equal(json_string_value(json_object_get(info, "id")), "TDX");
	assert_int_equal(json_integer_value(json_object_get(info, "version")), 3);
	assert_int_equal(json_array_size(json_object_get(info, "tcbLevels")), 2);
	next = json_string_value(json_object_get(info, "nextUpdate"));
	assert_non_null(strptime(next, "%Y-%m-%dT%H:%M:%SZ", &tm));
	assert_true(timegm(&tm) > now + 29 * 86400);
	json_decref(doc);
	free(path);
}

static void params(struct ev_sim_params *p)
{
	ev_sim_params_init(p);
	p->tee = EV_SIM_TEE_TDX;
	p->dir = strdup(sim_dir);
	assert_non_null(p->dir);
	memset(p->mrtd, 0xab, sizeof(p->mrtd));
	memset(p->rtmr[3], 0xcd, sizeof(p->rtmr[3]));
}

/* Layout, lengths and the three signatures of a v4 quote. */
static void test_quote(void **state)
{
	struct ev_sim_params p;
	uint8_t rd[AK_BINDING_LEN], *q = NULL, *s, *qe, *body, digest[32], buf[96];
	size_t len = 0, sig_len;
	const uint8_t *pem;
	X509 *pck;
	BIO *bio;
	EVP_PKEY *att;

	(void)state;
	params(&p);
	memset(rd, 0x5a, sizeof(rd));
	assert_int_equal(ev_sim_tdx_quote(&p, rd, &q, &len), 0);
	assert_int_equal(le16(q + AK_TDX_OFF_VERSION), 4);
	assert_int_equal(le16(q + AK_TDX_OFF_ATT_KEY_TYPE), AK_TDX_ATT_KEY_TYPE_ECDSA_P256);
	assert_int_equal(le32(q + AK_TDX_OFF_TEE_TYPE), AK_TDX_TEE_TYPE_TDX);
	body = q + AK_TDX_HEADER_LEN;
	assert_memory_equal(body + AK_TDX_BODY_REPORT_DATA, rd, sizeof(rd));
	assert_memory_equal(body + AK_TDX_BODY_MRTD, p.mrtd, 48);
	assert_memory_equal(body + AK_TDX_BODY_RTMR0 + 3 * 48, p.rtmr[3], 48);
	assert_int_equal(body[AK_TDX_BODY_TD_ATTRIBUTES] & 1, 0); /* not a debug TD */
	assert_int_equal(body[AK_TDX_BODY_TEE_TCB_SVN], 3);	  /* sim init's TCB */
	sig_len = le32(q + AK_TDX_HEADER_LEN + AK_TDX_BODY10_LEN);
	assert_int_equal(AK_TDX_HEADER_LEN + AK_TDX_BODY10_LEN + 4 + sig_len, len);
	s = q + AK_TDX_HEADER_LEN + AK_TDX_BODY10_LEN + 4;
	/* quote signature with the attestation key */
	att = raw_p256(s + 64);
	assert_true(verify_rs(att, s, q, AK_TDX_HEADER_LEN + AK_TDX_BODY10_LEN));
	assert_int_equal(le16(s + 128), AK_TDX_CERT_TYPE_QE_REPORT);
	assert_int_equal(134 + le32(s + 130), sig_len);
	qe = s + 134;
	/* QE report data = SHA-256(attestation key || auth data) || 0 */
	assert_int_equal(le16(qe + 384 + 64), 32);
	memcpy(buf, s + 64, 64);
	memcpy(buf + 64, qe + 384 + 66, 32);
	SHA256(buf, sizeof(buf), digest);
	assert_memory_equal(qe + AK_SGX_OFF_REPORT_DATA, digest, 32);
	assert_int_equal(le16(qe + AK_SGX_OFF_ISVPRODID), 2);
	/* the type 5 PEM chain starts with the PCK, whose key signed the QE report */
	assert_int_equal(le16(qe + 384 + 66 + 32), AK_TDX_CERT_TYPE_PCK_CHAIN);
	pem = qe + 384 + 66 + 32 + 6;
	assert_int_equal((size_t)(pem - q) + le32(qe + 384 + 66 + 32 + 2), len);
	bio = BIO_new_mem_buf(pem, (int)(len - (size_t)(pem - q)));
	pck = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	assert_non_null(pck);
	assert_true(verify_rs(X509_get0_pubkey(pck), qe + 384, qe, 384));
	qe[10] ^= 1;
	assert_false(verify_rs(X509_get0_pubkey(pck), qe + 384, qe, 384));
	X509_free(pck);
	BIO_free(bio);
	EVP_PKEY_free(att);
	free(q);
	ev_sim_params_clear(&p);
}

/* The parameters reach the body: debug bit, TEE_TCB_SVN override. */
static void test_quote_params(void **state)
{
	struct ev_sim_params p;
	uint8_t rd[AK_BINDING_LEN] = {0}, *q = NULL;
	size_t len = 0;
	json_t *ev = NULL;

	(void)state;
	params(&p);
	p.td_attributes |= AK_TDX_TD_ATTR_DEBUG;
	p.tee_tcb_svn_set = true;
	p.tee_tcb_svn[0] = 1;
	assert_int_equal(ev_sim_tdx_quote(&p, rd, &q, &len), 0);
	assert_int_equal(q[AK_TDX_HEADER_LEN + AK_TDX_BODY_TD_ATTRIBUTES] & 1, 1);
	assert_int_equal(q[AK_TDX_HEADER_LEN + AK_TDX_BODY_TEE_TCB_SVN], 1);
	free(q);
	/* the protocol evidence carries the same quote, base64url */
	assert_int_equal(ev_sim_tdx_collect(&p, rd, &ev), 0);
	q = ak_b64url_decode(json_string_value(json_object_get(ev, "quote")), &len);
	assert_non_null(q);
	assert_true(len > AK_TDX_HEADER_LEN + AK_TDX_BODY10_LEN);
	free(q);
	json_decref(ev);
	ev_sim_params_clear(&p);
}

/* The quote round-trips through the parser of the verifier. */
static void test_quote_parse(void **state)
{
	struct ev_sim_params p;
	struct ak_tdx_quote q;
	uint8_t rd[AK_BINDING_LEN], *buf = NULL;
	size_t len = 0;

	(void)state;
	params(&p);
	memset(rd, 0x77, sizeof(rd));
	memset(p.mrowner, 0x42, sizeof(p.mrowner));
	assert_int_equal(ev_sim_tdx_quote(&p, rd, &buf, &len), 0);
	assert_int_equal(ak_tdx_quote_parse(buf, len, &q), 0);
	assert_int_equal(q.version, 4);
	assert_int_equal(q.body_type, 2);
	assert_int_equal(q.quote_len, len);
	assert_memory_equal(q.body.mrtd, p.mrtd, 48);
	assert_memory_equal(q.body.rtmr[3], p.rtmr[3], 48);
	assert_memory_equal(q.body.mrowner, p.mrowner, 48);
	assert_memory_equal(q.body.report_data, rd, sizeof(rd));
	assert_int_equal(q.body.td_attributes, p.td_attributes);
	assert_int_equal(q.qe_report.isvprodid, 2);
	assert_int_equal(q.qe_auth_len, 32);
	assert_non_null(memmem(q.pck_chain_pem, q.pck_chain_len, "BEGIN CERTIFICATE", 17));
	/* one byte short: the parser refuses the quote */
	assert_int_not_equal(ak_tdx_quote_parse(buf, len - 1, &q), 0);
	free(buf);
	ev_sim_params_clear(&p);
}

static struct vf_tdx_trust *sim_trust(void)
{
	struct vf_tdx_trust *t = NULL;
	char *root = sim_path("root_ca.pem"), *coll = sim_path("collateral");

	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, root), 0);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, coll), 0);
	assert_int_equal(vf_tdx_trust_set_pcs(t, NULL, NULL, true), 0);
	free(root);
	free(coll);
	return t;
}

/* verify quote with p against the sim root and collateral */
static enum ak_reason verify_sim(const struct ev_sim_params *p, struct vf_tdx_trust *t,
				 const uint8_t *expected, struct vf_tdx_result *res)
{
	struct vf_tdx_input in = {0};
	uint8_t rd[AK_BINDING_LEN], *buf = NULL;
	size_t len = 0;
	char msg[512];
	enum ak_reason r;

	memset(rd, 0x77, sizeof(rd));
	assert_int_equal(ev_sim_tdx_quote(p, rd, &buf, &len), 0);
	in.quote = buf;
	in.quote_len = len;
	in.expected_report_data = expected ? expected : rd;
	memset(res, 0, sizeof(*res));
	r = vf_tdx_verify(t, &in, res, msg, sizeof(msg));
	free(buf);
	return r;
}

/* The verifier accepts the sim's quotes under the sim root only, with the
 * TCB status the sim's TCB info gives. */
static void test_quote_verifies(void **state)
{
	struct ev_sim_params p;
	struct vf_tdx_trust *t = sim_trust(), *intel = NULL;
	struct vf_tdx_result res;
	uint8_t other[AK_BINDING_LEN] = {1};
	char *coll = sim_path("collateral");
	const char *vectors = getenv("ATTESTKEY_VECTORS");
	char intel_root[1024];

	(void)state;
	params(&p);
	assert_int_equal(verify_sim(&p, t, NULL, &res), AK_R_OK);
	assert_true(res.tcb_evaluated);
	assert_int_equal(res.tcb_status, VF_TDX_TCB_UP_TO_DATE);
	assert_false(res.collateral_expired);
	assert_memory_equal(res.quote.body.mrtd, p.mrtd, 48);
	assert_int_equal(verify_sim(&p, t, other, &res), AK_R_BINDING_MISMATCH);
	/* a TDX module TCB below TCB info's UpToDate level: OutOfDate */
	p.tee_tcb_svn_set = true;
	p.tee_tcb_svn[0] = 1;
	assert_int_equal(verify_sim(&p, t, NULL, &res), AK_R_OK);
	assert_int_equal(res.tcb_status, VF_TDX_TCB_OUT_OF_DATE);
	assert_non_null(strstr(res.advisory_ids, "SIM-SA-00001"));
	/* Intel's root does not make a sim quote genuine */
	snprintf(intel_root, sizeof(intel_root),
		 "%s/intel-roots/Intel_SGX_Root_CA.pem", vectors ? vectors : "tests/data");
	assert_int_equal(access(intel_root, R_OK), 0);
	assert_int_equal(vf_tdx_trust_new(&intel), 0);
	assert_int_equal(vf_tdx_trust_add_roots(intel, intel_root), 0);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(intel, coll), 0);
	assert_int_equal(verify_sim(&p, intel, NULL, &res), AK_R_UNTRUSTED_CHAIN);
	vf_tdx_trust_free(intel);
	free(coll);
	vf_tdx_trust_free(t);
	ev_sim_params_clear(&p);
}

/* A PCK key that is not the PCK certificate's is refused, and a directory
 * that cannot be made fails init. */
static void test_broken_chip(void **state)
{
	struct ev_sim_tdx_opts o;
	struct ev_sim_params p;
	uint8_t rd[AK_BINDING_LEN] = {0}, *q = NULL;
	size_t len = 0;
	char dir[] = "/tmp/attestkey-test-tdxbroken-XXXXXX", cmd[256];

	(void)state;
	assert_non_null(mkdtemp(dir));
	ev_sim_tdx_opts_init(&o);
	assert_int_equal(ev_sim_tdx_init(dir, &o), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s/attestation.key' '%s/pck.key'", dir, dir);
	assert_int_equal(system(cmd), 0);
	ev_sim_params_init(&p);
	p.tee = EV_SIM_TEE_TDX;
	p.dir = strdup(dir);
	assert_true(ev_sim_tdx_quote(&p, rd, &q, &len) < 0);
	assert_null(q);
	ev_sim_params_clear(&p);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	assert_true(ev_sim_tdx_init("/proc/attestkey-no-such-dir/x", &o) < 0);
}

/* An SNP sim directory (or none) is refused with a clear error. */
static void test_quote_not_tdx(void **state)
{
	struct ev_sim_params p;
	uint8_t rd[AK_BINDING_LEN] = {0}, *q = NULL;
	size_t len = 0;
	char dir[] = "/tmp/attestkey-test-notdx-XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	ev_sim_params_init(&p);
	p.dir = strdup(dir);
	assert_true(ev_sim_tdx_quote(&p, rd, &q, &len) < 0);
	assert_null(q);
	free(p.dir);
	p.dir = NULL;
	assert_true(ev_sim_tdx_quote(&p, rd, &q, &len) < 0);
	rmdir(dir);
	ev_sim_params_clear(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_files),	      cmocka_unit_test(test_init_pki),
	    cmocka_unit_test(test_collateral_signed), cmocka_unit_test(test_quote),
	    cmocka_unit_test(test_quote_params),      cmocka_unit_test(test_quote_not_tdx),
	    cmocka_unit_test(test_quote_parse),	      cmocka_unit_test(test_quote_verifies),
	    cmocka_unit_test(test_broken_chip),
	};

	ak_log_init("test_tdx_sim");
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
