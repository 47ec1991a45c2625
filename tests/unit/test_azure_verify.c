/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Azure vTPM verifier (src/verify/azure.c) and its policy keys: the real
 * Azure SNP vector in tests/data/azure/snp-milan (PROVENANCE.md there) and
 * each of its parts mutated; then HCL reports made here around the
 * simulated SNP chip and the simulated TDX guest, with an RSA AK made by
 * OpenSSL signing a TPMS_ATTEST marshaled here.
 */
#include "config.h"

#include "test_snp_util.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "attestkey/azure.h"
#include "attestkey/evidence.h"
#include "attestkey/verify.h"

#define VCEK_TIME 1704067200 /* 2024-01-01, inside the real VCEK's validity */

struct vec {
	uint8_t *hcl, *quote, *sig, *pem;
	size_t hcl_len, quote_len, sig_len, pem_len;
	uint8_t pcrs[24][32];
};

static uint8_t *az_read(const char *name, size_t *len)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "../azure/snp-milan/%s", name);
	return snp_read(rel, len);
}

static void vec_load(struct vec *v)
{
	json_t *j, *x;
	size_t len, i;
	uint8_t *text = az_read("pcrs-sha256.json", &len);

	v->hcl = az_read("hcl-report.bin", &v->hcl_len);
	v->quote = az_read("tpm-quote.msg", &v->quote_len);
	v->sig = az_read("tpm-quote.sig", &v->sig_len);
	v->pem = az_read("vcek-ask-ark.pem", &v->pem_len);
	j = json_loadb((const char *)text, len, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 24);
	json_array_foreach(j, i, x)
	    assert_int_equal(ak_hex_decode(json_string_value(x), v->pcrs[i], 32), 0);
	json_decref(j);
	free(text);
}

static void vec_free(struct vec *v)
{
	free(v->hcl);
	free(v->quote);
	free(v->sig);
	free(v->pem);
}

static void vec_input(const struct vec *v, struct vf_az_input *in)
{
	memset(in, 0, sizeof(*in));
	in->hcl = v->hcl;
	in->hcl_len = v->hcl_len;
	in->quote = v->quote;
	in->quote_len = v->quote_len;
	in->sig = v->sig;
	in->sig_len = v->sig_len;
	in->pcrs = (const uint8_t(*)[32])v->pcrs;
	in->n_pcrs = 24;
	in->expected_nonce = (const uint8_t *)"challenge";
	in->expected_nonce_len = 9;
	in->vcek_pem = v->pem;
	in->vcek_pem_len = v->pem_len;
	in->now = VCEK_TIME;
}

static struct vf_snp_trust *milan_trust(void)
{
	struct vf_snp_trust *t = NULL;
	char *p = snp_data_path("amd-roots/ark-milan.pem");

	assert_int_equal(vf_snp_trust_new(&t), 0);
	assert_int_equal(vf_snp_trust_add_roots(t, p), 0);
	free(p);
	return t;
}

static void real_verifies(void **state)
{
	struct vf_snp_trust *t = milan_trust();
	struct vf_az_input in;
	struct vf_az_result r;
	struct vec v;
	char msg[512];

	(void)state;
	vec_load(&v);
	vec_input(&v, &in);
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	assert_string_equal(msg, "ok");
	assert_string_equal(r.tee, AK_AZ_TEE_SNP);
	assert_true(r.hcl_bound);
	assert_true(r.quote_verified);
	assert_int_equal(r.pcr_mask, 0xffffff);
	assert_memory_equal(r.pcrs[7], v.pcrs[7], 32);
	assert_int_equal(r.secure_boot, 1);
	assert_int_equal(r.tpm_enabled, 1);
	assert_int_equal(r.console_enabled, 1);
	assert_string_equal(r.vm_unique_id, "911B0EF8-9DBA-48B0-B275-4E4DF2D39252");
	assert_true(r.have_snp);
	assert_int_equal(r.snp.version, 2);
	assert_int_equal(r.snp.guest_svn, 5);
	assert_int_equal(r.snp.policy, 0x3001f);
	assert_true(r.snp_info.chain_verified);
	assert_int_equal(r.snp_info.source, VF_SNP_SOURCE_TABLE);
	assert_int_equal(r.snp_info.product, VF_SNP_PRODUCT_MILAN);
	assert_false(r.have_tdx);
	/* the nonce is optional */
	in.expected_nonce = NULL;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	/* outside the VCEK's validity the chain does not hold */
	in.now = 1900000000; /* 2030-03 */
	in.now += 86400 * 365;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	vec_free(&v);
	vf_snp_trust_free(t);
}

