/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP report/cert-table codecs and the verifier, against the real
 * vectors in tests/data/snp (see its README.md for what each must give).
 */
#include "config.h"

#include "test_snp_util.h"

#include <errno.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestkey/snp.h"
#include "attestkey/verify.h"

struct vec {
	uint8_t *report;
	size_t report_len;
	uint8_t *vcek;
	size_t vcek_len;
};

static void vec_load(struct vec *v, const char *dir)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "%s/report.bin", dir);
	v->report = snp_read(rel, &v->report_len);
	snprintf(rel, sizeof(rel), "%s/vcek.der", dir);
	v->vcek = snp_read(rel, &v->vcek_len);
	assert_int_equal(v->report_len, AK_SNP_REPORT_LEN);
}

static void vec_free(struct vec *v)
{
	free(v->report);
	free(v->vcek);
}

/* A trust store from files under tests/data/snp/amd-roots. */
static struct vf_snp_trust *trust_of(const char *roots, const char *ask)
{
	struct vf_snp_trust *t = NULL;
	char *p;

	assert_int_equal(vf_snp_trust_new(&t), 0);
	p = snp_data_path(roots);
	assert_int_equal(vf_snp_trust_add_roots(t, p), 0);
	free(p);
	if (ask) {
		p = snp_data_path(ask);
		assert_int_equal(vf_snp_trust_add_intermediates(t, p), 0);
		free(p);
	}
	return t;
}

static enum ak_reason verify_with(const struct vf_snp_trust *t, const uint8_t *rep, size_t len,
				  const uint8_t *vcek, size_t vlen, char *msg, size_t msglen)
{
	struct vf_snp_input in = {
	    .report = rep, .report_len = len, .vcek_der = vcek, .vcek_len = vlen};
	struct ak_snp_report r;

	return vf_snp_verify(t, &in, &r, msg, msglen);
}

/* ---- codecs -------------------------------------------------------------- */

static void test_parse_fields(void **state)
{
	struct vec v;
	struct ak_snp_report r;
	uint8_t m[48], rd[64];
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	assert_int_equal(ak_snp_report_parse(v.report, v.report_len, &r), 0);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.policy, 0x30000);
	assert_int_equal(r.vmpl, 0);
	assert_int_equal(ak_snp_signing_key(&r), AK_SNP_SIGNING_KEY_VCEK);
	assert_int_equal(ak_hex_decode("7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b5"
				       "79ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
				       m, sizeof(m)),
			 0);
	assert_memory_equal(r.measurement, m, sizeof(m));
	assert_int_equal(ak_hex_decode("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7"
				       "c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd"
				       "82bd6a93ebfd",
				       rd, sizeof(rd)),
			 0);
	assert_memory_equal(r.report_data, rd, sizeof(rd));
	/* README: reported_tcb bytes 03 00 00 00 00 00 08 73 */
	assert_int_equal(r.reported_tcb, 0x7308000000000003ULL);
	assert_int_equal(r.chip_id[0], 0xd4);
	assert_int_equal(r.chip_id[1], 0x95);
	assert_int_equal(ak_snp_report_tcb_layout(&r), AK_SNP_TCB_MILAN_GENOA);
	vec_free(&v);

	vec_load(&v, "genoa-v3-trustee");
	assert_int_equal(ak_snp_report_parse(v.report, v.report_len, &r), 0);
	assert_int_equal(r.version, 3);
	assert_int_equal(r.platform_info, 0x25);
	assert_int_equal(r.cpuid_fam, 0x19);
	assert_int_equal(r.cpuid_mod, 0xA0);
	assert_int_equal(r.cpuid_step, 0x02);
	assert_int_equal(r.reported_tcb, 0x191700000000000aULL);
	assert_int_equal(r.current_major, 1);
	assert_int_equal(r.current_minor, 55);
	assert_int_equal(r.current_build, 40);
	assert_int_equal(ak_snp_report_tcb_layout(&r), AK_SNP_TCB_MILAN_GENOA);
	vec_free(&v);

	vec_load(&v, "milan-v2-go-sev-guest");
	assert_int_equal(ak_snp_report_parse(v.report, v.report_len, &r), 0);
	assert_int_equal(r.policy, 0xb0000);
	assert_true(r.policy & AK_SNP_POLICY_DEBUG);
	assert_int_equal(r.reported_tcb, 0x4405000000000002ULL);
	assert_int_equal(r.current_major, 1);
	assert_int_equal(r.current_minor, 49);
	assert_int_equal(r.current_build, 3);
	vec_free(&v);
}

