/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's side of the HSM envelope (src/common/hsmenv.c): envelopes a
 * real SoftHSM token made, and ones made here with OpenSSL to reach every
 * refusal. */
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
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "attestkey/common.h"
#include "attestkey/hsmenv.h"
#include "attestkey/pkey.h"
#include "attestkey/secmem.h"
#include "../../src/broker/keystore.h"
#include "test_broker_util.h"
#include "test_hsm_util.h"

static struct th_hsm hsm;
static EVP_PKEY *rsa_key, *ec_key, *eph;

static int group_setup(void **state)
{
	(void)state;
	assert_int_equal(ak_secure_init(), 0);
	rsa_key = tb_gen_rsa();
	ec_key = tb_gen_ec("P-384");
	eph = ak_hsmenv_keygen();
	assert_non_null(rsa_key);
	assert_non_null(ec_key);
	assert_non_null(eph);
	if (!th_hsm_available())
		return 0;
	assert_int_equal(th_hsm_setup(&hsm), 0);
	assert_int_equal(th_hsm_import(&hsm, "web/tls", "01", rsa_key, true, false, NULL), 0);
	assert_int_equal(th_hsm_import(&hsm, "web/ec", "02", ec_key, true, true, NULL), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	th_hsm_teardown(&hsm);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(eph);
	return 0;
}

/* The SoftHSM token's envelope of web's keys (ec, then tls) to eph. */
static void softhsm_envelope(struct broker_envelope *env)
{
	struct broker_keystore *ks = NULL;
	struct broker_keyset set = {0};
	char err[512] = "";

	assert_int_equal(broker_keystore_new("pkcs11", &ks, err, sizeof(err)), 0);
	assert_int_equal(broker_keystore_set(ks, "module", TH_SOFTHSM_SO, err, sizeof(err)), 0);
	assert_int_equal(broker_keystore_set(ks, "token", TH_TOKEN, err, sizeof(err)), 0);
	assert_int_equal(broker_keystore_set(ks, "pin_file", hsm.pin_file, err, sizeof(err)), 0);
	if (broker_keystore_open(ks, err, sizeof(err)) < 0 ||
	    broker_keystore_fetch(ks, "web", &set, err, sizeof(err)) < 0 ||
	    broker_keystore_wrap(ks, &set, eph, env, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(env->n, 2);
	broker_keyset_clear(&set);
	broker_keystore_free(ks);
}

static void expect_key(const struct ak_secbuf *der, EVP_PKEY *want)
{
	struct ak_privkey *k = NULL;

	assert_true(CRYPTO_secure_allocated(der->data));
	assert_int_equal(ak_privkey_from_pkcs8(der->data, der->len, &k), AK_PKEY_OK);
	assert_int_equal(EVP_PKEY_eq(k->pub, want), 1);
	ak_privkey_unref(k);
}

static void test_softhsm_envelope_unwraps(void **state)
{
	struct broker_envelope env = {0};
	struct ak_secbuf kek = {0}, der = {0};
	const char *why = "unset";

	(void)state;
	if (!hsm.dir[0])
		skip();
	softhsm_envelope(&env);
	assert_string_equal(env.alg, AK_HSMENV_ALG_OAEP);
	assert_int_equal(ak_hsmenv_open(eph, env.alg, env.ek, env.ek_len, &kek, &why), 0);
	assert_null(why);
	assert_int_equal(kek.len, AK_HSMENV_KEK_LEN);
	assert_true(CRYPTO_secure_allocated(kek.data));
	/* keys in label order: ec (P-384, no public key in SoftHSM's PKCS#8:
	 * the decoder derives it), then tls (RSA) */
	assert_int_equal(ak_hsmenv_unwrap(&kek, env.wk[0], env.wk_len[0], &der, &why), 0);
	expect_key(&der, ec_key);
	ak_secbuf_clear(&der);
	assert_int_equal(ak_hsmenv_unwrap(&kek, env.wk[1], env.wk_len[1], &der, &why), 0);
	expect_key(&der, rsa_key);
	ak_secbuf_clear(&der);
	ak_secbuf_clear(&kek);
	broker_envelope_clear(&env);
}

static void test_softhsm_envelope_tampered(void **state)
{
	struct broker_envelope env = {0};
	struct ak_secbuf kek = {0}, der = {0};
	EVP_PKEY *other = ak_hsmenv_keygen();
	const char *why = NULL;
	size_t i;

	(void)state;
	if (!hsm.dir[0])
		skip();
	assert_non_null(other);
	softhsm_envelope(&env);
	/* the AES key: a flipped bit, another key, another hash, another alg */
	env.ek[env.ek_len / 2] ^= 0x01;
	assert_int_equal(ak_hsmenv_open(eph, env.alg, env.ek, env.ek_len, &kek, &why), -EINVAL);
	assert_non_null(strstr(why, "does not decrypt with the ephemeral key"));
	assert_null(kek.data);
	env.ek[env.ek_len / 2] ^= 0x01;
	assert_int_equal(ak_hsmenv_open(other, env.alg, env.ek, env.ek_len, &kek, &why), -EINVAL);
	assert_int_equal(
	    ak_hsmenv_open(eph, AK_HSMENV_ALG_OAEP_256, env.ek, env.ek_len, &kek, &why), -EINVAL);
	assert_non_null(strstr(why, "another hash"));
	assert_int_equal(ak_hsmenv_open(eph, "ak2-RSA1_5+A256KWP", env.ek, env.ek_len, &kek, &why),
			 -EINVAL);
	assert_non_null(strstr(why, "alg is not"));
	assert_int_equal(ak_hsmenv_open(eph, env.alg, env.ek, env.ek_len - 1, &kek, &why), -EINVAL);
	assert_int_equal(ak_hsmenv_open(ec_key, env.alg, env.ek, env.ek_len, &kek, &why), -EINVAL);
	assert_non_null(strstr(why, "not an RSA key"));
	assert_null(kek.data);
	/* the wrapped key: every byte flipped in turn fails the integrity
	 * check, and nothing of it reaches the caller */
	assert_int_equal(ak_hsmenv_open(eph, env.alg, env.ek, env.ek_len, &kek, &why), 0);
	for (i = 0; i < env.wk_len[1]; i++) {
		env.wk[1][i] ^= 0x80;
		assert_int_equal(ak_hsmenv_unwrap(&kek, env.wk[1], env.wk_len[1], &der, &why),
				 -EINVAL);
		assert_null(der.data);
		env.wk[1][i] ^= 0x80;
	}
	assert_non_null(strstr(why, "integrity check"));
	/* truncated: not whole 64-bit blocks, or a block short */
	assert_int_equal(ak_hsmenv_unwrap(&kek, env.wk[1], env.wk_len[1] - 1, &der, &why), -EINVAL);
	assert_non_null(strstr(why, "(length)"));
	assert_int_equal(ak_hsmenv_unwrap(&kek, env.wk[1], env.wk_len[1] - 8, &der, &why), -EINVAL);
	assert_int_equal(ak_hsmenv_unwrap(&kek, env.wk[1], 8, &der, &why), -EINVAL);
	/* the other key's wrap is fine: keys are wrapped each on its own */
	assert_int_equal(ak_hsmenv_unwrap(&kek, env.wk[0], env.wk_len[0], &der, &why), 0);
	ak_secbuf_clear(&der);
	ak_secbuf_clear(&kek);
	broker_envelope_clear(&env);
	EVP_PKEY_free(other);
}

/* An envelope made here: RSA-OAEP with md of kek to eph, and the RFC 5649
 * wrap of pt under kek. */
static void make_envelope(const EVP_MD *md, const uint8_t *kek, size_t kek_len, const uint8_t *pt,
			  size_t pt_len, uint8_t *ek, size_t *ek_len, uint8_t *wk, size_t *wk_len)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(eph, NULL);
	EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;

	assert_true(EVP_PKEY_encrypt_init(pc) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) > 0);
	assert_true(EVP_PKEY_encrypt(pc, ek, ek_len, kek, kek_len) > 0);
	EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	assert_true(EVP_EncryptInit_ex(cc, EVP_aes_256_wrap_pad(), NULL, kek, NULL));
	assert_true(EVP_EncryptUpdate(cc, wk, &n1, pt, (int)pt_len));
	assert_true(EVP_EncryptFinal_ex(cc, wk + n1, &n2));
	*wk_len = (size_t)(n1 + n2);
	EVP_CIPHER_CTX_free(cc);
	EVP_PKEY_CTX_free(pc);
}

static void test_oaep256_and_plaintext_rules(void **state)
{
	uint8_t kek_bytes[AK_HSMENV_KEK_LEN], ek[512], wk[4096], pt[4096];
	unsigned char *p8 = NULL;
	size_t ek_len, wk_len;
	struct ak_secbuf kek = {0}, der = {0};
	const char *why = NULL;
	int p8_len;

	(void)state;
	assert_int_equal(RAND_bytes(kek_bytes, sizeof(kek_bytes)), 1);
	{
		PKCS8_PRIV_KEY_INFO *inf = EVP_PKEY2PKCS8(rsa_key);

		p8_len = i2d_PKCS8_PRIV_KEY_INFO(inf, &p8);
		PKCS8_PRIV_KEY_INFO_free(inf);
	}
	assert_true(p8_len > 0 && (size_t)p8_len + 16 < sizeof(pt));
	/* RSA-OAEP-256, PKCS#8 without padding: accepted */
	ek_len = sizeof(ek);
	make_envelope(EVP_sha256(), kek_bytes, sizeof(kek_bytes), p8, (size_t)p8_len, ek, &ek_len,
		      wk, &wk_len);
	assert_int_equal(ak_hsmenv_open(eph, AK_HSMENV_ALG_OAEP_256, ek, ek_len, &kek, &why), 0);
	assert_int_equal(ak_hsmenv_unwrap(&kek, wk, wk_len, &der, &why), 0);
	assert_int_equal(der.len, (size_t)p8_len);
	expect_key(&der, rsa_key);
	ak_secbuf_clear(&der);
	/* ... and refused under the SHA-1 name */
	assert_int_equal(ak_hsmenv_open(eph, AK_HSMENV_ALG_OAEP, ek, ek_len, &kek, &why), -EINVAL);
	assert_null(kek.data);
	assert_int_equal(ak_hsmenv_open(eph, AK_HSMENV_ALG_OAEP_256, ek, ek_len, &kek, &why), 0);
	/* the plaintext: 7 zero bytes after the DER are the HSM's padding;
	 * 8 are not, nor is a non-zero byte, nor text that is not DER */
	memcpy(pt, p8, (size_t)p8_len);
	memset(pt + p8_len, 0, 16);
	ek_len = sizeof(ek);
	make_envelope(EVP_sha256(), kek_bytes, sizeof(kek_bytes), pt, (size_t)p8_len + 7, ek,
		      &ek_len, wk, &wk_len);
	assert_int_equal(ak_hsmenv_unwrap(&kek, wk, wk_len, &der, &why), 0);
	assert_int_equal(der.len, (size_t)p8_len);
	ak_secbuf_clear(&der);
	ek_len = sizeof(ek);
	make_envelope(EVP_sha256(), kek_bytes, sizeof(kek_bytes), pt, (size_t)p8_len + 8, ek,
		      &ek_len, wk, &wk_len);
	assert_int_equal(ak_hsmenv_unwrap(&kek, wk, wk_len, &der, &why), -EINVAL);
	assert_non_null(strstr(why, "other than the HSM's zero padding"));
	pt[p8_len + 2] = 1;
	ek_len = sizeof(ek);
	make_envelope(EVP_sha256(), kek_bytes, sizeof(kek_bytes), pt, (size_t)p8_len + 3, ek,
		      &ek_len, wk, &wk_len);
	assert_int_equal(ak_hsmenv_unwrap(&kek, wk, wk_len, &der, &why), -EINVAL);
	assert_null(der.data);
	ek_len = sizeof(ek);
	make_envelope(EVP_sha256(), kek_bytes, sizeof(kek_bytes),
		      (const uint8_t *)"not a DER key at all", 20, ek, &ek_len, wk, &wk_len);
	assert_int_equal(ak_hsmenv_unwrap(&kek, wk, wk_len, &der, &why), -EINVAL);
	assert_non_null(strstr(why, "not DER PKCS#8"));
	/* a DER SEQUENCE whose length runs past the plaintext */
	ek_len = sizeof(ek);
	make_envelope(EVP_sha256(), kek_bytes, sizeof(kek_bytes), p8, (size_t)p8_len - 9, ek,
		      &ek_len, wk, &wk_len);
	assert_int_equal(ak_hsmenv_unwrap(&kek, wk, wk_len, &der, &why), -EINVAL);
	assert_null(der.data);
	ak_secbuf_clear(&kek);
	/* an AES key of the wrong size, through RSA-OAEP or given directly */
	ek_len = sizeof(ek);
	make_envelope(EVP_sha256(), kek_bytes, 16, p8, (size_t)p8_len, ek, &ek_len, wk, &wk_len);
	assert_int_equal(ak_hsmenv_open(eph, AK_HSMENV_ALG_OAEP_256, ek, ek_len, &kek, &why),
			 -EINVAL);
	assert_non_null(strstr(why, "not a 256-bit key"));
	assert_int_equal(ak_hsmenv_unwrap(NULL, wk, wk_len, &der, &why), -EINVAL);
	OPENSSL_clear_free(p8, (size_t)p8_len);
	OPENSSL_cleanse(pt, sizeof(pt));
	OPENSSL_cleanse(kek_bytes, sizeof(kek_bytes));
}

static void test_keygen(void **state)
{
	(void)state;
	assert_int_equal(EVP_PKEY_get_base_id(eph), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(eph), AK_HSMENV_RSA_BITS);
	assert_true(ak_hsmenv_alg_known(AK_HSMENV_ALG_OAEP));
	assert_true(ak_hsmenv_alg_known(AK_HSMENV_ALG_OAEP_256));
	assert_false(ak_hsmenv_alg_known("ECDH-ES+A256GCM"));
	assert_false(ak_hsmenv_alg_known(NULL));
}

/* The request's RSA JWK: what the module sends, what the broker accepts. */
static void test_jwk(void **state)
{
	json_t *jwk = ak_hsmenv_jwk_public(eph), *bad;
	EVP_PKEY *back, *small = EVP_RSA_gen(2048);
	const char *why = NULL;
	char id1[41], id2[41];
	static const char *refused[] = {
	    "{\"kty\":\"EC\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
	    "{\"kty\":\"RSA\",\"e\":\"AQAB\"}",
	    "{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}",
	};
	size_t i;

	(void)state;
	assert_non_null(jwk);
	assert_int_equal(json_object_size(jwk), 3);
	assert_null(json_object_get(jwk, "d"));
	assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
	back = ak_hsmenv_pkey_from_jwk(jwk, &why);
	assert_non_null(back);
	assert_null(why);
	assert_int_equal(EVP_PKEY_eq(back, eph), 1);
	/* the CKA_ID the broker gives a key, from its public key alone */
	assert_int_equal(ak_hsmenv_key_id(back, id1), 0);
	assert_int_equal(ak_hsmenv_key_id(eph, id2), 0);
	assert_string_equal(id1, id2);
	assert_int_equal(strlen(id1), 40);
	assert_int_equal(ak_hsmenv_key_id(NULL, id1), -EINVAL);
	EVP_PKEY_free(back);
	/* a private member, an even exponent, a short modulus, a leading zero */
	bad = json_deep_copy(jwk);
	json_object_set_new(bad, "d", json_string("AQAB"));
	assert_null(ak_hsmenv_pkey_from_jwk(bad, &why));
	assert_non_null(strstr(why, "members other than kty, n and e"));
	json_object_del(bad, "d");
	json_object_set_new(bad, "e", json_string("AQAA"));
	assert_null(ak_hsmenv_pkey_from_jwk(bad, &why));
	assert_non_null(strstr(why, "public exponent"));
	json_object_set_new(bad, "e", json_string("AAEAAQ"));
	assert_null(ak_hsmenv_pkey_from_jwk(bad, &why));
	assert_non_null(strstr(why, "leading zeros"));
	json_decref(bad);
	bad = ak_hsmenv_jwk_public(small);
	assert_null(ak_hsmenv_pkey_from_jwk(bad, &why));
	assert_non_null(strstr(why, "3072 to 8192 bits"));
	json_decref(bad);
	for (i = 0; i < AK_ARRAY_SIZE(refused); i++) {
		bad = json_loads(refused[i], 0, NULL);
		assert_non_null(bad);
		assert_null(ak_hsmenv_pkey_from_jwk(bad, &why));
		assert_non_null(why);
		json_decref(bad);
	}
	assert_null(ak_hsmenv_pkey_from_jwk(NULL, &why));
	assert_null(ak_hsmenv_jwk_public(ec_key));
	json_decref(jwk);
	EVP_PKEY_free(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keygen),
	    cmocka_unit_test(test_jwk),
	    cmocka_unit_test(test_softhsm_envelope_unwraps),
	    cmocka_unit_test(test_softhsm_envelope_tampered),
	    cmocka_unit_test(test_oaep256_and_plaintext_rules),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