/* Each mutation of the real evidence and the reason it must give. */
static void real_mutations(void **state)
{
	struct vf_snp_trust *t = milan_trust();
	struct vf_az_input in;
	struct vf_az_result r;
	struct vec v;
	char msg[512];
	size_t ud;
	uint8_t *p;

	(void)state;
	vec_load(&v);
	vec_input(&v, &in);

	/* a byte of the runtime data (inside "user-data": still JSON) */
	p = memmem(v.hcl, v.hcl_len, "\"user-data\":\"0", 14);
	assert_non_null(p);
	ud = (size_t)(p - v.hcl) + 13;
	v.hcl[ud] = '1';
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "HCL runtime data"));
	assert_false(r.hcl_bound);
	v.hcl[ud] = '0';

	/* a byte of the SNP report (its measurement) */
	v.hcl[0x20 + 0x90] ^= 1;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	v.hcl[0x20 + 0x90] ^= 1;

	/* a byte of the quote (its clock) */
	v.quote[0x3b] ^= 1;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	assert_true(snp_contains(msg, "TPM quote signature"));
	assert_true(r.hcl_bound);
	assert_false(r.quote_verified);
	v.quote[0x3b] ^= 1;

	/* a byte of the signature, and a short signature */
	v.sig[100] ^= 1;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	v.sig[100] ^= 1;
	in.sig_len--;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	in.sig_len++;

	/* a PCR value */
	v.pcrs[11][0] ^= 1;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "pcrDigest"));
	v.pcrs[11][0] ^= 1;
	/* fewer PCR values than the quote selects */
	in.n_pcrs = 23;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "PCR 23"));
	in.n_pcrs = 24;

	/* the wrong nonce */
	in.expected_nonce = (const uint8_t *)"challengf";
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "extraData 6368616c6c656e6765"));
	in.expected_nonce_len = 8;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	in.expected_nonce = (const uint8_t *)"challenge";
	in.expected_nonce_len = 9;

	/* a malformed HCL report and quote */
	in.hcl_len = 0x4C0;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "HCL report"));
	in.hcl_len = v.hcl_len;
	in.quote_len = 40;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "TPM quote is truncated"));
	in.quote_len = v.quote_len;

	/* no VCEK and no KDS to fetch it from */
	in.vcek_pem = NULL;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "no VCEK certificate"));
	/* a chain that is no PEM */
	in.vcek_pem = (const uint8_t *)"not a certificate";
	in.vcek_pem_len = 17;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "no PEM certificate"));
	in.vcek_pem = v.pem;
	in.vcek_pem_len = v.pem_len;

	/* still the original: accepted */
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	vec_free(&v);
	vf_snp_trust_free(t);
}

/* An SNP HCL report offered as TDX, and a TDX one as SNP. */
static void real_tee_mismatch(void **state)
{
	struct vf_snp_trust *t = milan_trust();
	struct vf_tdx_trust *tt = NULL;
	struct vf_az_input in;
	struct vf_az_result r;
	struct vec v;
	char msg[512];

	(void)state;
	vec_load(&v);
	vec_input(&v, &in);
	assert_int_equal(vf_tdx_trust_new(&tt), 0);
	assert_int_equal(vf_az_tdx_verify(tt, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "report_type 2"));
	assert_true(snp_contains(msg, AK_AZ_TEE_TDX));
	v.hcl[0x4C0 + 8] = AK_AZ_REPORT_TDX;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "report_type 4"));
	vf_tdx_trust_free(tt);
	vec_free(&v);
	vf_snp_trust_free(t);
}

