/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated SEV-SNP chip: `sim init` output, the collector's reports,
 * and the very same verifier accepting them only under the sim root.
 */
#include "config.h"

#include "test_snp_util.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attestkey/evidence.h"
#include "attestkey/snp.h"
#include "attestkey/verify.h"

#define SIM_TCB 0x7308000000000003ULL

static char sim_dir[] = "/tmp/attestkey-test-sim-XXXXXX";

static char *sim_path(const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", sim_dir, name) > 0);
	return p;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(sim_dir))
		return -1;
	return ev_sim_init(sim_dir, "Milan-B0", SIM_TCB) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	static const char *const files[] = {"ark.key", "ask.key",  "vcek.key", "ark.pem",
					    "ask.pem", "vcek.pem", "vcek.der", "cert_chain.pem"};
	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(files); i++) {
		char *p = sim_path(files[i]);

		unlink(p);
		free(p);
	}
	rmdir(sim_dir);
	return 0;
}

static struct vf_snp_trust *sim_trust(void)
{
	struct vf_snp_trust *t = NULL;
	char *p = sim_path("ark.pem");

	assert_int_equal(vf_snp_trust_new(&t), 0);
	assert_int_equal(vf_snp_trust_add_roots(t, p), 0);
	free(p);
	return t;
}

static void params(struct ev_sim_params *p)
{
	ev_sim_params_init(p);
	p->dir = strdup(sim_dir);
	assert_non_null(p->dir);
	memset(p->measurement, 0xab, sizeof(p->measurement));
}

static X509 *load_pem(const char *name)
{
	char *p = sim_path(name);
	FILE *f = fopen(p, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	assert_non_null(x);
	fclose(f);
	free(p);
	return x;
}

/* The extension OIDs of a certificate, in order, joined by spaces. */
static void ext_oids(X509 *x, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < X509_get_ext_count(x); i++) {
		char oid[64];

		OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(X509_get_ext(x, i)), 1);
		off += (size_t)snprintf(buf + off, len - off, "%s ", oid);
	}
}

static void test_sim_files(void **state)
{
	static const char *const keys[] = {"ark.key", "ask.key", "vcek.key"};
	X509 *ark = load_pem("ark.pem"), *ask = load_pem("ask.pem"), *vcek = load_pem("vcek.pem");
	struct ak_snp_vcek_ext e;
	unsigned char *der = NULL;
	char grp[32], a[1024], b[1024];
	uint8_t *amd;
	size_t amd_len;
	const unsigned char *p;
	X509 *amd_vcek;
	struct stat st;
	int n;
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(keys); i++) {
		char *k = sim_path(keys[i]);

		assert_int_equal(stat(k, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		free(k);
	}
	/* AMD's algorithms: RSA-4096 ARK/ASK, PSS signatures, EC P-384 VCEK */
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ark)), 4096);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(ark)), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ask)), 4096);
	assert_int_equal(X509_get_signature_nid(ark), NID_rsassaPss);
	assert_int_equal(X509_get_signature_nid(ask), NID_rsassaPss);
	assert_int_equal(X509_get_signature_nid(vcek), NID_rsassaPss);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(vcek)), EVP_PKEY_EC);
	assert_true(EVP_PKEY_get_utf8_string_param(X509_get0_pubkey(vcek), "group", grp,
						   sizeof(grp), NULL));
	assert_string_equal(grp, "secp384r1");
	assert_int_equal(X509_check_issued(ark, ask), X509_V_OK);
	assert_int_equal(X509_check_issued(ask, vcek), X509_V_OK);

	/* AMD's extensions, in AMD's order (compare with a real Milan VCEK) */
	n = i2d_X509(vcek, &der);
	assert_true(n > 0);
	assert_int_equal(ak_snp_vcek_ext_parse(der, (size_t)n, &e), 0);
	OPENSSL_free(der);
	assert_string_equal(e.product, "Milan-B0");
	assert_int_equal(e.struct_version, 0);
	assert_int_equal(e.hwid_len, 64);
	assert_true(e.has_tcb);
	assert_int_equal(ak_snp_vcek_ext_tcb(&e, AK_SNP_TCB_MILAN_GENOA), SIM_TCB);
	amd = snp_read("milan-v2-virtee/vcek.der", &amd_len);
	p = amd;
	amd_vcek = d2i_X509(NULL, &p, (long)amd_len);
	assert_non_null(amd_vcek);
	ext_oids(vcek, a, sizeof(a));
	ext_oids(amd_vcek, b, sizeof(b));
	assert_string_equal(a, b);
	X509_free(amd_vcek);
	free(amd);
	X509_free(ark);
	X509_free(ask);
	X509_free(vcek);
}

