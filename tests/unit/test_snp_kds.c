/* SPDX-License-Identifier: Apache-2.0 */
/*
 * issue 9, SEV-SNP: product detection (CPUID, productName), AMD KDS URL
 * building (pub. 57230), CRL policy names, the installed AMD roots, and the
 * new policy keys (vf_policy_set / vf_policy_explain_snp).
 */
#include "config.h"

#include "test_snp_util.h"

#include <errno.h>

#include "attestkey/snp.h"
#include "attestkey/verify.h"

static void test_product_from_cpuid(void **state)
{
	(void)state;
	assert_int_equal(vf_snp_product_from_cpuid(0x19, 0x01), VF_SNP_PRODUCT_MILAN);
	assert_int_equal(vf_snp_product_from_cpuid(0x19, 0x00), VF_SNP_PRODUCT_MILAN);
	assert_int_equal(vf_snp_product_from_cpuid(0x19, 0x11), VF_SNP_PRODUCT_GENOA);
	/* the genoa-v3-trustee vector: family 19h model A0h (Siena: Genoa's keys) */
	assert_int_equal(vf_snp_product_from_cpuid(0x19, 0xA0), VF_SNP_PRODUCT_GENOA);
	assert_int_equal(vf_snp_product_from_cpuid(0x1A, 0x02), VF_SNP_PRODUCT_TURIN);
	assert_int_equal(vf_snp_product_from_cpuid(0x1A, 0x11), VF_SNP_PRODUCT_TURIN);
	assert_int_equal(vf_snp_product_from_cpuid(0x19, 0x50), VF_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(vf_snp_product_from_cpuid(0x17, 0x31), VF_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(vf_snp_product_from_cpuid(0, 0), VF_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(vf_snp_product_from_cpuid(0x1B, 0x00), VF_SNP_PRODUCT_UNKNOWN);
}

static void test_product_from_name(void **state)
{
	(void)state;
	assert_int_equal(vf_snp_product_from_name("Milan-B0"), VF_SNP_PRODUCT_MILAN);
	assert_int_equal(vf_snp_product_from_name("Milan"), VF_SNP_PRODUCT_MILAN);
	assert_int_equal(vf_snp_product_from_name("Genoa"), VF_SNP_PRODUCT_GENOA);
	assert_int_equal(vf_snp_product_from_name("genoa-B1"), VF_SNP_PRODUCT_GENOA);
	assert_int_equal(vf_snp_product_from_name("Turin"), VF_SNP_PRODUCT_TURIN);
	assert_int_equal(vf_snp_product_from_name("Mil"), VF_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(vf_snp_product_from_name("Milano"), VF_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(vf_snp_product_from_name(""), VF_SNP_PRODUCT_UNKNOWN);
	assert_int_equal(vf_snp_product_from_name(NULL), VF_SNP_PRODUCT_UNKNOWN);
	assert_string_equal(vf_snp_product_name(VF_SNP_PRODUCT_TURIN), "Turin");
	assert_string_equal(vf_snp_product_name(VF_SNP_PRODUCT_UNKNOWN), "unknown");
}

/* The vector VCEKs' productName, read through the extension parser. */
static void test_product_of_vector_vceks(void **state)
{
	static const struct {
		const char *file;
		enum vf_snp_product p;
	} v[] = {
	    {"milan-v2-virtee/vcek.der", VF_SNP_PRODUCT_MILAN},
	    {"milan-v2-go-sev-guest/vcek.der", VF_SNP_PRODUCT_MILAN},
	    {"genoa-v3-trustee/vcek.der", VF_SNP_PRODUCT_GENOA},
	    {"turin-vcek-only-virtee/vcek.der", VF_SNP_PRODUCT_TURIN},
	};
	(void)state;

	for (size_t i = 0; i < AK_ARRAY_SIZE(v); i++) {
		struct ak_snp_vcek_ext e;
		size_t len;
		uint8_t *der = snp_read(v[i].file, &len);

		assert_int_equal(ak_snp_vcek_ext_parse(der, len, &e), 0);
		assert_int_equal(vf_snp_product_from_name(e.product), v[i].p);
		free(der);
	}
}

static void report_with(struct ak_snp_report *r, const char *chip_hex, size_t chip_len,
			uint64_t tcb)
{
	memset(r, 0, sizeof(*r));
	r->version = 2;
	assert_int_equal(ak_hex_decode(chip_hex, r->chip_id, chip_len), 0);
	r->reported_tcb = tcb;
}

static void test_vcek_url(void **state)
{
	struct ak_snp_report r;
	char url[1024], chip[129];
	(void)state;

	memset(chip, 'a', 128);
	chip[128] = '\0';
	chip[0] = '0';
	chip[1] = '1';
	/* Milan: 64-byte hwid, bl/tee/snp/ucode from bytes 0, 1, 6, 7 */
	report_with(&r, chip, 64, 0x7308000000000003ULL);
	assert_int_equal(vf_kds_vcek_url("https://kdsintf.amd.com", VF_SNP_PRODUCT_MILAN, &r,
					 url, sizeof(url)),
			 0);
	assert_true(snp_contains(url, "https://kdsintf.amd.com/vcek/v1/Milan/01aaaa"));
	assert_true(snp_contains(url, "aaaa?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"));
	assert_int_equal(strlen(url), strlen("https://kdsintf.amd.com/vcek/v1/Milan/") + 128 +
					  strlen("?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"));
	/* a trailing slash on the base is not doubled */
	assert_int_equal(vf_kds_vcek_url("http://127.0.0.1:8080/", VF_SNP_PRODUCT_GENOA, &r, url,
					 sizeof(url)),
			 0);
	assert_true(snp_contains(url, "http://127.0.0.1:8080/vcek/v1/Genoa/01aa"));
	/* Turin: the first 8 bytes of CHIP_ID, fmcSPL first, Turin's layout
	 * (byte 0 fmc, 1 bl, 2 tee, 3 snp, 7 ucode) */
	memset(&r, 0, sizeof(r));
	r.version = 3;
	r.cpuid_fam = 0x1A;
	assert_int_equal(ak_hex_decode("1e550a8ee5cf9f4d", r.chip_id, 8), 0);
	r.reported_tcb = 0x0900000004030201ULL;
	assert_int_equal(vf_kds_vcek_url("https://kdsintf.amd.com", VF_SNP_PRODUCT_TURIN, &r, url,
					 sizeof(url)),
			 0);
	assert_string_equal(url, "https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d"
				 "?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=9");
	/* refusals: unknown product, masked (all-zero) CHIP_ID, small buffer */
	assert_int_equal(vf_kds_vcek_url("https://k", VF_SNP_PRODUCT_UNKNOWN, &r, url, sizeof(url)),
			 -EINVAL);
	assert_int_equal(vf_kds_vcek_url("https://k", VF_SNP_PRODUCT_TURIN, &r, url, 40), -EINVAL);
	memset(r.chip_id, 0, sizeof(r.chip_id));
	assert_int_equal(vf_kds_vcek_url("https://k", VF_SNP_PRODUCT_TURIN, &r, url, sizeof(url)),
			 -EINVAL);
}

/* The virtee vector's own URL, from its report bytes. */
static void test_vcek_url_of_vector(void **state)
{
	struct ak_snp_report r;
	size_t len;
	uint8_t *rep = snp_read("milan-v2-virtee/report.bin", &len);
	char url[1024];
	(void)state;

	assert_int_equal(ak_snp_report_parse(rep, len, &r), 0);
	assert_int_equal(vf_kds_vcek_url("https://kdsintf.amd.com", VF_SNP_PRODUCT_MILAN, &r, url,
					 sizeof(url)),
			 0);
	assert_true(snp_contains(url, "/vcek/v1/Milan/d49554ec717f4e5b"));
	assert_true(snp_contains(url, "?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"));
	free(rep);
}

static void test_chain_crl_urls(void **state)
{
	char url[256];
	(void)state;

	assert_int_equal(vf_kds_chain_url("https://kdsintf.amd.com", VF_SNP_PRODUCT_GENOA, false,
					  url, sizeof(url)),
			 0);
	assert_string_equal(url, "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain");
	assert_int_equal(vf_kds_chain_url("https://kdsintf.amd.com", VF_SNP_PRODUCT_TURIN, true,
					  url, sizeof(url)),
			 0);
	assert_string_equal(url, "https://kdsintf.amd.com/vlek/v1/Turin/cert_chain");
	assert_int_equal(vf_kds_crl_url("https://kdsintf.amd.com//", VF_SNP_PRODUCT_MILAN, false,
					url, sizeof(url)),
			 0);
	assert_string_equal(url, "https://kdsintf.amd.com/vcek/v1/Milan/crl");
	assert_int_equal(vf_kds_crl_url("https://k", VF_SNP_PRODUCT_UNKNOWN, false, url,
					sizeof(url)),
			 -EINVAL);
}

static void test_crl_modes(void **state)
{
	enum vf_crl_mode m;
	(void)state;

	assert_int_equal(vf_crl_mode_from_name("off", &m), 0);
	assert_int_equal(m, VF_CRL_OFF);
	assert_int_equal(vf_crl_mode_from_name("use-if-present", &m), 0);
	assert_int_equal(m, VF_CRL_USE_IF_PRESENT);
	assert_int_equal(vf_crl_mode_from_name("require", &m), 0);
	assert_int_equal(m, VF_CRL_REQUIRE);
	assert_int_equal(vf_crl_mode_from_name("Require", &m), -EINVAL);
	assert_int_equal(vf_crl_mode_from_name(NULL, &m), -EINVAL);
	assert_string_equal(vf_crl_mode_name(VF_CRL_USE_IF_PRESENT), "use-if-present");
	assert_string_equal(vf_snp_source_name(VF_SNP_SOURCE_CACHE), "cache");
}

/* The roots as installed: all three ARKs; a directory without them refused. */
static void test_amd_roots(void **state)
{
	struct vf_snp_trust *t;
	(void)state;

	/* NULL: $ATTESTKEY_AMD_DIR (make check: data/amd), else the datadir */
	assert_int_equal(vf_snp_trust_new(&t), 0);
	assert_int_equal(vf_snp_trust_add_amd_roots(t, NULL), 0);
	vf_snp_trust_free(t);
	assert_int_equal(vf_snp_trust_new(&t), 0);
	assert_int_equal(vf_snp_trust_add_amd_roots(t, "/nonexistent"), -ENOENT);
	assert_int_equal(vf_snp_trust_set_kds_url(t, "ftp://x"), -EINVAL);
	assert_int_equal(vf_snp_trust_set_kds_url(t, "https://kdsintf.amd.com"), 0);
	assert_int_equal(vf_snp_trust_set_cache_dir(t, ""), -EINVAL);
	vf_snp_trust_free(t);
}

/* Verified with the installed roots: a VCEK from the file, a VLEK-flagged
 * report named VLEK, and without any certificate or KDS: evidence_malformed. */
static void test_verify_info(void **state)
{
	struct vf_snp_trust *t;
	struct vf_snp_info info;
	struct ak_snp_report r;
	size_t rlen, vlen;
	uint8_t *rep = snp_read("genoa-v3-trustee/report.bin", &rlen);
	uint8_t *vcek = snp_read("genoa-v3-trustee/vcek.der", &vlen);
	char msg[1024];
	struct vf_snp_input in = {.report = rep, .report_len = rlen, .vcek_der = vcek,
				  .vcek_len = vlen, .info = &info};
	(void)state;

	assert_int_equal(vf_snp_trust_new(&t), 0);
	assert_int_equal(vf_snp_trust_add_amd_roots(t, NULL), 0);
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_OK);
	assert_int_equal(info.product, VF_SNP_PRODUCT_GENOA);
	assert_false(info.vlek);
	assert_int_equal(info.source, VF_SNP_SOURCE_FILE);
	assert_string_equal(info.root, "ARK-Genoa");
	assert_string_equal(info.crl, "off");
	/* KEY_INFO signing_key 1: a VLEK; every message says VLEK */
	rep[AK_SNP_OFF_KEY_INFO] = 1 << 2;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_BAD_SIGNATURE);
	assert_true(info.vlek);
	assert_true(snp_contains(msg, "VLEK"));
	assert_false(snp_contains(msg, "VCEK"));
	in.vcek_der = NULL;
	in.vcek_len = 0;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "no VLEK certificate"));
	/* with a KDS: a VLEK cannot be fetched */
	assert_int_equal(vf_snp_trust_set_kds_url(t, "http://127.0.0.1:9"), 0);
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_COLLATERAL_UNAVAILABLE);
	assert_true(snp_contains(msg, "VLEK cannot be fetched"));
	/* version 4 is not read */
	rep[AK_SNP_OFF_KEY_INFO] = 0;
	rep[0] = 4;
	assert_int_equal(vf_snp_verify(t, &in, &r, msg, sizeof(msg)), AK_R_EVIDENCE_MALFORMED);
	assert_true(snp_contains(msg, "version 4 is not supported"));
	vf_snp_trust_free(t);
	free(rep);
	free(vcek);
}