static char *b64(const uint8_t *p, size_t n)
{
	char *s = ak_b64url_encode(p, n);

	assert_non_null(s);
	return s;
}

/* The evidence JSON of azure.h; pcrs with n values. */
static json_t *evidence_json(const uint8_t *hcl, size_t hcl_len, const uint8_t *quote,
			     size_t quote_len, const uint8_t *sig, size_t sig_len,
			     const uint8_t (*pcrs)[32], size_t n, const uint8_t *pem,
			     size_t pem_len)
{
	char *h = b64(hcl, hcl_len), *q = b64(quote, quote_len), *s = b64(sig, sig_len);
	json_t *ev =
	    json_pack("{s:s,s:s,s:s,s:[]}", "hcl_report", h, "tpm_quote", q, "tpm_sig", s, "pcrs");
	json_t *list = json_object_get(ev, "pcrs");
	char hex[65];

	assert_non_null(ev);
	for (size_t i = 0; i < n; i++) {
		ak_hex_encode(pcrs[i], 32, hex);
		assert_int_equal(json_array_append_new(list, json_string(hex)), 0);
	}
	if (pem) {
		char *c = b64(pem, pem_len);

		assert_int_equal(json_object_set_new(ev, "vcek", json_string(c)), 0);
		free(c);
	}
	free(h);
	free(q);
	free(s);
	return ev;
}

/* vf_az_verify_json on the real vector: all holds but the nonce, which is
 * "challenge" and not SHA-256 of a binding. */
static void real_json(void **state)
{
	struct vf_snp_trust *t = milan_trust();
	struct vf_az_result r;
	struct vec v;
	uint8_t binding[AK_BINDING_LEN];
	json_t *ev;
	char msg[512];

	(void)state;
	vec_load(&v);
	memset(binding, 0x11, sizeof(binding));
	ev = evidence_json(v.hcl, v.hcl_len, v.quote, v.quote_len, v.sig, v.sig_len,
			   (const uint8_t(*)[32])v.pcrs, 24, v.pem, v.pem_len);
	/* vf_az_verify_json takes the current time: the real VCEK is valid
	 * from 2023-05 to 2030-05-02, which is what the refusal below needs;
	 * after that the chain check refuses first (the rest holds anyway). */
	if (time(NULL) < 1903910400 /* 2030-05-01 */) {
		assert_int_equal(
		    vf_az_verify_json(t, NULL, AK_AZ_TEE_SNP, ev, binding, &r, msg, sizeof(msg)),
		    AK_R_BINDING_MISMATCH);
		assert_true(snp_contains(msg, "extraData 6368616c6c656e6765"));
		assert_true(r.hcl_bound);
	} else {
		printf("# real_json: the real VCEK has expired; its binding check is skipped\n");
	}
	/* the tee must be the HCL's */
	assert_int_equal(
	    vf_az_verify_json(t, NULL, AK_AZ_TEE_TDX, ev, binding, &r, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "td_quote"));
	assert_int_equal(vf_az_verify_json(t, NULL, "snp", ev, binding, &r, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "neither"));
	/* malformed members */
	assert_int_equal(json_object_set_new(ev, "pcrs", json_pack("[s]", "zz")), 0);
	assert_int_equal(
	    vf_az_verify_json(t, NULL, AK_AZ_TEE_SNP, ev, binding, &r, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "\"pcrs\"[0]"));
	assert_int_equal(json_object_set_new(ev, "tpm_sig", json_string("@@")), 0);
	assert_int_equal(
	    vf_az_verify_json(t, NULL, AK_AZ_TEE_SNP, ev, binding, &r, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "\"tpm_sig\" is not base64url"));
	assert_int_equal(json_object_del(ev, "hcl_report"), 0);
	assert_int_equal(
	    vf_az_verify_json(t, NULL, AK_AZ_TEE_SNP, ev, binding, &r, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "\"hcl_report\" is missing"));
	json_decref(ev);
	vec_free(&v);
	vf_snp_trust_free(t);
}

