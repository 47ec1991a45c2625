/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Azure vTPM evidence parsers (src/common/azure.c) against the real Azure
 * vector in tests/data/azure/snp-milan (PROVENANCE.md there).
 */
#include "config.h"

#include "test_snp_util.h"

#include <errno.h>

#include <openssl/evp.h>

#include "attestkey/azure.h"

static uint8_t *az_read(const char *name, size_t *len)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "../azure/snp-milan/%s", name);
	return snp_read(rel, len);
}

static void hcl_parses(void **state)
{
	struct ak_az_hcl h;
	size_t len;
	uint8_t *buf = az_read("hcl-report.bin", &len);
	char msg[256];

	(void)state;
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.report_type, AK_AZ_REPORT_SNP);
	assert_int_equal(h.hash_type, 1);
	assert_int_equal(h.data_size, 1130);
	assert_int_equal(h.runtime_len, 1110);
	assert_ptr_equal(h.hw_report, buf + 0x20);
	assert_ptr_equal(h.runtime, buf + 0x4D4);
	assert_int_equal(h.runtime[0], '{');
	/* the SNP report inside is version 2 */
	assert_int_equal(h.hw_report[0], 2);
	free(buf);
}

static void runtime_parses(void **state)
{
	struct ak_az_hcl h;
	struct ak_az_runtime rt;
	size_t len;
	uint8_t *buf = az_read("hcl-report.bin", &len);
	char msg[256];

	(void)state;
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), 0);
	assert_int_equal(ak_az_runtime_parse(&h, &rt, msg, sizeof(msg)), 0);
	assert_non_null(rt.ak);
	assert_int_equal(EVP_PKEY_get_base_id(rt.ak), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(rt.ak), 2048);
	assert_int_equal(rt.secure_boot, 1);
	assert_int_equal(rt.tpm_enabled, 1);
	assert_int_equal(rt.console_enabled, 1);
	assert_string_equal(rt.vm_unique_id, "911B0EF8-9DBA-48B0-B275-4E4DF2D39252");
	ak_az_runtime_clear(&rt);
	assert_null(rt.ak);
	free(buf);
}

static void quote_parses(void **state)
{
	struct ak_tpm_quote q;
	size_t len;
	uint8_t *buf = az_read("tpm-quote.msg", &len);
	char msg[256];

	(void)state;
	assert_int_equal(ak_tpm_quote_parse(buf, len, &q, msg, sizeof(msg)), 0);
	assert_int_equal(q.magic, AK_TPM_GENERATED_VALUE);
	assert_int_equal(q.type, AK_TPM_ST_ATTEST_QUOTE);
	assert_int_equal(q.extra_len, 9);
	assert_memory_equal(q.extra, "challenge", 9);
	assert_int_equal(q.pcr_hash, AK_TPM_ALG_SHA256);
	assert_int_equal(q.pcr_mask, 0xffffff);
	assert_int_equal(q.pcr_digest_len, 32);
	assert_int_equal(q.reset_count, 3);
	free(buf);
}

/* Every proper prefix of the HCL report is refused, naming a field. */
static void hcl_truncations(void **state)
{
	struct ak_az_hcl h;
	size_t len, n;
	uint8_t *buf = az_read("hcl-report.bin", &len);
	const size_t full = 0x4D4 + 1110; /* header + hw + request + runtime */
	char msg[256];

	(void)state;
	for (n = 0; n < full; n++) {
		msg[0] = '\0';
		assert_int_equal(ak_az_hcl_parse(buf, n, &h, msg, sizeof(msg)), -EINVAL);
		assert_true(snp_contains(msg, "HCL"));
	}
	assert_int_equal(ak_az_hcl_parse(buf, full, &h, msg, sizeof(msg)), 0);
	free(buf);
}

static void hcl_bad_fields(void **state)
{
	struct ak_az_hcl h;
	size_t len;
	uint8_t *buf = az_read("hcl-report.bin", &len);
	char msg[256];

	(void)state;
	buf[0] = 'X';
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "magic"));
	buf[0] = 'H';
	buf[0x4C0 + 8] = 3; /* report_type */
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "report_type 3"));
	buf[0x4C0 + 8] = 4; /* TDX parses */
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), 0);
	assert_int_equal(h.report_type, AK_AZ_REPORT_TDX);
	buf[0x4C0 + 8] = 2;
	buf[0x4C0 + 12] = 2; /* hash_type SHA-384 */
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "hash_type 2"));
	buf[0x4C0 + 12] = 1;
	buf[0x4C0 + 17] = 0x40; /* variable_data_size beyond the buffer */
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "variable_data_size"));
	buf[0x4C0 + 17] = 0x04;
	buf[0x4C0] ^= 1; /* data_size disagrees */
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "data_size"));
	buf[0x4C0] ^= 1;
	assert_int_equal(ak_az_hcl_parse(buf, AK_AZ_HCL_MAX_LEN + 1, &h, msg, sizeof(msg)),
			 -EINVAL); /* length checked before any read */
	free(buf);
}

/* The runtime data as an HCL view of a given JSON text. */
static int runtime_of(const char *json, struct ak_az_runtime *rt, char *msg, size_t msglen)
{
	struct ak_az_hcl h = {.runtime = (const uint8_t *)json, .runtime_len = strlen(json)};

	return ak_az_runtime_parse(&h, rt, msg, msglen);
}