static void test_sim_verify_ok(void **state)
{
	struct vf_snp_trust *t = sim_trust();
	struct ev_sim_params p;
	struct ak_snp_report r;
	struct ak_snp_cert_entry ents[4];
	uint8_t rd[64], *rep, *tab;
	size_t rlen, tlen, n;
	json_t *ev = NULL;
	char msg[512];
	(void)state;

	params(&p);
	p.policy = 0x30000;
	p.guest_svn = 7;
	memset(p.host_data, 0x11, sizeof(p.host_data));
	for (int i = 0; i < 64; i++)
		rd[i] = (uint8_t)(0x80 + i);
	assert_int_equal(ev_sim_collect(&p, rd, &ev), 0);

	/* a genuine 1184-byte version 2 report and a VCEK/ASK/ARK table */
	rep = ak_b64url_decode(json_string_value(json_object_get(ev, "report")), &rlen);
	tab = ak_b64url_decode(json_string_value(json_object_get(ev, "certs")), &tlen);
	assert_non_null(rep);
	assert_non_null(tab);
	assert_int_equal(rlen, AK_SNP_REPORT_LEN);
	assert_int_equal(ak_snp_certtable_parse(tab, tlen, ents, 4, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(ents[0].guid, AK_SNP_GUID_VCEK);
	assert_string_equal(ents[1].guid, AK_SNP_GUID_ASK);
	assert_string_equal(ents[2].guid, AK_SNP_GUID_ARK);
	/* r and s are 72-byte little-endian: bytes 48..71 are zero */
	for (int i = 48; i < 72; i++) {
		assert_int_equal(rep[AK_SNP_OFF_SIG_R + i], 0);
		assert_int_equal(rep[AK_SNP_OFF_SIG_S + i], 0);
	}

	assert_int_equal(vf_snp_verify_json(t, ev, rd, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.policy, 0x30000);
	assert_int_equal(r.guest_svn, 7);
	assert_int_equal(r.vmpl, 0);
	assert_int_equal(r.reported_tcb, SIM_TCB);
	assert_int_equal(r.measurement[0], 0xab);
	assert_int_equal(r.host_data[31], 0x11);
	assert_memory_equal(r.report_data, rd, sizeof(rd));
	assert_int_equal(ak_snp_signing_key(&r), AK_SNP_SIGNING_KEY_VCEK);

	/* binding mismatch */
	rd[0] ^= 1;
	assert_int_equal(vf_snp_verify_json(t, ev, rd, &r, msg, sizeof(msg)),
			 AK_R_BINDING_MISMATCH);
	free(rep);
	free(tab);
	json_decref(ev);
	ev_sim_params_clear(&p);
	vf_snp_trust_free(t);
}

static void test_sim_v3(void **state)
{
	struct vf_snp_trust *t = sim_trust();
	struct ev_sim_params p;
	struct ak_snp_report r;
	uint8_t rd[64] = {1};
	json_t *ev = NULL;
	char msg[512];
	(void)state;

	params(&p);
	p.version = 3;
	assert_int_equal(ev_sim_collect(&p, rd, &ev), 0);
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(r.version, 3);
	assert_int_equal(r.cpuid_fam, 0x19);
	assert_int_equal(ak_snp_report_tcb_layout(&r), AK_SNP_TCB_MILAN_GENOA);
	json_decref(ev);
	ev_sim_params_clear(&p);
	vf_snp_trust_free(t);
}

static void test_sim_tcb_mismatch(void **state)
{
	struct vf_snp_trust *t = sim_trust();
	struct ev_sim_params p;
	struct ak_snp_report r;
	uint8_t rd[64] = {0};
	json_t *ev = NULL;
	char msg[512];
	(void)state;

	params(&p);
	p.reported_tcb_set = true;
	p.reported_tcb = SIM_TCB - 1; /* bootloader 2 instead of 3 */
	assert_int_equal(ev_sim_collect(&p, rd, &ev), 0);
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)), AK_R_TCB_MISMATCH);
	assert_true(snp_contains(msg, "0x7308000000000002"));
	json_decref(ev);
	ev_sim_params_clear(&p);
	vf_snp_trust_free(t);
}