/* ---- policy ---- */
static void policy_keys(void **state)
{
	struct vf_snp_trust *t = milan_trust();
	struct vf_az_input in;
	struct vf_az_result r;
	struct vf_policy p;
	struct vec v;
	char msg[512], hex[65];

	(void)state;
	vec_load(&v);
	vec_input(&v, &in);
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	vf_policy_init(&p);
	assert_int_equal(p.az_secure_boot, -1);
	assert_int_equal(vf_policy_check_az(&p, &r, "t", msg, sizeof(msg)), AK_R_OK);
	/* PCR 4, 7 and 11 as they are */
	for (int i = 4; i <= 11; i += (i == 4 ? 3 : 4)) {
		char key[8];

		snprintf(key, sizeof(key), "pcr%d", i);
		ak_hex_encode(v.pcrs[i], 32, hex);
		assert_int_equal(vf_policy_set(&p, key, hex, msg, sizeof(msg)), 0);
	}
	assert_int_equal(vf_policy_set(&p, "az_secure_boot", "true", msg, sizeof(msg)), 0);
	assert_int_equal(vf_policy_set(&p, "az_tpm_enabled", "yes", msg, sizeof(msg)), 0);
	assert_int_equal(vf_policy_check_az(&p, &r, "t", msg, sizeof(msg)), AK_R_OK);
	/* a PCR that differs */
	p.pcr[7][31] ^= 1;
	assert_int_equal(vf_policy_check_az(&p, &r, "t", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "PCR 7 is"));
	ak_hex_encode(v.pcrs[7], 32, hex);
	assert_true(snp_contains(msg, hex));
	p.pcr[7][31] ^= 1;
	/* a PCR the quote does not cover */
	r.pcr_mask &= ~(1u << 11);
	assert_int_equal(vf_policy_check_az(&p, &r, "t", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "PCR 11 is not covered"));
	r.pcr_mask |= 1u << 11;
	/* the console is enabled on this VM */
	assert_int_equal(vf_policy_set(&p, "az_console_enabled", "false", msg, sizeof(msg)), 0);
	assert_int_equal(vf_policy_check_az(&p, &r, "t", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "console-enabled is true, expected false"));
	/* absent from vm-configuration */
	p.az_console_enabled = -1;
	r.secure_boot = -1;
	assert_int_equal(vf_policy_check_az(&p, &r, "t", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "secure-boot is absent"));
	/* bad values, and keys that are not policy keys */
	assert_int_equal(vf_policy_set(&p, "pcr7", "abcd", msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "pcr7"));
	assert_int_equal(vf_policy_set(&p, "az_secure_boot", "maybe", msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "az_secure_boot"));
	assert_int_equal(vf_policy_set(&p, "pcr24", hex, msg, sizeof(msg)), -ENOENT);
	assert_int_equal(vf_policy_set(&p, "pcr07", hex, msg, sizeof(msg)), -ENOENT);
	assert_int_equal(vf_policy_set(&p, "pcr", hex, msg, sizeof(msg)), -ENOENT);
	assert_int_equal(vf_policy_set(&p, "pcr1x", hex, msg, sizeof(msg)), -ENOENT);
	assert_int_equal(vf_policy_set(&p, "pcr0", hex, msg, sizeof(msg)), 0);
	assert_true(p.pcr_set[0]);
	vf_policy_clear(&p);
	vec_free(&v);
	vf_snp_trust_free(t);
}

/* ---- HCL reports made here around the simulated TEEs ---- */
static char sim_dir[256];

static char *sim_path(const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", sim_dir, name) > 0);
	return p;
}

