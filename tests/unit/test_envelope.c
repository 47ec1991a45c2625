/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The release envelope of protocol v2 (src/common/envelope.c,
 * docs/protocol.md §4.2): a round trip on both curves, and every way an
 * envelope or an entry can be wrong, each refused with nothing kept.
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
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attestkey/envelope.h"
#include "attestkey/jwe.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"

#define NONCE "bm9uY2Utb2YtdGhlLXRlc3Q"
#define N 3

static const char *const pts[N] = { "first private key, PKCS#8 would be here",
				    "second", "third key's bytes" };
static uint8_t cert[] = { 0x30, 0x03, 0x02, 0x01, 0x05 }; /* only hashed here */

static struct ak_key_meta meta(size_t i)
{
	static const char *const labels[N] = { "tls", "ec", "signing" };
	static const char *const ids[N] = { "0102", "a1b2", "ff" };
	struct ak_key_meta m = { .label = labels[i], .id = ids[i], .type = i == 1 ? "EC" : "RSA" };

	if (i == 0) {
		m.cert = cert;
		m.cert_len = sizeof(cert);
	}
	if (i == 2)
		m.version = 7;
	return m;
}

/* A sealed release of N keys to eph on its curve: {"envelope", "keys"}. */
static json_t *seal(EVP_PKEY *eph, const char *token)
{
	EVP_PKEY *recipient;
	json_t *pub = ak_jwk_from_pkey_public(eph), *env_j = NULL, *keys = json_array();
	struct ak_env *e = NULL;
	const char *why = NULL;
	size_t i;

	recipient = ak_pkey_from_jwk_ec(pub, NULL);
	assert_non_null(recipient);
	assert_int_equal(ak_env_seal_begin(recipient, NULL, token, NONCE, &e, &env_j, &why), 0);
	for (i = 0; i < N; i++) {
		struct ak_key_meta m = meta(i);
		json_t *item = json_pack("{s:s,s:s,s:s}", "label", m.label, "id", m.id, "type",
					 m.type);

		assert_int_equal(ak_env_seal_key(e, i, N, &m, (const uint8_t *)pts[i],
						 strlen(pts[i]), item, &why),
				 0);
		json_array_append_new(keys, item);
	}
	ak_env_free(e);
	EVP_PKEY_free(recipient);
	json_decref(pub);
	return json_pack("{s:o,s:o}", "envelope", env_j, "keys", keys);
}

/* Open entry i of rel as entry idx of count with metadata m: 0 or -errno;
 * on failure nothing is left in the buffer. */
static int open_one(EVP_PKEY *eph, const json_t *rel, size_t i, size_t idx, size_t count,
		    const struct ak_key_meta *m, const char *token, const char **why)
{
	struct ak_env *e = NULL;
	struct ak_secbuf out = { 0 };
	int r;

	r = ak_env_open_begin(eph, json_object_get(rel, "envelope"), AK_ALG_V2_ECDH, token, NONCE,
			      &e, why);
	if (r < 0)
		return r;
	r = ak_env_open_key(e, idx, count, m, json_array_get(json_object_get(rel, "keys"), i), &out,
			    why);
	if (r == 0) {
		assert_int_equal(out.len, strlen(pts[i]));
		assert_memory_equal(out.data, pts[i], out.len);
		/* the plaintext is in the secure heap */
		assert_true(CRYPTO_secure_allocated(out.data));
	} else {
		assert_null(out.data);
		assert_int_equal(out.len, 0);
	}
	ak_secbuf_clear(&out);
	ak_env_free(e);
	return r;
}

static void test_roundtrip(void **state)
{
	static const char *const crvs[] = { "P-256", "P-384" };
	const char *why = NULL;
	size_t c, i;

	(void)state;
	for (c = 0; c < 2; c++) {
		EVP_PKEY *eph = ak_ec_generate(crvs[c]);
		json_t *rel = seal(eph, "web");

		assert_string_equal(ak_ec_crv(eph), crvs[c]);
		assert_string_equal(json_string_value(json_object_get(
					json_object_get(json_object_get(rel, "envelope"), "epk"),
					"crv")),
				    crvs[c]);
		for (i = 0; i < N; i++) {
			struct ak_key_meta m = meta(i);

			assert_int_equal(open_one(eph, rel, i, i, N, &m, "web", &why), 0);
		}
		json_decref(rel);
		EVP_PKEY_free(eph);
	}
	assert_null(ak_ec_generate("P-521"));
}