/* parse then serialize gives the same 1184 bytes for every real report. */
static void test_roundtrip(void **state)
{
	static const char *const dirs[] = {"milan-v2-virtee", "milan-v2-go-sev-guest",
					   "genoa-v3-trustee"};
	uint8_t out[AK_SNP_REPORT_LEN];
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(dirs); i++) {
		struct vec v;
		struct ak_snp_report r;

		vec_load(&v, dirs[i]);
		assert_int_equal(ak_snp_report_parse(v.report, v.report_len, &r), 0);
		ak_snp_report_serialize(&r, out);
		assert_memory_equal(out, v.report, AK_SNP_REPORT_LEN);
		vec_free(&v);
	}
}

static void test_parse_malformed(void **state)
{
	struct vec v;
	struct ak_snp_report r;
	uint8_t *copy;
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	assert_int_equal(ak_snp_report_parse(v.report, AK_SNP_REPORT_LEN - 1, &r), -EBADMSG);
	assert_int_equal(ak_snp_report_parse(NULL, AK_SNP_REPORT_LEN, &r), -EBADMSG);
	copy = malloc(AK_SNP_REPORT_LEN + 1);
	assert_non_null(copy);
	memcpy(copy, v.report, AK_SNP_REPORT_LEN);
	copy[AK_SNP_REPORT_LEN] = 0;
	assert_int_equal(ak_snp_report_parse(copy, AK_SNP_REPORT_LEN + 1, &r), -EBADMSG);
	copy[AK_SNP_OFF_VERSION] = 1;
	assert_int_equal(ak_snp_report_parse(copy, AK_SNP_REPORT_LEN, &r), -EBADMSG);
	copy[AK_SNP_OFF_VERSION] = 2;
	copy[AK_SNP_OFF_SIG_ALGO] = 2;
	assert_int_equal(ak_snp_report_parse(copy, AK_SNP_REPORT_LEN, &r), -EBADMSG);
	free(copy);
	vec_free(&v);
}

static void test_tcb_codec(void **state)
{
	struct ak_snp_tcb t;
	(void)state;

	ak_snp_tcb_decode(0x7308000000000003ULL, AK_SNP_TCB_MILAN_GENOA, &t);
	assert_int_equal(t.bootloader, 3);
	assert_int_equal(t.tee, 0);
	assert_int_equal(t.snp, 8);
	assert_int_equal(t.microcode, 115);
	assert_int_equal(t.fmc, 0);
	assert_int_equal(ak_snp_tcb_encode(&t, AK_SNP_TCB_MILAN_GENOA), 0x7308000000000003ULL);

	/* Turin: byte0 fmc, byte1 bl, byte2 tee, byte3 snp, byte7 ucode */
	ak_snp_tcb_decode(0x0900000004030201ULL, AK_SNP_TCB_TURIN, &t);
	assert_int_equal(t.fmc, 1);
	assert_int_equal(t.bootloader, 2);
	assert_int_equal(t.tee, 3);
	assert_int_equal(t.snp, 4);
	assert_int_equal(t.microcode, 9);
	assert_int_equal(ak_snp_tcb_encode(&t, AK_SNP_TCB_TURIN), 0x0900000004030201ULL);
}