static void test_sim_amd_root(void **state)
{
	struct vf_snp_trust *t = NULL;
	struct ev_sim_params p;
	struct ak_snp_report r;
	uint8_t rd[64] = {0};
	json_t *ev = NULL;
	char msg[512], *root = snp_data_path("amd-roots/ark-milan.pem");
	(void)state;

	assert_int_equal(vf_snp_trust_new(&t), 0);
	assert_int_equal(vf_snp_trust_add_roots(t, root), 0);
	params(&p);
	assert_int_equal(ev_sim_collect(&p, rd, &ev), 0);
	/* a broker never trusts a sim root by default */
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)),
			 AK_R_UNTRUSTED_CHAIN);
	json_decref(ev);
	ev_sim_params_clear(&p);
	vf_snp_trust_free(t);
	free(root);
}

/* Re-sign a modified report with the sim VCEK key, as a chip would. */
static void resign(uint8_t rep[AK_SNP_REPORT_LEN])
{
	char *kp = sim_path("vcek.key");
	FILE *f = fopen(kp, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[128];
	const unsigned char *p = der;
	size_t dl = sizeof(der);
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;

	assert_non_null(k);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, der, &dl, rep, AK_SNP_SIGNED_LEN), 1);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)dl);
	assert_non_null(sig);
	ECDSA_SIG_get0(sig, &r, &s);
	assert_true(BN_bn2lebinpad(r, rep + AK_SNP_OFF_SIG_R, 72) == 72);
	assert_true(BN_bn2lebinpad(s, rep + AK_SNP_OFF_SIG_S, 72) == 72);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	fclose(f);
	free(kp);
}

/* Evidence of the sim chip for rd, as the verifier's input: *rep and *tab
 * are the decoded report and certificate table (the caller frees them). */
static json_t *sim_input(const struct ev_sim_params *p, const uint8_t rd[64],
			 struct vf_snp_input *in, uint8_t **rep, uint8_t **tab)
{
	json_t *ev = NULL;

	assert_int_equal(ev_sim_collect(p, rd, &ev), 0);
	*rep = ak_b64url_decode(json_string_value(json_object_get(ev, "report")), &in->report_len);
	*tab = ak_b64url_decode(json_string_value(json_object_get(ev, "certs")), &in->certtable_len);
	assert_non_null(*rep);
	assert_non_null(*tab);
	in->report = *rep;
	in->certtable = *tab;
	return ev;
}

