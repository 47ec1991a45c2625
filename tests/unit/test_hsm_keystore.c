/* SPDX-License-Identifier: Apache-2.0 */
/* The PKCS#11 HSM key store against a real SoftHSMv2 token. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/p11-kit.h>

#include "attestkey/common.h"
#include "attestkey/hsmenv.h"
#include "attestkey/secmem.h"
#include "../../src/broker/keystore.h"
#include "test_broker_util.h"
#include "test_hsm_util.h"

/* The token, made once: web/tls (RSA, certificate), web/ec (P-256, public
 * key object), web/locked (not extractable: only in token "locked"'s
 * tests, under that broker token name), other/x (another broker token). */
static struct th_hsm hsm;
static EVP_PKEY *rsa_key, *ec_key, *guest;
static X509 *rsa_cert;

static int group_setup(void **state)
{
	EVP_PKEY *other = NULL, *locked = NULL;

	(void)state;
	if (!th_hsm_available())
		return 0; /* each test skips */
	assert_int_equal(ak_secure_init(), 0);
	assert_int_equal(th_hsm_setup(&hsm), 0);
	rsa_key = tb_gen_rsa();
	ec_key = tb_gen_ec("P-256");
	other = tb_gen_ec("P-384");
	locked = tb_gen_ec("P-256");
	guest = EVP_RSA_gen(3072);
	assert_non_null(rsa_key);
	assert_non_null(ec_key);
	assert_non_null(guest);
	rsa_cert = tb_make_cert(rsa_key, "tls");
	assert_non_null(rsa_cert);
	assert_int_equal(th_hsm_import(&hsm, "web/tls", "01", rsa_key, true, false, rsa_cert), 0);
	assert_int_equal(th_hsm_import(&hsm, "web/ec", "02", ec_key, true, true, NULL), 0);
	assert_int_equal(th_hsm_import(&hsm, "other/x", "03", other, true, true, NULL), 0);
	assert_int_equal(th_hsm_import(&hsm, "locked/k", "04", locked, false, true, NULL), 0);
	/* an EC key without its public key anywhere */
	assert_int_equal(th_hsm_import(&hsm, "nopub/k", "05", other, true, false, NULL), 0);
	/* a certificate for another key under the key's CKA_ID */
	{
		X509 *wrong = tb_make_cert(other, "wrong");

		assert_int_equal(th_hsm_import(&hsm, "badcert/k", "06", locked, true, true, wrong),
				 0);
		X509_free(wrong);
	}
	EVP_PKEY_free(other);
	EVP_PKEY_free(locked);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	th_hsm_teardown(&hsm);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(guest);
	X509_free(rsa_cert);
	return 0;
}