static void test_vcek_ext(void **state)
{
	static const char *const neg[] = {"negative-vcek-trustee/vcek-badsig-hwid-raw64.der",
					  "negative-vcek-trustee/vcek-badsig-hwid-octetstring.der"};
	struct ak_snp_vcek_ext e;
	uint8_t *der;
	size_t len;
	(void)state;

	der = snp_read("milan-v2-virtee/vcek.der", &len);
	assert_int_equal(ak_snp_vcek_ext_parse(der, len, &e), 0);
	assert_string_equal(e.product, "Milan-B0");
	assert_int_equal(e.struct_version, 0);
	assert_true(e.has_tcb);
	assert_int_equal(e.hwid_len, 64);
	assert_int_equal(e.hwid[0], 0xd4);
	assert_int_equal(ak_snp_vcek_ext_tcb(&e, AK_SNP_TCB_MILAN_GENOA), 0x7308000000000003ULL);
	free(der);

	/* Both hwID encodings give 00 01 .. 3f. */
	for (size_t i = 0; i < AK_ARRAY_SIZE(neg); i++) {
		der = snp_read(neg[i], &len);
		assert_int_equal(ak_snp_vcek_ext_parse(der, len, &e), 0);
		assert_int_equal(e.hwid_len, 64);
		for (int b = 0; b < 64; b++)
			assert_int_equal(e.hwid[b], b);
		free(der);
	}
	/* raw64 vector: ucodeSPL is a two-byte INTEGER 00 A9 = 169 */
	der = snp_read(neg[0], &len);
	assert_int_equal(ak_snp_vcek_ext_parse(der, len, &e), 0);
	assert_int_equal(e.microcode, 169);
	assert_int_equal(e.bootloader, 3);
	assert_int_equal(e.snp, 10);
	free(der);

	/* Turin: 8-byte hwID, fmcSPL, structVersion 1 */
	der = snp_read("turin-vcek-only-virtee/vcek.der", &len);
	assert_int_equal(ak_snp_vcek_ext_parse(der, len, &e), 0);
	assert_string_equal(e.product, "Turin");
	assert_int_equal(e.struct_version, 1);
	assert_int_equal(e.hwid_len, 8);
	assert_int_equal(e.hwid[0], 0x1e);
	assert_int_equal(e.hwid[7], 0x4d);
	assert_true(e.has_fmc);
	assert_true(e.has_tcb);
	assert_int_equal(e.microcode, 9);
	assert_int_equal(ak_snp_vcek_ext_tcb(&e, AK_SNP_TCB_TURIN), 0x0900000000000000ULL);
	free(der);

	/* not a certificate: refused, and OpenSSL's reasons are not left
	 * queued for the thread's next caller to take as its own */
	ERR_clear_error();
	assert_int_equal(ak_snp_vcek_ext_parse((const uint8_t *)"junk", 4, &e), -EBADMSG);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- verification, real vectors ------------------------------------------ */

static void test_verify_milan_virtee(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vec v;
	char msg[512];
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)), AK_R_OK);
	assert_string_equal(msg, "ok");
	vec_free(&v);
	vf_snp_trust_free(t);

	/* AMD's cert_chain.pem (ASK then ARK) as the roots file works too:
	 * the ARK becomes the anchor, the ASK only an intermediate. */
	t = trust_of("amd-roots/milan-vcek-cert_chain.pem", NULL);
	vec_load(&v, "milan-v2-virtee");
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)), AK_R_OK);
	vec_free(&v);
	vf_snp_trust_free(t);
}

static void test_verify_genoa(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-genoa.pem", "amd-roots/ask-genoa.pem");
	struct vf_snp_trust *milan = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vec v;
	char msg[512];
	(void)state;

	vec_load(&v, "genoa-v3-trustee");
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)), AK_R_OK);
	/* A Genoa VCEK does not chain to the Milan ARK. */
	assert_int_equal(
	    verify_with(milan, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)),
	    AK_R_UNTRUSTED_CHAIN);
	assert_true(snp_contains(msg, "does not chain"));
	vec_free(&v);
	vf_snp_trust_free(t);
	vf_snp_trust_free(milan);
}

/* Signature valid; the policy refuses debug unless allow_debug = true. */
static void test_verify_gsg_debug(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vf_snp_input in = {0};
	struct ak_snp_report r;
	struct vf_policy p;
	struct vec v;
	char msg[512], err[256];
	(void)state;

	vec_load(&v, "milan-v2-go-sev-guest");
	in.report = v.report;
	in.report_len = v.report_len;
	in.vcek_der = v.vcek;
	in.vcek_len = v.vcek_len;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);

	vf_policy_init(&p);
	assert_int_equal(vf_policy_set(&p, "measurements", "any", err, sizeof(err)), 0);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)),
			 AK_R_DEBUG_NOT_ALLOWED);
	assert_true(snp_contains(msg, "0xb0000"));
	assert_true(snp_contains(msg, "token web"));
	assert_int_equal(vf_policy_set(&p, "allow_debug", "true", err, sizeof(err)), 0);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	vf_policy_clear(&p);
	vec_free(&v);
	vf_snp_trust_free(t);
}

/* virtee's report with go-sev-guest's VCEK: the chain is fine (a genuine
 * Milan VCEK), so the first check to fail is the signature (step 4);
 * chip id and TCB (steps 5, 6) would differ too but are never reached. */
static void test_verify_wrong_vcek(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vec v, g;
	char msg[512];
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	vec_load(&g, "milan-v2-go-sev-guest");
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, g.vcek, g.vcek_len, msg, sizeof(msg)),
	    AK_R_BAD_SIGNATURE);
	vec_free(&v);
	vec_free(&g);
	vf_snp_trust_free(t);
}