static int sim_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct ev_sim_tdx_opts o;
	char *snp, *tdx;
	int rc;

	(void)state;
	snprintf(sim_dir, sizeof(sim_dir), "%s/attestkey-test-azure-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(sim_dir))
		return -1;
	if (asprintf(&snp, "%s/snp", sim_dir) < 0)
		return -1;
	if (asprintf(&tdx, "%s/tdx", sim_dir) < 0) {
		free(snp);
		return -1;
	}
	ev_sim_tdx_opts_init(&o);
	rc = ev_sim_init(snp, "Milan-B0", 0x7308000000000003ULL) == 0 &&
		     ev_sim_tdx_init(tdx, &o) == 0
		 ? 0
		 : -1;
	free(snp);
	free(tdx);
	return rc;
}

static int sim_teardown(void **state)
{
	char *argv[] = {"rm", "-rf", sim_dir, NULL};
	pid_t pid;
	int st;

	(void)state;
	ev_sim_forget();
	pid = fork();
	if (pid == 0) {
		execvp("rm", argv);
		_exit(127);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid ? 0 : -1;
}

/* The runtime data JSON holding ak as HCLAkPub; malloc'd text. */
static char *runtime_json(EVP_PKEY *ak)
{
	BIGNUM *n = NULL, *e = NULL;
	uint8_t nb[512], eb[8];
	int nl, el;
	char *sn, *se, *text;
	json_t *j;

	assert_true(EVP_PKEY_get_bn_param(ak, OSSL_PKEY_PARAM_RSA_N, &n));
	assert_true(EVP_PKEY_get_bn_param(ak, OSSL_PKEY_PARAM_RSA_E, &e));
	nl = BN_bn2bin(n, nb);
	el = BN_bn2bin(e, eb);
	sn = b64(nb, (size_t)nl);
	se = b64(eb, (size_t)el);
	j = json_pack("{s:[{s:s,s:[s],s:s,s:s,s:s}],s:{s:b,s:b,s:b,s:s},s:s}", "keys", "kid",
		      "HCLAkPub", "key_ops", "sign", "kty", "RSA", "e", se, "n", sn,
		      "vm-configuration", "console-enabled", 0, "secure-boot", 1, "tpm-enabled", 1,
		      "vmUniqueId", "SIM-VM", "user-data", "00");
	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	json_decref(j);
	free(sn);
	free(se);
	BN_free(n);
	BN_free(e);
	return text;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* An HCL report: header, hw (hw_len bytes), request header, runtime. */
static uint8_t *make_hcl(const uint8_t *hw, size_t hw_len, uint32_t type, const char *runtime,
			 size_t *len)
{
	size_t rl = strlen(runtime);
	uint8_t *b = calloc(1, AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN + rl);

	assert_non_null(b);
	memcpy(b, "HCLA", 4);
	put_le32(b + 4, 1);
	put_le32(b + 8, AK_AZ_HCL_HW_LEN);
	put_le32(b + 12, 2);
	memcpy(b + AK_AZ_HCL_HW_OFF, hw, hw_len);
	put_le32(b + AK_AZ_HCL_REQ_OFF, (uint32_t)(AK_AZ_HCL_REQ_HDR_LEN + rl));
	put_le32(b + AK_AZ_HCL_REQ_OFF + 4, 1);
	put_le32(b + AK_AZ_HCL_REQ_OFF + 8, type);
	put_le32(b + AK_AZ_HCL_REQ_OFF + 12, 1);
	put_le32(b + AK_AZ_HCL_REQ_OFF + 16, (uint32_t)rl);
	memcpy(b + AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN, runtime, rl);
	*len = AK_AZ_HCL_REQ_OFF + AK_AZ_HCL_REQ_HDR_LEN + rl;
	return b;
}

static size_t put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return n;
}

/* TPMS_ATTEST of a quote over the PCRs of mask (SHA-256 bank). */
static size_t make_quote(uint8_t *q, const uint8_t *extra, size_t extra_len, uint32_t mask,
			 const uint8_t (*pcrs)[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int dl = 0;
	size_t o = 0;

	o += put_be(q + o, AK_TPM_GENERATED_VALUE, 4);
	o += put_be(q + o, AK_TPM_ST_ATTEST_QUOTE, 2);
	o += put_be(q + o, 4, 2); /* qualifiedSigner: a handle */
	o += put_be(q + o, AK_AZ_AK_HANDLE, 4);
	o += put_be(q + o, extra_len, 2);
	memcpy(q + o, extra, extra_len);
	o += extra_len;
	o += put_be(q + o, 123456, 8); /* clock */
	o += put_be(q + o, 1, 4);
	o += put_be(q + o, 0, 4);
	o += put_be(q + o, 1, 1);
	o += put_be(q + o, 0x2020031200120003ULL, 8);
	o += put_be(q + o, 1, 4);
	o += put_be(q + o, AK_TPM_ALG_SHA256, 2);
	o += put_be(q + o, 3, 1);
	for (int i = 0; i < 3; i++)
		q[o++] = (uint8_t)(mask >> (8 * i));
	o += put_be(q + o, 32, 2);
	assert_non_null(md);
	assert_true(EVP_DigestInit_ex(md, EVP_sha256(), NULL));
	for (int i = 0; i < 24; i++)
		if (mask & (1u << i))
			assert_true(EVP_DigestUpdate(md, pcrs[i], 32));
	assert_true(EVP_DigestFinal_ex(md, q + o, &dl));
	EVP_MD_CTX_free(md);
	return o + 32;
}

static size_t rsa_sign(EVP_PKEY *ak, const uint8_t *m, size_t mlen, uint8_t *sig)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t sl = 512;

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ak), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &sl, m, mlen), 1);
	EVP_MD_CTX_free(md);
	return sl;
}