static void test_sim_chip_id_mismatch(void **state)
{
	struct vf_snp_trust *t = sim_trust();
	struct ev_sim_params p;
	struct vf_snp_input in = {0};
	struct ak_snp_report r;
	uint8_t rd[64] = {0}, *rep, *tab;
	json_t *ev;
	char msg[512];
	(void)state;

	params(&p);
	ev = sim_input(&p, rd, &in, &rep, &tab);
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);

	/* another chip's id, correctly signed: the hwID check catches it */
	rep[AK_SNP_OFF_CHIP_ID + 3] ^= 0x40;
	resign(rep);
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_CHIP_ID_MISMATCH);
	assert_true(snp_contains(msg, "hwID"));
	/* an all-zero CHIP_ID (MASK_CHIP_ID): the signature alone proves the chip */
	memset(rep + AK_SNP_OFF_CHIP_ID, 0, 64);
	resign(rep);
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	/* MASK_CHIP_KEY: an unsigned report */
	rep[AK_SNP_OFF_KEY_INFO] |= 0x2;
	resign(rep);
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	free(rep);
	free(tab);
	json_decref(ev);
	ev_sim_params_clear(&p);
	vf_snp_trust_free(t);
}

/* The cache of verified chains (src/verify/snp.c): a cached chain never
 * lets a different ASK, a bad report signature or an explicit time through. */
static void test_sim_chain_cache(void **state)
{
	struct vf_snp_trust *t = sim_trust();
	struct ev_sim_params p;
	struct vf_snp_input in = {0};
	struct ak_snp_report r;
	struct ak_snp_cert_entry ents[4];
	uint8_t rd[64] = {0}, *rep, *tab, *tab2;
	size_t tlen, n;
	json_t *ev;
	char msg[512];
	(void)state;

	params(&p);
	ev = sim_input(&p, rd, &in, &rep, &tab);
	tlen = in.certtable_len;
	in.expected_report_data = rd;
	/* verified twice: the second time from the cache */
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	/* the same chain, a report whose signature no longer verifies */
	rep[AK_SNP_OFF_MEASUREMENT] ^= 1;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	rep[AK_SNP_OFF_MEASUREMENT] ^= 1;
	/* the same VCEK with an ASK whose signature is broken: the full chain
	 * check runs again and refuses it */
	tab2 = malloc(tlen);
	assert_non_null(tab2);
	memcpy(tab2, tab, tlen);
	assert_int_equal(ak_snp_certtable_parse(tab2, tlen, ents, 4, &n), 0);
	((uint8_t *)ents[1].der)[ents[1].der_len - 1] ^= 1;
	in.certtable = tab2;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	in.certtable = tab;
	/* an explicit time after the VCEK expired is never answered from the cache */
	in.now = time(NULL) + 20L * 365 * 86400;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	in.now = 0;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	free(tab2);
	free(rep);
	free(tab);
	json_decref(ev);
	ev_sim_params_clear(&p);
	vf_snp_trust_free(t);
}

static void test_sim_policy(void **state)
{
	struct vf_snp_trust *t = sim_trust();
	struct ev_sim_params p;
	struct ak_snp_report r;
	struct vf_policy pol;
	uint8_t rd[64] = {0};
	char hex[97], msg[512], err[256];
	json_t *ev = NULL;
	(void)state;

	params(&p);
	p.vmpl = 1;
	assert_int_equal(ev_sim_collect(&p, rd, &ev), 0);
	assert_int_equal(vf_snp_verify_json(t, ev, NULL, &r, msg, sizeof(msg)), AK_R_OK);
	vf_policy_init(&pol);
	ak_hex_encode(p.measurement, sizeof(p.measurement), hex);
	assert_int_equal(vf_policy_set(&pol, "measurements", hex, err, sizeof(err)), 0);
	assert_int_equal(vf_policy_check_snp(&pol, &r, "web", msg, sizeof(msg)),
			 AK_R_VMPL_NOT_ALLOWED);
	assert_int_equal(vf_policy_set(&pol, "vmpl", "0,1", err, sizeof(err)), 0);
	assert_int_equal(vf_policy_check_snp(&pol, &r, "web", msg, sizeof(msg)), AK_R_OK);
	vf_policy_clear(&pol);
	json_decref(ev);
	ev_sim_params_clear(&p);
	vf_snp_trust_free(t);
}