static void test_verify_negative_vceks(void **state)
{
	static const char *const neg[] = {"negative-vcek-trustee/vcek-badsig-hwid-raw64.der",
					  "negative-vcek-trustee/vcek-badsig-hwid-octetstring.der"};
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vec v;
	char msg[512];
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	for (size_t i = 0; i < AK_ARRAY_SIZE(neg); i++) {
		size_t len;
		uint8_t *der = snp_read(neg[i], &len);

		assert_int_equal(verify_with(t, v.report, v.report_len, der, len, msg, sizeof(msg)),
				 AK_R_UNTRUSTED_CHAIN);
		assert_true(snp_contains(msg, "signature failure"));
		free(der);
	}
	vec_free(&v);
	vf_snp_trust_free(t);
}

/* Flipping one bit anywhere in the signed region, or in r or s, breaks the
 * signature; the signature check precedes the chip id and TCB checks. */
static void test_tampering(void **state)
{
	static const struct {
		const char *what;
		size_t off;
	} cases[] = {
	    {"measurement", AK_SNP_OFF_MEASUREMENT},
	    {"report_data", AK_SNP_OFF_REPORT_DATA},
	    {"policy", AK_SNP_OFF_POLICY + 2},
	    {"chip_id", AK_SNP_OFF_CHIP_ID + 5},
	    {"reported_tcb", AK_SNP_OFF_REPORTED_TCB + 6},
	    {"guest_svn", AK_SNP_OFF_GUEST_SVN},
	    {"vmpl", AK_SNP_OFF_VMPL},
	    {"host_data", AK_SNP_OFF_HOST_DATA},
	    {"signature r", AK_SNP_OFF_SIG_R},
	    {"signature s", AK_SNP_OFF_SIG_S + 17},
	};
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vec v;
	char msg[512];
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		v.report[cases[i].off] ^= 0x01;
		if (verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)) !=
		    AK_R_BAD_SIGNATURE)
			fail_msg("flipping a bit of %s was not refused as bad_signature: %s",
				 cases[i].what, msg);
		v.report[cases[i].off] ^= 0x01;
	}
	/* and untouched it still verifies */
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)), AK_R_OK);
	vec_free(&v);
	vf_snp_trust_free(t);
}

static void test_verify_malformed(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vec v;
	char msg[512];
	uint8_t *big;
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	assert_int_equal(verify_with(t, v.report, 1183, v.vcek, v.vcek_len, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "1183 bytes"));
	big = calloc(1, 2000);
	assert_non_null(big);
	memcpy(big, v.report, v.report_len);
	assert_int_equal(verify_with(t, big, 2000, v.vcek, v.vcek_len, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	free(big);
	v.report[AK_SNP_OFF_VERSION] = 1;
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "version 1"));
	v.report[AK_SNP_OFF_VERSION] = 2;
	v.report[AK_SNP_OFF_SIG_ALGO] = 0;
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	v.report[AK_SNP_OFF_SIG_ALGO] = 1;
	/* a VCEK that is not a certificate */
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, (const uint8_t *)"junk", 4, msg, sizeof(msg)),
	    AK_R_EVIDENCE_MALFORMED);
	/* no VCEK at all */
	assert_int_equal(verify_with(t, v.report, v.report_len, NULL, 0, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, AK_SNP_GUID_VCEK));
	/* signing_key = none (7) */
	v.report[AK_SNP_OFF_KEY_INFO] = 7 << 2;
	assert_int_equal(
	    verify_with(t, v.report, v.report_len, v.vcek, v.vcek_len, msg, sizeof(msg)),
	    AK_R_BAD_SIGNATURE);
	vec_free(&v);
	vf_snp_trust_free(t);
}

/* ---- certificate table ---------------------------------------------------- */

static uint8_t *pem_to_der(const char *rel, size_t *len);