/* A simulated Azure VM's evidence for binding: HCL, quote, signature. */
struct simvm {
	EVP_PKEY *ak;
	char *runtime;
	uint8_t rd[64], nonce[32];
	uint8_t pcrs[24][32];
	uint8_t *hcl, quote[256], sig[512];
	size_t hcl_len, quote_len, sig_len;
};

static void simvm_init(struct simvm *s, const uint8_t binding[AK_BINDING_LEN])
{
	unsigned int dl;

	memset(s, 0, sizeof(*s));
	s->ak = EVP_RSA_gen(2048);
	assert_non_null(s->ak);
	s->runtime = runtime_json(s->ak);
	assert_true(EVP_Digest(s->runtime, strlen(s->runtime), s->rd, &dl, EVP_sha256(), NULL));
	for (int i = 0; i < 24; i++)
		memset(s->pcrs[i], i, 32);
	assert_int_equal(ak_az_quote_nonce(binding, s->nonce), 0);
	/* PCRs 0..7 and 11 */
	s->quote_len = make_quote(s->quote, s->nonce, 32, 0x0008ff, (const uint8_t(*)[32])s->pcrs);
	s->sig_len = rsa_sign(s->ak, s->quote, s->quote_len, s->sig);
}

static void simvm_clear(struct simvm *s)
{
	EVP_PKEY_free(s->ak);
	free(s->runtime);
	free(s->hcl);
}

static uint8_t *file_cat(const char *a, const char *b, size_t *len)
{
	char *pa = sim_path(a), *pb = sim_path(b);
	size_t la = 0, lb = 0;
	uint8_t *da = ak_read_file(pa, &la), *db = ak_read_file(pb, &lb), *out;

	assert_non_null(da);
	assert_non_null(db);
	out = malloc(la + lb);
	assert_non_null(out);
	memcpy(out, da, la);
	memcpy(out + la, db, lb);
	*len = la + lb;
	free(da);
	free(db);
	free(pa);
	free(pb);
	return out;
}