#define Z47 "00000000000000000000000000000000000000000000000"
#define Z94 Z47 Z47 /* 47 zero bytes in hex, after one given byte: 48 bytes */

static void set_ok(struct vf_policy *p, const char *k, const char *v)
{
	char err[256];

	if (vf_policy_set(p, k, v, err, sizeof(err)) != 0)
		fail_msg("vf_policy_set(%s, %s): %s", k, v, err);
}

static void test_policy_keys(void **state)
{
	struct vf_policy p;
	struct ak_snp_report r;
	char msg[512], err[256];
	json_t *checks;
	(void)state;

	memset(&r, 0, sizeof(r));
	r.version = 2;
	r.policy = 0x30000; /* SMT allowed */
	r.platform_info = 0x25;
	vf_policy_init(&p);
	assert_int_equal(p.allow_migration_agent, 0); /* refused by default */
	set_ok(&p, "measurements", "any");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	/* the migration agent bit is refused by default */
	r.policy |= AK_SNP_POLICY_MIGRATE_MA;
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "migration agent (bit 18)"));
	set_ok(&p, "allow_migration_agent", "true");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	set_ok(&p, "allow_smt", "false");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "SMT (bit 16)"));
	set_ok(&p, "allow_smt", "true");
	/* ID block fields */
	set_ok(&p, "family_id", "00000000000000000000000000000001");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "FAMILY_ID 00000000000000000000000000000000 differs from "
				      "family_id 00000000000000000000000000000001 of token web"));
	r.family_id[15] = 1;
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	set_ok(&p, "image_id", "ff000000000000000000000000000000");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "IMAGE_ID"));
	r.image_id[0] = 0xff;
	set_ok(&p, "id_key_digest", "01" Z94);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "ID_KEY_DIGEST"));
	r.id_key_digest[0] = 1;
	set_ok(&p, "author_key_digest", "02" Z94);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "AUTHOR_KEY_DIGEST"));
	r.author_key_digest[0] = 2;
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	/* PLATFORM_INFO 0x25: smt_en, ecc_en, alias_check_complete */
	set_ok(&p, "platform_info_require", "smt_en, ECC_EN alias_check_complete");
	assert_int_equal(p.platform_info_require, 0x25);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	set_ok(&p, "platform_info_require", "tsme_en");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "PLATFORM_INFO 0x25 (smt_en, ecc_en, alias_check_complete) "
				      "lacks bits 0x2 of platform_info_require 0x2 (tsme_en)"));
	set_ok(&p, "platform_info_require", "0x0");
	set_ok(&p, "platform_info_forbid", "0x20");
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_POLICY_MISMATCH);
	assert_true(snp_contains(msg, "has bits 0x20"));
	set_ok(&p, "platform_info_forbid", "rapl_dis,tio_en");
	assert_int_equal(p.platform_info_forbid, 0x88);
	assert_int_equal(vf_policy_check_snp(&p, &r, "web", msg, sizeof(msg)), AK_R_OK);
	/* every check listed: explain continues after a failure, reports the first */
	r.policy |= AK_SNP_POLICY_DEBUG;
	r.image_id[0] = 0;
	checks = json_array();
	assert_non_null(checks);
	assert_int_equal(vf_policy_explain_snp(&p, &r, "web", checks, msg, sizeof(msg)),
			 AK_R_DEBUG_NOT_ALLOWED);
	assert_true(snp_contains(msg, "allows debugging"));
	{
		size_t i, failed = 0;
		json_t *c;
		bool image = false;

		json_array_foreach(checks, i, c) {
			if (json_is_false(json_object_get(c, "pass")))
				failed++;
			if (!strcmp(json_string_value(json_object_get(c, "check")), "image_id")) {
				image = true;
				assert_string_equal(json_string_value(json_object_get(c, "reason")),
						    "policy_mismatch");
				assert_string_equal(
				    json_string_value(json_object_get(c, "expected")),
				    "ff000000000000000000000000000000");
			}
		}
		assert_int_equal(failed, 2);
		assert_true(image);
		assert_true(json_array_size(checks) >= 14);
	}
	json_decref(checks);
	/* bad values name the key and change nothing */
	assert_int_equal(vf_policy_set(&p, "id_key_digest", "ab", err, sizeof(err)), -EINVAL);
	assert_true(snp_contains(err, "id_key_digest: 'ab' is not 96 hex digits"));
	assert_int_equal(vf_policy_set(&p, "family_id", "zz", err, sizeof(err)), -EINVAL);
	assert_true(snp_contains(err, "family_id"));
	assert_int_equal(vf_policy_set(&p, "allow_smt", "maybe", err, sizeof(err)), -EINVAL);
	assert_true(snp_contains(err, "allow_smt"));
	assert_int_equal(vf_policy_set(&p, "platform_info_require", "smt", err, sizeof(err)),
			 -EINVAL);
	assert_true(snp_contains(err, "platform_info_require: 'smt'"));
	assert_int_equal(vf_policy_set(&p, "platform_info_forbid", "0xq", err, sizeof(err)), -EINVAL);
	assert_int_equal(vf_policy_set(&p, "platform_info_forbid", "", err, sizeof(err)), -EINVAL);
	assert_int_equal(p.platform_info_forbid, 0x88);
	vf_policy_clear(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_product_from_cpuid), cmocka_unit_test(test_product_from_name),
	    cmocka_unit_test(test_product_of_vector_vceks), cmocka_unit_test(test_vcek_url),
	    cmocka_unit_test(test_vcek_url_of_vector),	   cmocka_unit_test(test_chain_crl_urls),
	    cmocka_unit_test(test_crl_modes),		   cmocka_unit_test(test_amd_roots),
	    cmocka_unit_test(test_verify_info),		   cmocka_unit_test(test_policy_keys),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