static void test_certtable(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", NULL);
	struct ak_snp_cert_entry in[3], out[4];
	struct vf_snp_input vin = {0};
	struct ak_snp_report r;
	struct vec v;
	uint8_t *tab = NULL, *ask, *ark;
	size_t tlen = 0, n = 0, asklen, arklen;
	char msg[512];
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	ask = pem_to_der("amd-roots/ask-milan.pem", &asklen);
	ark = pem_to_der("amd-roots/ark-genoa.pem", &arklen);
	snprintf(in[0].guid, sizeof(in[0].guid), "%s", AK_SNP_GUID_VCEK);
	in[0].der = v.vcek;
	in[0].der_len = v.vcek_len;
	snprintf(in[1].guid, sizeof(in[1].guid), "%s", AK_SNP_GUID_ASK);
	in[1].der = ask;
	in[1].der_len = asklen;
	/* an ARK in the table is ignored: a wrong one changes nothing */
	snprintf(in[2].guid, sizeof(in[2].guid), "%s", AK_SNP_GUID_ARK);
	in[2].der = ark;
	in[2].der_len = arklen;
	assert_int_equal(ak_snp_certtable_build(in, 3, &tab, &tlen), 0);
	assert_int_equal(tlen, 4 * 24 + v.vcek_len + asklen + arklen);

	assert_int_equal(ak_snp_certtable_parse(tab, tlen, out, 4, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].guid, AK_SNP_GUID_VCEK);
	assert_string_equal(out[1].guid, AK_SNP_GUID_ASK);
	assert_string_equal(out[2].guid, AK_SNP_GUID_ARK);
	assert_int_equal(out[0].der_len, v.vcek_len);
	assert_memory_equal(out[0].der, v.vcek, v.vcek_len);
	assert_ptr_equal(ak_snp_certtable_find(out, n, AK_SNP_GUID_ASK), &out[1]);
	assert_null(ak_snp_certtable_find(out, n, AK_SNP_GUID_VLEK));
	/* GUID bytes are in RFC 4122 (text) order: 63 da 75 8d ... */
	assert_int_equal(tab[0], 0x63);
	assert_int_equal(tab[3], 0x8d);
	assert_int_equal(ak_snp_certtable_parse(tab, tlen, out, 2, &n), -E2BIG);

	/* VCEK and ASK from the table, only the ARK configured */
	vin.report = v.report;
	vin.report_len = v.report_len;
	vin.certtable = tab;
	vin.certtable_len = tlen;
	assert_int_equal(vf_snp_verify(t, &vin, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.version, 2);

	/* out-of-range offset, length, truncated table, no terminator */
	tab[16] = 0xff;
	tab[17] = 0xff;
	tab[18] = 0xff;
	tab[19] = 0x7f;
	assert_int_equal(ak_snp_certtable_parse(tab, tlen, out, 4, &n), -EBADMSG);
	assert_int_equal(vf_snp_verify(t, &vin, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "certificate table"));
	tab[16] = 4 * 24;
	tab[17] = 0;
	tab[18] = 0;
	tab[19] = 0;
	assert_int_equal(ak_snp_certtable_parse(tab, tlen, out, 4, &n), 0);
	tab[16] = 0; /* offset pointing into the header */
	assert_int_equal(ak_snp_certtable_parse(tab, tlen, out, 4, &n), -EBADMSG);
	tab[16] = 4 * 24;
	memset(tab + 20, 0xff, 4); /* length */
	assert_int_equal(ak_snp_certtable_parse(tab, tlen, out, 4, &n), -EBADMSG);
	assert_int_equal(vf_snp_verify(t, &vin, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_int_equal(ak_snp_certtable_parse(tab, 50, out, 4, &n), -EBADMSG);
	assert_int_equal(ak_snp_certtable_parse(tab, 10, out, 4, &n), -EBADMSG);
	assert_int_equal(ak_snp_certtable_parse(NULL, 0, out, 4, &n), -EBADMSG);

	/* a table without a VCEK */
	free(tab);
	assert_int_equal(ak_snp_certtable_build(&in[1], 1, &tab, &tlen), 0);
	vin.certtable = tab;
	vin.certtable_len = tlen;
	assert_int_equal(vf_snp_verify(t, &vin, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "no VCEK"));
	free(tab);
	free(ask);
	free(ark);
	vec_free(&v);
	vf_snp_trust_free(t);
}

static uint8_t *pem_to_der(const char *rel, size_t *len)
{
	char *path = snp_data_path(rel);
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	uint8_t *copy;
	int n;

	assert_non_null(x);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	copy = malloc((size_t)n);
	assert_non_null(copy);
	memcpy(copy, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	X509_free(x);
	fclose(f);
	free(path);
	return copy;
}

/* ---- binding, JSON, time, trust-store input -------------------------------- */

static void test_binding(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vf_snp_input in = {0};
	struct ak_snp_report r;
	struct vec v;
	uint8_t want[64];
	char msg[512];
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	in.report = v.report;
	in.report_len = v.report_len;
	in.vcek_der = v.vcek;
	in.vcek_len = v.vcek_len;
	memcpy(want, v.report + AK_SNP_OFF_REPORT_DATA, sizeof(want));
	in.expected_report_data = want;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	want[63] ^= 1;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BINDING_MISMATCH);
	assert_true(snp_contains(msg, "REPORT_DATA d447b55d"));
	vec_free(&v);
	vf_snp_trust_free(t);
}

static void test_verify_json(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct ak_snp_cert_entry ent;
	struct ak_snp_report r;
	struct vec v;
	uint8_t *tab;
	size_t tlen;
	char *rb, *cb, msg[512];
	json_t *ev;
	(void)state;

	vec_load(&v, "milan-v2-virtee");
	snprintf(ent.guid, sizeof(ent.guid), "%s", AK_SNP_GUID_VCEK);
	ent.der = v.vcek;
	ent.der_len = v.vcek_len;
	assert_int_equal(ak_snp_certtable_build(&ent, 1, &tab, &tlen), 0);
	rb = ak_b64url_encode(v.report, v.report_len);
	cb = ak_b64url_encode(tab, tlen);
	ev = json_pack("{s:s, s:s}", "report", rb, "certs", cb);
	assert_non_null(ev);
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.policy, 0x30000);
	assert_int_equal(
	    vf_snp_verify_json(t, ev, v.report + AK_SNP_OFF_REPORT_DATA, &r, msg, sizeof(msg)),
	    AK_R_OK);
	assert_int_equal(
	    vf_snp_verify_json(t, ev, v.report + AK_SNP_OFF_MEASUREMENT, &r, msg, sizeof(msg)),
	    AK_R_BINDING_MISMATCH);

	json_object_set_new(ev, "report", json_string("!!not base64url!!"));
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	json_object_del(ev, "report");
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	json_object_set_new(ev, "report", json_string(rb));
	json_object_set_new(ev, "certs", json_integer(5));
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	assert_int_equal(vf_snp_verify_json(t, NULL, NULL, &r, msg, sizeof(msg)),
			 AK_R_EVIDENCE_MALFORMED);
	json_decref(ev);
	free(rb);
	free(cb);
	free(tab);
	vec_free(&v);
	vf_snp_trust_free(t);
}

static void test_time(void **state)
{
	struct vf_snp_trust *t = trust_of("amd-roots/ark-milan.pem", "amd-roots/ask-milan.pem");
	struct vf_snp_input in = {0};
	struct ak_snp_report r;
	struct vec v;
	char msg[512];
	(void)state;

	vec_load(&v, "milan-v2-go-sev-guest");
	in.report = v.report;
	in.report_len = v.report_len;
	in.vcek_der = v.vcek;
	in.vcek_len = v.vcek_len;
	in.now = 1795000000; /* 2026-11-18: inside 2022-09-24..2029-09-24 */
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	in.now = 1900000000; /* 2030-03-17: the VCEK has expired */
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	assert_true(snp_contains(msg, "expired"));
	vec_free(&v);
	vf_snp_trust_free(t);
}

static void test_trust_inputs(void **state)
{
	struct vf_snp_trust *t = NULL;
	char *p;
	(void)state;

	assert_int_equal(vf_snp_trust_new(&t), 0);
	/* an ASK alone is no root */
	p = snp_data_path("amd-roots/ask-milan.pem");
	assert_int_equal(vf_snp_trust_add_roots(t, p), -EINVAL);
	free(p);
	p = snp_data_path("milan-v2-virtee/vcek.der"); /* DER, not PEM */
	assert_int_equal(vf_snp_trust_add_roots(t, p), -EINVAL);
	assert_int_equal(vf_snp_trust_add_intermediates(t, p), -EINVAL);
	free(p);
	assert_int_equal(vf_snp_trust_add_roots(t, "/nonexistent/ark.pem"), -ENOENT);
	vf_snp_trust_free(t);
	vf_snp_trust_free(NULL);
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_tcb_codec),
		cmocka_unit_test(test_vcek_ext),
		cmocka_unit_test(test_verify_milan_virtee),
		cmocka_unit_test(test_verify_genoa),
		cmocka_unit_test(test_verify_gsg_debug),
		cmocka_unit_test(test_verify_wrong_vcek),
		cmocka_unit_test(test_verify_negative_vceks),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_verify_malformed),
		cmocka_unit_test(test_certtable),
		cmocka_unit_test(test_binding),
		cmocka_unit_test(test_verify_json),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_trust_inputs),
	};
	/* clang-format on */

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