static void runtime_refusals(void **state)
{
	static const struct {
		const char *json, *says;
	} cases[] = {
	    {"{", "not JSON"},
	    {"[]", "not a JSON object"},
	    {"{}", "\"keys\""},
	    {"{\"keys\":[{\"kid\":\"HCLEkPub\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
	     "HCLAkPub"},
	    {"{\"keys\":[{\"kid\":\"HCLAkPub\",\"kty\":\"EC\"}]}", "not an RSA JWK"},
	    {"{\"keys\":[{\"kid\":\"HCLAkPub\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
	     "n or e"},
	    {"{\"keys\":[{\"kid\":\"HCLAkPub\",\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", "n or e"},
	};
	struct ak_az_runtime rt;
	char msg[256];

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		msg[0] = '\0';
		assert_int_equal(runtime_of(cases[i].json, &rt, msg, sizeof(msg)), -EINVAL);
		if (!snp_contains(msg, cases[i].says))
			fail_msg("case %zu: '%s' does not say '%s'", i, msg, cases[i].says);
		assert_null(rt.ak);
	}
}

/* vm-configuration of the real runtime data with one member replaced. */
static void runtime_vm_configuration(void **state)
{
	struct ak_az_hcl h;
	struct ak_az_runtime rt;
	size_t len;
	uint8_t *buf = az_read("hcl-report.bin", &len);
	char msg[256], *text, *p;

	(void)state;
	assert_int_equal(ak_az_hcl_parse(buf, len, &h, msg, sizeof(msg)), 0);
	text = strndup((const char *)h.runtime, h.runtime_len);
	assert_non_null(text);
	/* "secure-boot":true -> "secure-boot":1 (same length minus 3) */
	p = strstr(text, "\"secure-boot\":true");
	assert_non_null(p);
	memcpy(p + 14, "1   ", 4);
	assert_int_equal(runtime_of(text, &rt, msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "secure-boot"));
	/* removed: -1 */
	memcpy(p, "\"secure-boo_\":true", 18);
	assert_int_equal(runtime_of(text, &rt, msg, sizeof(msg)), 0);
	assert_int_equal(rt.secure_boot, -1);
	assert_int_equal(rt.tpm_enabled, 1);
	ak_az_runtime_clear(&rt);
	free(text);
	free(buf);
}

static void quote_truncations(void **state)
{
	struct ak_tpm_quote q;
	size_t len, n;
	uint8_t *buf = az_read("tpm-quote.msg", &len);
	uint8_t *longer = malloc(len + 1);
	char msg[256];

	(void)state;
	for (n = 0; n < len; n++) {
		msg[0] = '\0';
		assert_int_equal(ak_tpm_quote_parse(buf, n, &q, msg, sizeof(msg)), -EINVAL);
		assert_true(snp_contains(msg, "TPM quote"));
	}
	assert_non_null(longer);
	memcpy(longer, buf, len);
	longer[len] = 0;
	assert_int_equal(ak_tpm_quote_parse(longer, len + 1, &q, msg, sizeof(msg)), -EINVAL);
	assert_true(snp_contains(msg, "trailing"));
	free(longer);
	free(buf);
}

static void quote_bad_fields(void **state)
{
	static const struct {
		size_t off;
		uint8_t val;
		const char *says;
	} cases[] = {
	    {0, 0xfe, "magic"},
	    {5, 0x14, "type 0x8014"},             /* TPM_ST_ATTEST_CERTIFY */
	    {0x51, 2, "pcrSelect.count is 2"},
	    {0x53, 0x0c, "hash 0x000c"},          /* SHA-384 bank */
	    {0x54, 4, "sizeofSelect 4"},
	    {0x59, 0x41, "pcrDigest"},            /* digest size 0x41 > 64 */
	};
	struct ak_tpm_quote q;
	size_t len;
	uint8_t *buf = az_read("tpm-quote.msg", &len);
	char msg[256];

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		uint8_t old = buf[cases[i].off];

		buf[cases[i].off] = cases[i].val;
		msg[0] = '\0';
		assert_int_equal(ak_tpm_quote_parse(buf, len, &q, msg, sizeof(msg)), -EINVAL);
		if (!snp_contains(msg, cases[i].says))
			fail_msg("case %zu: '%s' does not say '%s'", i, msg, cases[i].says);
		buf[cases[i].off] = old;
	}
	assert_int_equal(ak_tpm_quote_parse(buf, len, &q, msg, sizeof(msg)), 0);
	assert_int_equal(ak_tpm_quote_parse(NULL, 0, &q, msg, sizeof(msg)), -EINVAL);
	free(buf);
}

static void quote_nonce(void **state)
{
	uint8_t binding[AK_BINDING_LEN], out[32];
	/* SHA-256 of 64 zero bytes */
	static const uint8_t want[32] = {
	    0xf5, 0xa5, 0xfd, 0x42, 0xd1, 0x6a, 0x20, 0x30, 0x27, 0x98, 0xef, 0x6e, 0xd3, 0x09, 0x97, 0x9b,
	    0x43, 0x00, 0x3d, 0x23, 0x20, 0xd9, 0xf0, 0xe8, 0xea, 0x98, 0x31, 0xa9, 0x27, 0x59, 0xfb, 0x4b};

	(void)state;
	memset(binding, 0, sizeof(binding));
	assert_int_equal(ak_az_quote_nonce(binding, out), 0);
	assert_memory_equal(out, want, 32);
	binding[63] = 1;
	assert_int_equal(ak_az_quote_nonce(binding, out), 0);
	assert_memory_not_equal(out, want, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hcl_parses),
	    cmocka_unit_test(runtime_parses),
	    cmocka_unit_test(quote_parses),
	    cmocka_unit_test(hcl_truncations),
	    cmocka_unit_test(hcl_bad_fields),
	    cmocka_unit_test(runtime_refusals),
	    cmocka_unit_test(runtime_vm_configuration),
	    cmocka_unit_test(quote_truncations),
	    cmocka_unit_test(quote_bad_fields),
	    cmocka_unit_test(quote_nonce),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