static void test_ev_collect(void **state)
{
	struct vf_snp_trust *t = sim_trust();
	struct ev_config cfg = {.kind = EV_KIND_SIM};
	struct ak_snp_report r;
	uint8_t rd[64] = {9};
	const char *tee = NULL;
	json_t *ev = NULL;
	char msg[512];
	(void)state;

	params(&cfg.sim);
	assert_int_equal(ev_collect(&cfg, rd, &tee, &ev), 0);
	assert_string_equal(tee, "snp");
	assert_int_equal(vf_snp_verify_json(t, ev, rd, &r, msg, sizeof(msg)), AK_R_OK);
	json_decref(ev);
	ev = NULL;
	cfg.kind = (enum ev_kind)42;
	assert_int_equal(ev_collect(&cfg, rd, &tee, &ev), -ENOTSUP);
	assert_null(ev);
	ev_sim_params_clear(&cfg.sim);
	vf_snp_trust_free(t);
}

static void test_sim_errors(void **state)
{
	struct ev_sim_params p;
	uint8_t rd[64] = {0};
	json_t *ev = NULL;
	(void)state;

	ev_sim_params_init(&p);
	assert_int_equal(p.policy, 0x30000);
	assert_int_equal(p.version, 2);
	assert_true(ev_sim_collect(&p, rd, &ev) < 0); /* no dir */
	p.dir = strdup("/nonexistent/attestkey-sim");
	assert_true(ev_sim_collect(&p, rd, &ev) < 0);
	free(p.dir);
	params(&p);
	p.version = 1;
	assert_true(ev_sim_collect(&p, rd, &ev) < 0);
	p.version = 2;
	p.vmpl = 4;
	assert_true(ev_sim_collect(&p, rd, &ev) < 0);
	assert_null(ev);
	ev_sim_params_clear(&p);
	assert_null(p.dir);

	/* product names checked before any key is made */
	assert_int_equal(ev_sim_init(sim_dir, "Turin", SIM_TCB), -ENOTSUP);
	assert_int_equal(ev_sim_init(sim_dir, "", SIM_TCB), -EINVAL);
	assert_int_equal(ev_sim_init(sim_dir, "Milan B0", SIM_TCB), -EINVAL);
}

/* The collector keeps the chip it parsed only while its files are
 * unchanged: `sim init` over the same directory is seen at once. (Last:
 * it replaces the chip the other tests use.) */
static void test_sim_reinit_seen(void **state)
{
	struct ev_sim_params p;
	struct vf_snp_trust *t;
	uint8_t rd[64] = {0};
	json_t *ev1 = NULL, *ev2 = NULL;
	struct ak_snp_report r;
	char msg[512];
	(void)state;

	params(&p);
	assert_int_equal(ev_sim_collect(&p, rd, &ev1), 0);
	assert_int_equal(ev_sim_init(sim_dir, "Milan-B0", SIM_TCB), 0);
	assert_int_equal(ev_sim_collect(&p, rd, &ev2), 0);
	/* another chip: another certificate table, verified under the new root */
	assert_string_not_equal(json_string_value(json_object_get(ev1, "certs")),
				json_string_value(json_object_get(ev2, "certs")));
	t = sim_trust();
	assert_int_equal(vf_snp_verify_json(t, ev2, rd, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(vf_snp_verify_json(t, ev1, rd, &r, msg, sizeof(msg)), AK_R_UNTRUSTED_CHAIN);
	vf_snp_trust_free(t);
	json_decref(ev1);
	json_decref(ev2);
	ev_sim_params_clear(&p);
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_files),
		cmocka_unit_test(test_sim_verify_ok),
		cmocka_unit_test(test_sim_v3),
		cmocka_unit_test(test_sim_tcb_mismatch),
		cmocka_unit_test(test_sim_amd_root),
		cmocka_unit_test(test_sim_chip_id_mismatch),
		cmocka_unit_test(test_sim_chain_cache),
		cmocka_unit_test(test_sim_policy),
		cmocka_unit_test(test_ev_collect),
		cmocka_unit_test(test_sim_errors),
		cmocka_unit_test(test_sim_reinit_seen),
	};
	/* clang-format on */

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