#define NEED_HSM()                                                                                 \
	do {                                                                                       \
		if (!hsm.dir[0]) {                                                                 \
			print_message("SoftHSMv2, softhsm2-util or pkcs11-tool missing\n");        \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* A pkcs11 store with the given settings (NULL: left out); *ret is what
 * open() said. */
static struct broker_keystore *store_with(const char *module, const char *token,
					  const char *pin_file, int *ret, char *err, size_t errlen)
{
	struct broker_keystore *ks = NULL;

	err[0] = '\0';
	assert_int_equal(broker_keystore_new("pkcs11", &ks, err, errlen), 0);
	if (module)
		assert_int_equal(broker_keystore_set(ks, "module", module, err, errlen), 0);
	if (token)
		assert_int_equal(broker_keystore_set(ks, "token", token, err, errlen), 0);
	if (pin_file)
		assert_int_equal(broker_keystore_set(ks, "pin_file", pin_file, err, errlen), 0);
	*ret = broker_keystore_open(ks, err, errlen);
	return ks;
}

static struct broker_keystore *good_store(void)
{
	char err[512];
	int r;
	struct broker_keystore *ks =
	    store_with(TH_SOFTHSM_SO, TH_TOKEN, hsm.pin_file, &r, err, sizeof(err));

	if (r != 0)
		fail_msg("open: %s", err);
	return ks;
}

/* What the file store computes for the same key: type, CKA_ID, SPKI. */
static void expect_public(const struct broker_key *k, EVP_PKEY *key, const char *type)
{
	unsigned char *spki = NULL;
	char id[41];
	int n = i2d_PUBKEY(key, &spki);
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits;
	int bitslen;
	unsigned char md[20];

	assert_true(n > 0);
	assert_string_equal(k->type, type);
	assert_int_equal(k->spki_len, (size_t)n);
	assert_memory_equal(k->spki_der, spki, (size_t)n);
	assert_true(X509_PUBKEY_set(&xpk, key));
	assert_true(X509_PUBKEY_get0_param(NULL, &bits, &bitslen, NULL, xpk));
	SHA1(bits, (size_t)bitslen, md);
	ak_hex_encode(md, sizeof(md), id);
	assert_string_equal(k->id, id);
	/* the broker holds no private key byte */
	assert_null(k->pkcs8.data);
	assert_int_equal(k->pkcs8.len, 0);
	assert_true(k->store_ref != 0);
	X509_PUBKEY_free(xpk);
	OPENSSL_free(spki);
}

static void test_fetch_public_metadata(void **state)
{
	struct broker_keystore *ks;
	struct broker_keyset set = {0};
	unsigned char *der = NULL;
	char err[512] = "";
	int n;

	(void)state;
	NEED_HSM();
	ks = good_store();
	assert_true(broker_keystore_wraps(ks));
	/* SoftHSMv2 wraps with OAEP SHA-1 only: open() found that out */
	assert_string_equal(broker_keystore_wrap_alg(ks), AK_HSMENV_ALG_OAEP);
	if (broker_keystore_fetch(ks, "web", &set, err, sizeof(err)) != 0)
		fail_msg("fetch: %s", err);
	assert_int_equal(set.n, 2);
	/* sorted by label, the "web/" prefix gone */
	assert_string_equal(set.keys[0].label, "ec");
	assert_string_equal(set.keys[1].label, "tls");
	expect_public(&set.keys[0], ec_key, "EC");
	expect_public(&set.keys[1], rsa_key, "RSA");
	assert_null(set.keys[0].cert_der);
	n = i2d_X509(rsa_cert, &der);
	assert_int_equal(set.keys[1].cert_len, (size_t)n);
	assert_memory_equal(set.keys[1].cert_der, der, (size_t)n);
	OPENSSL_free(der);
	broker_keyset_clear(&set);
	/* another broker token sees only its own */
	assert_int_equal(broker_keystore_fetch(ks, "other", &set, err, sizeof(err)), 0);
	assert_int_equal(set.n, 1);
	assert_string_equal(set.keys[0].label, "x");
	broker_keyset_clear(&set);
	broker_keystore_free(ks);
}

static void test_fetch_refusals(void **state)
{
	static const struct {
		const char *token, *needle;
		int ret;
	} cases[] = {
	    {"nothing", "holds no private key labelled 'nothing/<label>'", -ENOENT},
	    {"web/", "holds no private key", -ENOENT},
	    {"locked", "'locked/k': CKA_EXTRACTABLE is false", -EINVAL},
	    {"nopub", "'nopub/k': no public key", -EINVAL},
	    {"badcert", "'badcert/k': the certificate with its CKA_ID is for another public key",
	     -EINVAL},
	};
	struct broker_keystore *ks;
	struct broker_keyset set = {0};
	char err[512];
	size_t i;

	(void)state;
	NEED_HSM();
	ks = good_store();
	for (i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		err[0] = '\0';
		assert_int_equal(broker_keystore_fetch(ks, cases[i].token, &set, err, sizeof(err)),
				 cases[i].ret);
		if (!strstr(err, cases[i].needle))
			fail_msg("token %s: '%s' lacks '%s'", cases[i].token, err, cases[i].needle);
		assert_int_equal(set.n, 0);
		assert_null(set.shared);
	}
	broker_keystore_free(ks);
}

static void test_open_refusals(void **state)
{
	char bad_pin[600], open_pin[600], empty_pin[600], err[512];
	static const char *missing = "/nonexistent/libnothing.so";
	struct {
		const char *module, *token, *pin, *needle;
	} cases[] = {
	    {NULL, TH_TOKEN, hsm.pin_file, "module is required"},
	    {TH_SOFTHSM_SO, NULL, hsm.pin_file, "token is required"},
	    {TH_SOFTHSM_SO, TH_TOKEN, NULL, "pin_file is required"},
	    {missing, TH_TOKEN, hsm.pin_file, "module '/nonexistent/libnothing.so': cannot load"},
	    {TH_SOFTHSM_SO, "nosuch", hsm.pin_file, "token 'nosuch': no such token in module"},
	    {TH_SOFTHSM_SO, "pkcs11:token=nosuch", hsm.pin_file, "no such token"},
	    {TH_SOFTHSM_SO, "pkcs11:token=hsm;pin-value=1234", hsm.pin_file,
	     "the URI carries a PIN"},
	    {TH_SOFTHSM_SO, "pkcs11:%zz", hsm.pin_file, "not a PKCS#11 URI"},
	    {TH_SOFTHSM_SO, "a-label-that-is-longer-than-32-bytes", hsm.pin_file,
	     "at most 32 bytes"},
	    {TH_SOFTHSM_SO, TH_TOKEN, bad_pin, "the user PIN of pin_file"},
	    {TH_SOFTHSM_SO, TH_TOKEN, open_pin, "readable by group/others"},
	    {TH_SOFTHSM_SO, TH_TOKEN, empty_pin, "is empty"},
	    {TH_SOFTHSM_SO, TH_TOKEN, "/nonexistent/pin", "cannot read /nonexistent/pin"},
	};
	struct broker_keystore *ks;
	size_t i;
	int r;

	(void)state;
	NEED_HSM();
	snprintf(bad_pin, sizeof(bad_pin), "%s/bad.pin", hsm.dir);
	snprintf(open_pin, sizeof(open_pin), "%s/open.pin", hsm.dir);
	snprintf(empty_pin, sizeof(empty_pin), "%s/empty.pin", hsm.dir);
	assert_int_equal(tb_write_file(bad_pin, "9999\n", 0600), 0);
	assert_int_equal(tb_write_file(open_pin, TH_PIN "\n", 0644), 0);
	assert_int_equal(tb_write_file(empty_pin, "\n", 0600), 0);
	for (i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		ks =
		    store_with(cases[i].module, cases[i].token, cases[i].pin, &r, err, sizeof(err));
		assert_true(r < 0);
		if (!strstr(err, cases[i].needle))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
		broker_keystore_free(ks);
	}
	/* unknown keys and empty values are refused at set() */
	assert_int_equal(broker_keystore_new("pkcs11", &ks, err, sizeof(err)), 0);
	assert_int_equal(broker_keystore_set(ks, "dir", "/tmp", err, sizeof(err)), -ENOENT);
	assert_int_equal(broker_keystore_set(ks, "module", "", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "module must not be empty"));
	broker_keystore_free(ks);
	/* the token by URI, as p11-kit matches it */
	ks = store_with(TH_SOFTHSM_SO, "pkcs11:token=" TH_TOKEN ";manufacturer=SoftHSM%20project",
			hsm.pin_file, &r, err, sizeof(err));
	if (r != 0)
		fail_msg("URI: %s", err);
	broker_keystore_free(ks);
}

/* The envelope opened here with OpenSSL alone (the module's decoder has
 * its own tests): RSA-OAEP with the alg's hash, then RFC 5649. */
static uint8_t *open_one(const struct broker_envelope *env, size_t i, size_t *len)
{
	const EVP_MD *md = strcmp(env->alg, AK_HSMENV_ALG_OAEP) == 0 ? EVP_sha1() : EVP_sha256();
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(guest, NULL);
	EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
	uint8_t kek[512], *out;
	size_t keklen = sizeof(kek);
	int n1 = 0, n2 = 0;

	assert_non_null(pc);
	assert_true(EVP_PKEY_decrypt_init(pc) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) > 0);
	assert_true(EVP_PKEY_decrypt(pc, kek, &keklen, env->ek, env->ek_len) > 0);
	assert_int_equal(keklen, AK_HSMENV_KEK_LEN);
	EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	assert_true(EVP_DecryptInit_ex(cc, EVP_aes_256_wrap_pad(), NULL, kek, NULL));
	out = malloc(env->wk_len[i] + 16);
	assert_true(EVP_DecryptUpdate(cc, out, &n1, env->wk[i], (int)env->wk_len[i]));
	assert_true(EVP_DecryptFinal_ex(cc, out + n1, &n2));
	*len = (size_t)(n1 + n2);
	EVP_CIPHER_CTX_free(cc);
	EVP_PKEY_CTX_free(pc);
	return out;
}

/* der: the PKCS#8 of want, then the zero bytes SoftHSM pads it with to a
 * multiple of 8 before the wrap (softhsm/SoftHSMv2#305), fewer than 8. */
static void expect_same_key(const uint8_t *der, size_t len, EVP_PKEY *want)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
	EVP_PKEY *got;

	assert_non_null(p8);
	assert_true((size_t)(der + len - p) < 8);
	for (; p < der + len; p++)
		assert_int_equal(*p, 0);
	got = EVP_PKCS82PKEY(p8);
	assert_non_null(got);
	assert_int_equal(EVP_PKEY_eq(got, want), 1);
	EVP_PKEY_free(got);
	PKCS8_PRIV_KEY_INFO_free(p8);
}