static void sim_snp(void **state)
{
	struct vf_snp_trust *t = NULL;
	struct ev_sim_params p;
	struct simvm s;
	struct vf_az_input in = {0};
	struct vf_az_result r;
	uint8_t binding[AK_BINDING_LEN], *rep, *pem;
	size_t rlen = 0, pem_len = 0;
	char msg[512], *ark = sim_path("snp/ark.pem");
	json_t *ev = NULL;

	(void)state;
	memset(binding, 0x42, sizeof(binding));
	simvm_init(&s, binding);
	ev_sim_params_init(&p);
	p.dir = sim_path("snp");
	memset(p.measurement, 0xab, sizeof(p.measurement));
	assert_int_equal(ev_sim_collect(&p, s.rd, &ev), 0);
	rep = ak_b64url_decode(json_string_value(json_object_get(ev, "report")), &rlen);
	assert_non_null(rep);
	assert_int_equal(rlen, AK_SNP_REPORT_LEN);
	json_decref(ev);
	s.hcl = make_hcl(rep, rlen, AK_AZ_REPORT_SNP, s.runtime, &s.hcl_len);
	pem = file_cat("snp/vcek.pem", "snp/ask.pem", &pem_len);
	assert_int_equal(vf_snp_trust_new(&t), 0);
	assert_int_equal(vf_snp_trust_add_roots(t, ark), 0);

	in.hcl = s.hcl;
	in.hcl_len = s.hcl_len;
	in.quote = s.quote;
	in.quote_len = s.quote_len;
	in.sig = s.sig;
	in.sig_len = s.sig_len;
	in.pcrs = (const uint8_t(*)[32])s.pcrs;
	in.n_pcrs = 12;
	in.expected_nonce = s.nonce;
	in.expected_nonce_len = 32;
	in.vcek_pem = pem;
	in.vcek_pem_len = pem_len;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.pcr_mask, 0x8ff);
	assert_int_equal(r.console_enabled, 0);
	assert_string_equal(r.vm_unique_id, "SIM-VM");
	assert_memory_equal(r.snp.measurement, p.measurement, 48);
	/* the same through the evidence JSON and the binding */
	ev = evidence_json(s.hcl, s.hcl_len, s.quote, s.quote_len, s.sig, s.sig_len,
			   (const uint8_t(*)[32])s.pcrs, 24, pem, pem_len);
	assert_int_equal(
	    vf_az_verify_json(t, NULL, AK_AZ_TEE_SNP, ev, binding, &r, msg, sizeof(msg)), AK_R_OK);
	assert_true(r.quote_verified);
	/* another request's binding */
	binding[0] ^= 1;
	assert_int_equal(
	    vf_az_verify_json(t, NULL, AK_AZ_TEE_SNP, ev, binding, &r, msg, sizeof(msg)),
	    AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "extraData"));
	json_decref(ev);
	/* an AK the HCL report does not name: a different key signs */
	{
		EVP_PKEY *other = EVP_RSA_gen(2048);

		assert_non_null(other);
		s.sig_len = rsa_sign(other, s.quote, s.quote_len, s.sig);
		EVP_PKEY_free(other);
		in.sig_len = s.sig_len;
		assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)),
				 AK_R_BAD_SIGNATURE);
	}
	/* the runtime data changed after the chip signed (another AK swapped in) */
	s.hcl[s.hcl_len - 3] ^= 1;
	assert_int_equal(vf_az_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "HCL runtime data"));
	free(pem);
	free(rep);
	free(ark);
	vf_snp_trust_free(t);
	ev_sim_params_clear(&p);
	simvm_clear(&s);
}