/* Each entry's metadata is its AAD: moving it fails the tag. */
static void test_metadata_bound(void **state)
{
	EVP_PKEY *eph = ak_ec_generate("P-256");
	json_t *rel = seal(eph, "web");
	const char *why = NULL;
	struct ak_key_meta m;

	(void)state;
	/* keys swapped between entries: entry 1's ciphertext under entry 0's name */
	m = meta(0);
	assert_int_equal(open_one(eph, rel, 1, 0, N, &m, "web", &why), -EBADMSG);
	assert_non_null(strstr(why, "tag does not verify"));
	m = meta(1);
	assert_int_equal(open_one(eph, rel, 1, 0, N, &m, "web", &why), -EBADMSG); /* reordered */
	assert_int_equal(open_one(eph, rel, 1, 1, N - 1, &m, "web", &why), -EBADMSG); /* dropped */
	/* each member of the metadata */
	m = meta(1);
	m.label = "tls";
	assert_int_equal(open_one(eph, rel, 1, 1, N, &m, "web", &why), -EBADMSG);
	m = meta(1);
	m.id = "0103";
	assert_int_equal(open_one(eph, rel, 1, 1, N, &m, "web", &why), -EBADMSG);
	m = meta(1);
	m.type = "RSA";
	assert_int_equal(open_one(eph, rel, 1, 1, N, &m, "web", &why), -EBADMSG);
	m = meta(2);
	m.version = 6;
	assert_int_equal(open_one(eph, rel, 2, 2, N, &m, "web", &why), -EBADMSG);
	m = meta(0);
	m.cert = NULL;
	m.cert_len = 0;
	assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EBADMSG);
	m = meta(1);
	m.cert = cert;
	m.cert_len = sizeof(cert);
	assert_int_equal(open_one(eph, rel, 1, 1, N, &m, "web", &why), -EBADMSG);
	/* another token (the content key binds token and nonce) */
	m = meta(1);
	assert_int_equal(open_one(eph, rel, 1, 1, N, &m, "db", &why), -EBADMSG);
	assert_int_equal(open_one(eph, rel, 1, 1, N, &m, "web", &why), 0);
	json_decref(rel);
	EVP_PKEY_free(eph);
}

static void flip(json_t *item, const char *member)
{
	size_t n = 0;
	uint8_t *p = ak_b64url_decode(json_string_value(json_object_get(item, member)), &n);
	char *s;

	assert_non_null(p);
	p[n - 1] ^= 1;
	s = ak_b64url_encode(p, n);
	json_object_set_new(item, member, json_string(s));
	free(s);
	free(p);
}

static void test_tampered(void **state)
{
	static const char *const members[] = { "ct", "tag", "iv" };
	EVP_PKEY *eph = ak_ec_generate("P-256");
	struct ak_key_meta m = meta(0);
	const char *why = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < AK_ARRAY_SIZE(members); i++) {
		json_t *rel = seal(eph, "web");

		flip(json_array_get(json_object_get(rel, "keys"), 0), members[i]);
		assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EBADMSG);
		json_decref(rel);
	}
	json_decref(NULL);
	EVP_PKEY_free(eph);
}

/* Entries that are not well-formed: refused before any decryption. */
static void test_malformed_entries(void **state)
{
	EVP_PKEY *eph = ak_ec_generate("P-256");
	struct ak_key_meta m = meta(0);
	json_t *rel = seal(eph, "web"), *item = json_array_get(json_object_get(rel, "keys"), 0);
	const char *why = NULL;

	(void)state;
	json_object_set_new(item, "iv", json_string("AAAA")); /* 3 bytes, not 12 */
	assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EINVAL);
	assert_non_null(strstr(why, "iv (12 bytes)"));
	json_decref(rel);
	rel = seal(eph, "web");
	item = json_array_get(json_object_get(rel, "keys"), 0);
	json_object_set_new(item, "tag", json_string("AAAAAAAAAAAAAAAAAAAA")); /* 15 bytes */
	assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EINVAL);
	json_object_del(item, "tag");
	assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EINVAL);
	json_decref(rel);
	rel = seal(eph, "web");
	item = json_array_get(json_object_get(rel, "keys"), 0);
	json_object_set_new(item, "ct", json_string("!!not base64url!!"));
	assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EINVAL);
	json_object_set_new(item, "ct", json_string(""));
	assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EINVAL);
	/* an index out of range of its release, a release too large */
	json_decref(rel);
	rel = seal(eph, "web");
	assert_int_equal(open_one(eph, rel, 0, N, N, &m, "web", &why), -EINVAL);
	assert_non_null(strstr(why, "metadata"));
	assert_int_equal(open_one(eph, rel, 0, 0, AK_V2_MAX_KEYS + 1, &m, "web", &why), -EINVAL);
	m.label = NULL;
	assert_int_equal(open_one(eph, rel, 0, 0, N, &m, "web", &why), -EINVAL);
	json_decref(rel);
	EVP_PKEY_free(eph);
}