/* Session objects of class klass the application can see now. */
static CK_ULONG count_session_objects(CK_OBJECT_CLASS klass)
{
	CK_FUNCTION_LIST *f = p11_kit_module_load(TH_SOFTHSM_SO, P11_KIT_MODULE_UNMANAGED);
	CK_SLOT_ID slots[8];
	CK_ULONG ns = 8, n = 0, i;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &klass, sizeof(klass)}, {CKA_TOKEN, &no, sizeof(no)}};
	CK_OBJECT_HANDLE h[16];
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;

	assert_non_null(f);
	/* the store initialised it in this process already */
	assert_int_equal(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &ns), CKR_OK);
	for (i = 0; i < ns; i++) {
		assert_int_equal(f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
		if (memcmp(ti.label, TH_TOKEN " ", 4) == 0)
			break;
	}
	assert_true(i < ns);
	assert_int_equal(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
	assert_int_equal(f->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
	assert_int_equal(f->C_FindObjects(s, h, 16, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(f->C_CloseSession(s), CKR_OK);
	p11_kit_module_release(f);
	return n;
}

static void test_wrap_unwraps_to_the_keys(void **state)
{
	struct broker_keystore *ks;
	struct broker_keyset set = {0};
	struct broker_envelope env = {0}, again = {0};
	uint8_t *der;
	size_t len;
	char err[512] = "";

	(void)state;
	NEED_HSM();
	ks = good_store();
	assert_int_equal(broker_keystore_fetch(ks, "web", &set, err, sizeof(err)), 0);
	if (broker_keystore_wrap(ks, &set, guest, &env, err, sizeof(err)) != 0)
		fail_msg("wrap: %s", err);
	assert_string_equal(env.alg, AK_HSMENV_ALG_OAEP);
	assert_int_equal(env.ek_len, 3072 / 8);
	assert_int_equal(env.n, 2);
	der = open_one(&env, 0, &len);
	expect_same_key(der, len, ec_key);
	OPENSSL_cleanse(der, len);
	free(der);
	der = open_one(&env, 1, &len);
	expect_same_key(der, len, rsa_key);
	OPENSSL_cleanse(der, len);
	free(der);
	/* a fresh AES key per release, gone when the release is made */
	assert_int_equal(broker_keystore_wrap(ks, &set, guest, &again, err, sizeof(err)), 0);
	assert_string_equal(again.alg, AK_HSMENV_ALG_OAEP);
	assert_true(again.wk_len[1] == env.wk_len[1]);
	assert_true(memcmp(again.wk[1], env.wk[1], env.wk_len[1]) != 0);
	assert_int_equal(count_session_objects(CKO_SECRET_KEY), 0);
	assert_int_equal(count_session_objects(CKO_PUBLIC_KEY), 0);
	broker_envelope_clear(&env);
	broker_envelope_clear(&again);
	broker_keyset_clear(&set);
	broker_keystore_free(ks);
}

static void test_wrap_refusals(void **state)
{
	struct broker_keystore *ks, *file = NULL;
	struct broker_keyset set = {0}, bad = {0};
	struct broker_envelope env = {0};
	struct broker_key *copy;
	EVP_PKEY *ec = tb_gen_ec("P-384"), *small = EVP_RSA_gen(1024);
	char err[512] = "";

	(void)state;
	NEED_HSM();
	ks = good_store();
	assert_int_equal(broker_keystore_fetch(ks, "web", &set, err, sizeof(err)), 0);
	/* the guest's key must be RSA of 2048 bits or more */
	assert_int_equal(broker_keystore_wrap(ks, &set, ec, &env, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not an RSA key of 2048 to 8192 bits"));
	assert_int_equal(broker_keystore_wrap(ks, &set, small, &env, err, sizeof(err)), -EINVAL);
	assert_int_equal(broker_keystore_wrap(ks, &set, NULL, &env, err, sizeof(err)), -EINVAL);
	assert_null(env.ek);
	/* a key gone from the HSM between fetch and wrap: the call that failed */
	copy = calloc(1, sizeof(*copy));
	assert_non_null(copy);
	copy->label = strdup("gone");
	copy->store_ref = 0x7fff0000;
	assert_int_equal(broker_keyset_adopt(&bad, copy, 1), 0);
	assert_int_equal(broker_keystore_wrap(ks, &bad, guest, &env, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "wrapping key 'gone' (CKM_AES_KEY_WRAP_PAD)"));
	assert_null(env.ek);
	assert_null(env.wk);
	assert_int_equal(count_session_objects(CKO_SECRET_KEY), 0);
	/* the file store does not wrap */
	assert_int_equal(broker_keystore_new("file", &file, err, sizeof(err)), 0);
	assert_false(broker_keystore_wraps(file));
	assert_null(broker_keystore_wrap_alg(file));
	assert_int_equal(broker_keystore_wrap(file, &set, guest, &env, err, sizeof(err)), -ENOTSUP);
	broker_keystore_free(file);
	broker_keyset_clear(&bad);
	broker_keyset_clear(&set);
	broker_keystore_free(ks);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_public_metadata),
	    cmocka_unit_test(test_fetch_refusals),
	    cmocka_unit_test(test_open_refusals),
	    cmocka_unit_test(test_wrap_unwraps_to_the_keys),
	    cmocka_unit_test(test_wrap_refusals),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