static void sim_tdx(void **state)
{
	struct vf_tdx_trust *t = NULL;
	struct ev_sim_params p;
	struct simvm s;
	struct vf_az_input in = {0};
	struct vf_az_result r;
	struct ak_tdx_quote tq;
	uint8_t binding[AK_BINDING_LEN], tdreport[AK_AZ_HCL_HW_LEN], *td = NULL;
	size_t td_len = 0;
	char msg[512], *root = sim_path("tdx/root_ca.pem"), *coll = sim_path("tdx/collateral");

	(void)state;
	memset(binding, 0x24, sizeof(binding));
	simvm_init(&s, binding);
	ev_sim_params_init(&p);
	p.tee = EV_SIM_TEE_TDX;
	p.dir = sim_path("tdx");
	memset(p.mrtd, 0xab, sizeof(p.mrtd));
	assert_int_equal(ev_sim_tdx_quote(&p, s.rd, &td, &td_len), 0);
	assert_int_equal(ak_tdx_quote_parse(td, td_len, &tq), 0);
	/* the TDREPORT the paravisor would hold: REPORTDATA and MRTD */
	memset(tdreport, 0, sizeof(tdreport));
	memcpy(tdreport + 128, s.rd, 64);
	memcpy(tdreport + 528, tq.body.mrtd, 48);
	s.hcl = make_hcl(tdreport, sizeof(tdreport), AK_AZ_REPORT_TDX, s.runtime, &s.hcl_len);
	assert_int_equal(vf_tdx_trust_new(&t), 0);
	assert_int_equal(vf_tdx_trust_add_roots(t, root), 0);
	assert_int_equal(vf_tdx_trust_set_collateral_dir(t, coll), 0);
	assert_int_equal(vf_tdx_trust_set_pcs(t, NULL, NULL, true), 0);

	in.hcl = s.hcl;
	in.hcl_len = s.hcl_len;
	in.quote = s.quote;
	in.quote_len = s.quote_len;
	in.sig = s.sig;
	in.sig_len = s.sig_len;
	in.pcrs = (const uint8_t(*)[32])s.pcrs;
	in.n_pcrs = 24;
	in.expected_nonce = s.nonce;
	in.expected_nonce_len = 32;
	in.td_quote = td;
	in.td_quote_len = td_len;
	assert_int_equal(vf_az_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	assert_string_equal(r.tee, AK_AZ_TEE_TDX);
	assert_true(r.have_tdx);
	assert_true(r.tdx.tcb_evaluated);
	assert_memory_equal(r.tdx.quote.body.mrtd, p.mrtd, 48);
	assert_int_equal(r.pcr_mask, 0x8ff);
	/* the TDREPORT's MRTD is not the quote's */
	s.hcl[AK_AZ_HCL_HW_OFF + 528] ^= 1;
	assert_int_equal(vf_az_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "MRTD"));
	s.hcl[AK_AZ_HCL_HW_OFF + 528] ^= 1;
	/* nor its REPORTDATA */
	s.hcl[AK_AZ_HCL_HW_OFF + 128] ^= 1;
	assert_int_equal(vf_az_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "REPORTDATA"));
	s.hcl[AK_AZ_HCL_HW_OFF + 128] ^= 1;
	/* runtime data changed: the quote's REPORTDATA does not bind it */
	s.hcl[s.hcl_len - 3] ^= 1;
	assert_int_equal(vf_az_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "HCL runtime data"));
	s.hcl[s.hcl_len - 3] ^= 1;
	/* no TD quote */
	in.td_quote = NULL;
	assert_int_equal(vf_az_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "no TD quote"));
	in.td_quote = td;
	/* a PCR value */
	s.pcrs[3][0] ^= 1;
	assert_int_equal(vf_az_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "pcrDigest"));
	s.pcrs[3][0] ^= 1;
	assert_int_equal(vf_az_tdx_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	free(td);
	free(root);
	free(coll);
	vf_tdx_trust_free(t);
	ev_sim_params_clear(&p);
	simvm_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(real_verifies),	 cmocka_unit_test(real_mutations),
	    cmocka_unit_test(real_tee_mismatch), cmocka_unit_test(real_json),
	    cmocka_unit_test(policy_keys),	 cmocka_unit_test(sim_snp),
	    cmocka_unit_test(sim_tdx),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, sim_setup, sim_teardown);
}