/* The envelope itself: its alg, its epk. */
static void test_envelope_refusals(void **state)
{
	EVP_PKEY *eph = ak_ec_generate("P-256"), *p384 = ak_ec_generate("P-384");
	json_t *rel = seal(eph, "web"), *env_j = json_object_get(rel, "envelope"), *saved;
	struct ak_env *e = NULL;
	const char *why = NULL;

	(void)state;
	/* the module asked v2 with another alg (the HSM one): refused */
	assert_int_equal(ak_env_open_begin(eph, env_j, AK_ALG_V2_RSA_KWP, "web", NONCE, &e, &why),
			 -EPROTO);
	assert_non_null(strstr(why, "not the one the request asked"));
	/* an alg nobody knows, even if the module asked it */
	json_object_set_new(env_j, "alg", json_string("ak2-ROT13"));
	assert_int_equal(ak_env_open_begin(eph, env_j, "ak2-ROT13", "web", NONCE, &e, &why),
			 -EPROTO);
	assert_non_null(strstr(why, "not one this module opens"));
	json_object_del(env_j, "alg");
	assert_int_equal(ak_env_open_begin(eph, env_j, AK_ALG_V2_ECDH, "web", NONCE, &e, &why),
			 -EINVAL);
	json_object_set_new(env_j, "alg", json_string(AK_ALG_V2_ECDH));
	/* an epk on another curve than ours, off the curve, or missing */
	saved = json_incref(json_object_get(env_j, "epk"));
	json_object_set_new(env_j, "epk", ak_jwk_from_pkey_public(p384));
	assert_int_equal(ak_env_open_begin(eph, env_j, AK_ALG_V2_ECDH, "web", NONCE, &e, &why),
			 -EINVAL);
	assert_non_null(strstr(why, "epk"));
	json_object_set_new(env_j, "epk", json_deep_copy(saved));
	json_object_set(json_object_get(env_j, "epk"), "y", json_object_get(saved, "x"));
	assert_int_equal(ak_env_open_begin(eph, env_j, AK_ALG_V2_ECDH, "web", NONCE, &e, &why),
			 -EINVAL);
	json_object_del(env_j, "epk");
	assert_int_equal(ak_env_open_begin(eph, env_j, AK_ALG_V2_ECDH, "web", NONCE, &e, &why),
			 -EINVAL);
	assert_null(e);
	json_decref(saved);
	/* the broker side: a recipient that is not P-256/P-384, an epk on another curve */
	assert_int_equal(ak_env_seal_begin(p384, ak_ec_generate("P-256"), "web", NONCE, &e, &saved,
					   &why),
			 -EINVAL);
	assert_null(e);
	json_decref(rel);
	EVP_PKEY_free(eph);
	EVP_PKEY_free(p384);
}

/* The AAD's encoding, written out by hand once (docs/protocol.md §4.2). */
static void test_aad_layout(void **state)
{
	static const uint8_t want_head[] = {
		'a', 't', 't', 'e', 's', 't', 'k', 'e', 'y', '-', 'v', '2', '-', 'k', 'e', 'y', 0,
		0, 0, 0, 1, /* index */
		0, 0, 0, 2, /* count */
	};
	struct ak_key_meta m = { .label = "l", .id = "ab", .type = "EC", .version = 0x0102 };
	uint8_t *aad = NULL;
	size_t len = 0, off = sizeof(want_head);

	(void)state;
	assert_int_equal(ak_v2_key_aad(AK_ALG_V2_ECDH, "web", 1, 2, &m, &aad, &len), 0);
	assert_memory_equal(aad, want_head, sizeof(want_head));
	assert_memory_equal(aad + off, "\0\0\0\x13" AK_ALG_V2_ECDH, 4 + 19);
	off += 4 + 19;
	assert_memory_equal(aad + off, "\0\0\0\3web\0\0\0\1l\0\0\0\2ab\0\0\0\2EC", 7 + 5 + 6 + 6);
	off += 7 + 5 + 6 + 6;
	assert_memory_equal(aad + off, "\0\0\0\0\0\0\1\2\0\0\0\0", 12);
	assert_int_equal(len, off + 12);
	free(aad);
}

/* The broker keeps each curve's parameters (ak_ec_params_keep): keys made
 * and imported from them behave exactly as by name, off-curve points and
 * wrong curves included. */
static void test_kept_params(void **state)
{
	ak_ec_params_keep();
	test_roundtrip(state);
	test_metadata_bound(state);
	test_tampered(state);
	test_envelope_refusals(state);
	ak_ec_params_drop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),	   cmocka_unit_test(test_metadata_bound),
		cmocka_unit_test(test_tampered),	   cmocka_unit_test(test_malformed_entries),
		cmocka_unit_test(test_envelope_refusals), cmocka_unit_test(test_aad_layout),
		cmocka_unit_test(test_kept_params),
	};
	int failed;

	if (ak_secure_init() < 0)
		return 1;
	cmocka_set_message_output(CM_OUTPUT_TAP);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	OPENSSL_cleanup();
	return failed;
}
