/* SPDX-License-Identifier: Apache-2.0 */
/* Shared core: encodings, binding, thumbprint, and the JWE profile. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jose/jose.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "attestkey/common.h"
#include "attestkey/jwe.h"
#include "attestkey/pkey.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"

static void test_hex(void **state)
{
	uint8_t b[3];
	char s[7];

	(void)state;
	assert_int_equal(ak_hex_decode("0aFf10", b, 3), 0);
	ak_hex_encode(b, 3, s);
	assert_string_equal(s, "0aff10");
	assert_int_equal(ak_hex_decode("0aFf1", b, 3), -EINVAL);  /* short */
	assert_int_equal(ak_hex_decode("0aFf1g", b, 3), -EINVAL); /* not hex */
	assert_int_equal(ak_hex_decode(NULL, b, 3), -EINVAL);
}

static void test_parsers(void **state)
{
	uint64_t v;
	bool b;

	(void)state;
	assert_int_equal(ak_parse_u64("0x30000", &v), 0);
	assert_int_equal(v, 0x30000);
	assert_int_equal(ak_parse_u64("42", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(ak_parse_u64("-1", &v), -EINVAL);
	assert_int_equal(ak_parse_u64("12abc", &v), -EINVAL);
	assert_int_equal(ak_parse_u64("", &v), -EINVAL);
	assert_int_equal(ak_parse_u64("99999999999999999999999", &v), -EINVAL);
	assert_int_equal(ak_parse_bool("Yes", &b), 0);
	assert_true(b);
	assert_int_equal(ak_parse_bool("off", &b), 0);
	assert_false(b);
	assert_int_equal(ak_parse_bool("maybe", &b), -EINVAL);
}

static void test_b64url(void **state)
{
	const uint8_t in[] = { 0xfb, 0xff, 0x00, 0x01 };
	uint8_t *out;
	size_t len = 0;
	char *s;

	(void)state;
	s = ak_b64url_encode(in, sizeof(in));
	assert_non_null(s);
	assert_string_equal(s, "-_8AAQ");
	out = ak_b64url_decode(s, &len);
	assert_non_null(out);
	assert_int_equal(len, sizeof(in));
	assert_memory_equal(out, in, sizeof(in));
	free(out);
	free(s);
	assert_null(ak_b64url_decode("not base64!", &len));
}

/* JOSE's base64url, decoded by OpenSSL: every rule libjose applied. */
static void test_b64url_rules(void **state)
{
	static const struct {
		const char *in;
		const char *hex; /* NULL: refused */
	} cases[] = {
		{"", ""},
		{"AA", "00"},
		{"AAE", "0001"},
		{"AAEC", "000102"},
		{"-_-_", "fbffbf"},
		{"_w", "ff"},
		{"AB", NULL},	 /* low 4 bits of the last character set */
		{"AAF", NULL},	 /* low 2 bits set */
		{"A", NULL},	 /* one character carries no byte */
		{"AAECA", NULL}, /* nor does a fifth */
		{"AA==", NULL},	 /* padding */
		{"+/8A", NULL},	 /* the standard alphabet */
		{"AA EC", NULL}, /* whitespace */
		{" AAEC", NULL},
		{"AAEC\n", NULL},
		{"AA.C", NULL},
		{"AA\xc3\xa9", NULL}, /* not ASCII */
		{"AA\x7f", NULL},
	};
	char hex[64];

	(void)state;
	for (size_t i = 0; i < AK_ARRAY_SIZE(cases); i++) {
		size_t len = 99;
		uint8_t *out = ak_b64url_decode(cases[i].in, &len);

		if (!cases[i].hex) {
			if (out)
				fail_msg("'%s' was accepted", cases[i].in);
			continue;
		}
		if (!out)
			fail_msg("'%s' was refused", cases[i].in);
		ak_hex_encode(out, len, hex);
		assert_string_equal(hex, cases[i].hex);
		free(out);
	}
	assert_null(ak_b64url_decode(NULL, &(size_t){0}));
}

static void test_reasons(void **state)
{
	int r;

	(void)state;
	for (r = 0; r < AK_R_COUNT_; r++)
		assert_int_equal(ak_reason_from_name(ak_reason_name((enum ak_reason)r)), r);
	assert_string_equal(ak_reason_name(AK_R_NONCE_EXPIRED), "nonce_expired");
	assert_int_equal(ak_reason_http_status(AK_R_MEASUREMENT_NOT_ALLOWED), 403);
	assert_int_equal(ak_reason_http_status(AK_R_BAD_REQUEST), 400);
	assert_int_equal(ak_reason_from_name("no such reason"), AK_R_INTERNAL);
}

/* RFC 7638 §3.1 example: the thumbprint of its RSA key. */
static void test_thumbprint_rfc7638(void **state)
{
	static const char *jwk_json =
		"{\"kty\":\"RSA\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\","
		"\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\"}";
	static const char *expect = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	uint8_t thp[AK_THUMBPRINT_LEN];
	json_t *jwk = json_loads(jwk_json, 0, NULL);
	char *s;

	(void)state;
	assert_non_null(jwk);
	assert_int_equal(ak_jwk_thumbprint(jwk, thp), 0);
	s = ak_b64url_encode(thp, sizeof(thp));
	assert_string_equal(s, expect);
	free(s);
	json_decref(jwk);
	assert_int_equal(ak_jwk_thumbprint(NULL, thp), -EINVAL);
}

/* Known answer computed independently (Python hashlib) from the formula in
 * docs/protocol.md §3, and every input changes the result. */
static void test_binding(void **state)
{
	static const char *kat = "47e7420dbec2a1c45c44aca05eec06454a6b6feaff83a75df818e2441a6b5dd"
				 "afc422c9ee4727345fc70ab5e7a417a44164f5df38139da7fb88d124365e7e93d";
	uint8_t thp[AK_THUMBPRINT_LEN], b[AK_BINDING_LEN], b2[AK_BINDING_LEN];
	char hex[2 * AK_BINDING_LEN + 1];
	int i;

	(void)state;
	for (i = 0; i < AK_THUMBPRINT_LEN; i++)
		thp[i] = (uint8_t)i;
	assert_int_equal(ak_binding_compute("AAAA", "web", thp, b), 0);
	ak_hex_encode(b, sizeof(b), hex);
	assert_string_equal(hex, kat);
	assert_int_equal(ak_binding_compute("AAAB", "web", thp, b2), 0);
	assert_memory_not_equal(b, b2, sizeof(b));
	assert_int_equal(ak_binding_compute("AAAA", "weg", thp, b2), 0);
	assert_memory_not_equal(b, b2, sizeof(b));
	thp[31] ^= 1;
	assert_int_equal(ak_binding_compute("AAAA", "web", thp, b2), 0);
	assert_memory_not_equal(b, b2, sizeof(b));
	assert_int_equal(ak_binding_compute("", "web", thp, b2), -EINVAL);
	assert_int_equal(ak_binding_compute("AAAA", NULL, thp, b2), -EINVAL);
}

static const uint8_t secret_pt[] = "this stands in for a PKCS#8 key";

static void test_jwe_roundtrip(void **state)
{
	json_t *priv = ak_jwk_generate_p384(), *pub, *jwe = NULL, *hdr;
	struct ak_secbuf out = { 0 };

	(void)state;
	assert_non_null(priv);
	pub = ak_jwk_public(priv);
	assert_non_null(pub);
	assert_null(json_object_get(pub, "d"));
	assert_int_equal(ak_jwe_encrypt(pub, secret_pt, sizeof(secret_pt), &jwe), 0);
	hdr = jose_jwe_hdr(jwe, NULL);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ECDH-ES");
	assert_string_equal(json_string_value(json_object_get(hdr, "enc")), "A256GCM");
	json_decref(hdr);
	assert_int_equal(ak_jwe_decrypt(priv, jwe, &out), 0);
	assert_int_equal(out.len, sizeof(secret_pt));
	assert_memory_equal(out.data, secret_pt, sizeof(secret_pt));
	assert_true(CRYPTO_secure_allocated(out.data));
	ak_secbuf_clear(&out);
	assert_null(out.data);
	json_decref(jwe);
	json_decref(pub);
	ak_jwk_free_secret(priv);
}

static json_t *encrypt_to(json_t **priv_out)
{
	json_t *priv = ak_jwk_generate_p384(), *pub = ak_jwk_public(priv), *jwe = NULL;

	assert_int_equal(ak_jwe_encrypt(pub, secret_pt, sizeof(secret_pt), &jwe), 0);
	json_decref(pub);
	*priv_out = priv;
	return jwe;
}

static void flip_b64_member(json_t *jwe, const char *member)
{
	const char *v = json_string_value(json_object_get(jwe, member));
	size_t len = 0;
	uint8_t *raw = ak_b64url_decode(v, &len);
	char *enc;

	assert_non_null(raw);
	assert_true(len > 0);
	raw[0] ^= 0x01;
	enc = ak_b64url_encode(raw, len);
	json_object_set_new(jwe, member, json_string(enc));
	free(enc);
	free(raw);
}

/* A tampered ciphertext or tag, or another key, leaves no partial plaintext. */
static void test_jwe_refusals(void **state)
{
	static const char *members[] = { "ciphertext", "tag", "iv" };
	struct ak_secbuf out = { 0 };
	json_t *priv, *jwe, *other;
	size_t i;

	(void)state;
	for (i = 0; i < AK_ARRAY_SIZE(members); i++) {
		jwe = encrypt_to(&priv);
		flip_b64_member(jwe, members[i]);
		assert_int_equal(ak_jwe_decrypt(priv, jwe, &out), -EINVAL);
		assert_null(out.data);
		assert_int_equal(out.len, 0);
		json_decref(jwe);
		ak_jwk_free_secret(priv);
	}

	jwe = encrypt_to(&priv);
	other = ak_jwk_generate_p384();
	assert_int_equal(ak_jwe_decrypt(other, jwe, &out), -EINVAL);
	assert_null(out.data);
	ak_jwk_free_secret(other);

	/* a header outside the profile is refused before any decryption */
	json_object_set_new(jwe, "header", json_pack("{s:s}", "zip", "DEF"));
	assert_int_equal(ak_jwe_decrypt(priv, jwe, &out), -EINVAL);
	json_object_del(jwe, "header");
	json_object_del(jwe, "ciphertext");
	assert_int_equal(ak_jwe_decrypt(priv, jwe, &out), -EINVAL);
	other = json_string("x");
	assert_int_equal(ak_jwe_decrypt(priv, other, &out), -EINVAL);
	json_decref(other);
	assert_null(out.data);
	json_decref(jwe);
	ak_jwk_free_secret(priv);
}

static void test_jwe_wrong_alg(void **state)
{
	json_t *priv = ak_jwk_generate_p384(), *pub = ak_jwk_public(priv);
	json_t *jwe = json_pack("{s:{s:s,s:s}}", "protected", "alg", "ECDH-ES", "enc", "A128GCM");
	struct ak_secbuf out = { 0 };

	(void)state;
	assert_true(jose_jwe_enc(NULL, jwe, NULL, pub, secret_pt, sizeof(secret_pt)));
	assert_int_equal(ak_jwe_decrypt(priv, jwe, &out), -EINVAL);
	assert_null(out.data);
	json_decref(jwe);
	json_decref(pub);
	ak_jwk_free_secret(priv);
}

/* Our ECDH-ES (src/common/jwe.c) and libjose's own agree both ways. */
static void test_jwe_libjose_interop(void **state)
{
	json_t *priv = ak_jwk_generate_p384(), *pub = ak_jwk_public(priv), *jwe = NULL;
	struct ak_secbuf out = { 0 };
	size_t ptl = 0;
	void *pt;

	(void)state;
	assert_int_equal(ak_jwe_encrypt(pub, secret_pt, sizeof(secret_pt), &jwe), 0);
	pt = jose_jwe_dec(NULL, jwe, NULL, priv, &ptl);
	assert_non_null(pt);
	assert_int_equal(ptl, sizeof(secret_pt));
	assert_memory_equal(pt, secret_pt, sizeof(secret_pt));
	free(pt);
	json_decref(jwe);

	jwe = json_pack("{s:{s:s,s:s}}", "protected", "alg", "ECDH-ES", "enc", "A256GCM");
	assert_true(jose_jwe_enc(NULL, jwe, NULL, pub, secret_pt, sizeof(secret_pt)));
	assert_int_equal(ak_jwe_decrypt(priv, jwe, &out), 0);
	assert_int_equal(out.len, sizeof(secret_pt));
	assert_memory_equal(out.data, secret_pt, sizeof(secret_pt));
	ak_secbuf_clear(&out);
	json_decref(jwe);
	json_decref(pub);
	ak_jwk_free_secret(priv);
}

/* The EVP_PKEY interface the module and the broker use, and its refusals:
 * an "epk" missing, on another curve, or off the curve; "apu"/"apv". */
static void test_jwe_pkey(void **state)
{
	EVP_PKEY *eph = ak_ec_p384_generate(), *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t *pub = ak_jwk_from_pkey_public(eph), *jwe = NULL, *p256jwk, *bad;
	struct ak_secbuf out = { 0 };
	EVP_PKEY *recipient = ak_pkey_from_jwk_p384(pub);

	(void)state;
	assert_non_null(eph);
	assert_non_null(pub);
	assert_null(json_object_get(pub, "d"));
	assert_non_null(recipient);
	assert_int_equal(ak_jwe_encrypt_to(recipient, NULL, secret_pt, sizeof(secret_pt), &jwe, NULL), 0);
	assert_int_equal(ak_jwe_decrypt_with(eph, jwe, &out, NULL), 0);
	assert_memory_equal(out.data, secret_pt, sizeof(secret_pt));
	assert_true(CRYPTO_secure_allocated(out.data));
	ak_secbuf_clear(&out);
	/* a P-256 recipient, or a P-256 epk, is not in the profile */
	assert_int_equal(ak_jwe_encrypt_to(p256, NULL, secret_pt, sizeof(secret_pt), &bad, NULL), -EINVAL);
	assert_int_equal(ak_jwe_encrypt_to(recipient, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
					   secret_pt, sizeof(secret_pt), &bad, NULL),
			 -EINVAL); /* the epk is freed */
	p256jwk = ak_jwk_from_pkey_public(p256);
	assert_null(ak_pkey_from_jwk_p384(p256jwk));
	/* epk on P-256, epk off the curve, epk missing, apu */
	bad = json_deep_copy(jwe);
	json_object_set(json_object_get(bad, "header"), "epk", p256jwk);
	assert_int_equal(ak_jwe_decrypt_with(eph, bad, &out, NULL), -EINVAL);
	json_object_set_new(json_object_get(json_object_get(bad, "header"), "epk"), "crv",
			    json_string("P-384"));
	assert_int_equal(ak_jwe_decrypt_with(eph, bad, &out, NULL), -EINVAL);
	json_object_del(json_object_get(bad, "header"), "epk");
	assert_int_equal(ak_jwe_decrypt_with(eph, bad, &out, NULL), -EINVAL);
	json_decref(bad);
	/* a P-384 point with one bit of y flipped is off the curve */
	bad = json_deep_copy(jwe);
	{
		json_t *epk = json_object_get(json_object_get(bad, "header"), "epk");
		size_t ylen = 0;
		uint8_t *yraw = ak_b64url_decode(json_string_value(json_object_get(epk, "y")), &ylen);
		char *ynew;

		assert_non_null(yraw);
		assert_int_equal(ylen, 48);
		yraw[47] ^= 1;
		ynew = ak_b64url_encode(yraw, ylen);
		json_object_set_new(epk, "y", json_string(ynew));
		assert_null(ak_pkey_from_jwk_p384(epk));
		free(ynew);
		free(yraw);
	}
	assert_int_equal(ak_jwe_decrypt_with(eph, bad, &out, NULL), -EINVAL);
	json_decref(bad);
	bad = json_deep_copy(jwe);
	json_object_set_new(json_object_get(bad, "header"), "apu", json_string("QQ"));
	assert_int_equal(ak_jwe_decrypt_with(eph, bad, &out, NULL), -EINVAL);
	assert_null(out.data);
	json_decref(bad);
	json_decref(p256jwk);
	json_decref(jwe);
	json_decref(pub);
	EVP_PKEY_free(recipient);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(eph);
}

/* ---- issue 8 item 20: the JWE core reports, its callers log ------------ */

static void count_line(enum ak_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(*(int *)arg)++;
}

/* Every failure of ak_jwe_encrypt_to / ak_jwe_decrypt_with comes back as a
 * reason and writes no log line: the caller, which knows the token and the
 * key, writes the one line (release.c, broker/handler.c). */
static void test_jwe_reasons_not_logged(void **state)
{
	EVP_PKEY *eph = ak_ec_p384_generate(), *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t *pub = ak_jwk_from_pkey_public(eph), *jwe = NULL, *bad = NULL;
	EVP_PKEY *recipient = ak_pkey_from_jwk_p384(pub);
	struct ak_secbuf out = { 0 };
	const char *why = "unset";
	int lines = 0;
	char *ct;

	(void)state;
	assert_non_null(recipient);
	ak_log_set_sink(count_line, &lines);
	/* success: no reason */
	assert_int_equal(ak_jwe_encrypt_to(recipient, NULL, secret_pt, sizeof(secret_pt), &jwe, &why), 0);
	assert_null(why);
	/* a recipient on another curve */
	assert_int_equal(ak_jwe_encrypt_to(p256, NULL, secret_pt, sizeof(secret_pt), &bad, &why),
			 -EINVAL);
	assert_non_null(why);
	assert_non_null(strstr(why, "P-384"));
	/* a tampered ciphertext: the tag does not verify */
	bad = json_deep_copy(jwe);
	ct = strdup(json_string_value(json_object_get(bad, "ciphertext")));
	ct[0] = ct[0] == 'A' ? 'B' : 'A';
	json_object_set_new(bad, "ciphertext", json_string(ct));
	free(ct);
	why = NULL;
	assert_int_equal(ak_jwe_decrypt_with(eph, bad, &out, &why), -EINVAL);
	assert_string_equal(why, "JWE authentication failed (tampered or wrong key)");
	assert_null(out.data);
	json_decref(bad);
	/* a header outside the profile, and no JWE at all */
	bad = json_deep_copy(jwe);
	json_object_set_new(json_object_get(bad, "header"), "apu", json_string("QQ"));
	why = NULL;
	assert_int_equal(ak_jwe_decrypt_with(eph, bad, &out, &why), -EINVAL);
	assert_non_null(strstr(why, "apu"));
	json_decref(bad);
	why = NULL;
	assert_int_equal(ak_jwe_decrypt_with(eph, json_object_get(jwe, "ciphertext"), &out, &why),
			 -EINVAL);
	assert_non_null(why);
	ak_log_set_sink(NULL, NULL);
	assert_int_equal(lines, 0);
	/* the sink sees lines when there are some */
	ak_log_set_sink(count_line, &lines);
	ak_log(AK_LOG_ERR, "one line");
	ak_log_set_sink(NULL, NULL);
	assert_int_equal(lines, 1);
	json_decref(jwe);
	json_decref(pub);
	EVP_PKEY_free(recipient);
	EVP_PKEY_free(eph);
	EVP_PKEY_free(p256);
}

static void keep_line(enum ak_log_level level, const char *line, void *arg)
{
	(void)level;
	snprintf(arg, 256, "%s", line);
}

/* A string that reaches a log line cannot make a second one: a newline, a
 * carriage return or an escape in an argument (here as a hostile peer's
 * message would carry it) comes out as '?'; UTF-8 is kept. */
static void test_log_one_line(void **state)
{
	char seen[256] = "";

	(void)state;
	ak_log_set_sink(keep_line, seen);
	ak_log(AK_LOG_ERR, "broker said: %s", "denied\nattestkey: key released\r\x1b[2J\x7f");
	assert_string_equal(seen, "broker said: denied?attestkey: key released??[2J?");
	ak_log(AK_LOG_ERR, "label '%s'", "cl\xc3\xa9 \xe2\x82\xac");
	assert_string_equal(seen, "label 'cl\xc3\xa9 \xe2\x82\xac'");
	ak_log_set_sink(NULL, NULL);
}

/* The P-256 PKCS#8 DER of a new key, in the secure heap, with where its
 * scalar and its public point sit in it. */
static struct ak_secbuf ec_pkcs8(EVP_PKEY **key, size_t *d_at, size_t *pub_at)
{
	struct ak_secbuf b = { 0 };
	PKCS8_PRIV_KEY_INFO *p8;
	unsigned char *der = NULL, d[32], pub[65];
	BIGNUM *bn = NULL;
	size_t publen = 0;
	int len;

	*key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(*key);
	p8 = EVP_PKEY2PKCS8(*key);
	len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	assert_true(len > 0);
	assert_int_equal(ak_secbuf_append(&b, der, (size_t)len), 0);
	OPENSSL_clear_free(der, (size_t)len);
	PKCS8_PRIV_KEY_INFO_free(p8);
	assert_true(EVP_PKEY_get_bn_param(*key, OSSL_PKEY_PARAM_PRIV_KEY, &bn));
	assert_int_equal(BN_bn2binpad(bn, d, sizeof(d)), 32);
	BN_clear_free(bn);
	assert_true(EVP_PKEY_get_octet_string_param(*key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
						    sizeof(pub), &publen));
	assert_int_equal(publen, sizeof(pub));
	*d_at = (size_t)((uint8_t *)memmem(b.data, b.len, d, sizeof(d)) - b.data);
	*pub_at = (size_t)((uint8_t *)memmem(b.data, b.len, pub, sizeof(pub)) - b.data);
	OPENSSL_cleanse(d, sizeof(d));
	return b;
}

/* Every refusal of the in-place PKCS#8 decoder (src/common/pkey.c). */
/* The same with the curves' parameters kept, as the broker runs. */
static void test_jwe_pkey_kept(void **state)
{
	ak_ec_params_keep();
	test_jwe_pkey(state);
	ak_ec_params_drop();
}

static void test_privkey_refusals(void **state)
{
	struct ak_privkey *k = NULL;
	struct ak_secbuf a, b;
	EVP_PKEY *ka, *kb;
	size_t da, pa, db, pb;
	uint8_t *t;

	(void)state;
	a = ec_pkcs8(&ka, &da, &pa);
	b = ec_pkcs8(&kb, &db, &pb);
	/* the good key decodes; its public key is the generator's */
	assert_int_equal(ak_privkey_from_pkcs8(a.data, a.len, &k), AK_PKEY_OK);
	assert_int_equal(k->type, EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_eq(k->pub, ka), 1);
	ak_privkey_unref(k);
	/* truncated, or with a byte after it */
	assert_int_equal(ak_privkey_from_pkcs8(a.data, a.len - 1, &k), AK_PKEY_NOT_PKCS8);
	assert_null(k);
	t = OPENSSL_secure_zalloc(a.len + 1);
	memcpy(t, a.data, a.len);
	assert_int_equal(ak_privkey_from_pkcs8(t, a.len + 1, &k), AK_PKEY_NOT_PKCS8);
	/* a public point that is not the scalar's */
	memcpy(t, a.data, a.len);
	memcpy(t + pa, b.data + pb, 65);
	assert_int_equal(ak_privkey_from_pkcs8(t, a.len, &k), AK_PKEY_BAD_KEY);
	assert_null(k);
	/* a zero scalar */
	memcpy(t, a.data, a.len);
	memset(t + da, 0, 32);
	assert_int_equal(ak_privkey_from_pkcs8(t, a.len, &k), AK_PKEY_BAD_KEY);
	/* a scalar not below the group order (all ones) */
	memset(t + da, 0xff, 32);
	assert_int_equal(ak_privkey_from_pkcs8(t, a.len, &k), AK_PKEY_BAD_KEY);
	OPENSSL_secure_clear_free(t, a.len + 1);
	ak_secbuf_clear(&a);
	ak_secbuf_clear(&b);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}

/* The PKCS#8 of an RSA key made from rsa's numbers with number i (in the
 * order of names below) plus 2: a key whose numbers do not make one key
 * (EVP_PKEY_fromdata does not check them); i < 0: unchanged. */
static enum ak_pkey_err rsa_with_changed(EVP_PKEY *rsa, int i)
{
	static const char *const names[] = {
	    OSSL_PKEY_PARAM_RSA_N,	   OSSL_PKEY_PARAM_RSA_E,
	    OSSL_PKEY_PARAM_RSA_D,	   OSSL_PKEY_PARAM_RSA_FACTOR1,
	    OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
	    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn[8] = {NULL};
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;
	PKCS8_PRIV_KEY_INFO *p8;
	struct ak_privkey *priv = NULL;
	struct ak_secbuf b = {0};
	unsigned char *der = NULL;
	enum ak_pkey_err ret;
	int len;

	assert_non_null(bld);
	for (int j = 0; j < 8; j++) {
		assert_true(EVP_PKEY_get_bn_param(rsa, names[j], &bn[j]));
		if (j == i)
			assert_true(BN_add_word(bn[j], 2));
		assert_true(OSSL_PARAM_BLD_push_BN(bld, names[j], bn[j]));
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params), 1);
	p8 = EVP_PKEY2PKCS8(k);
	len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	assert_true(len > 0);
	assert_int_equal(ak_secbuf_append(&b, der, (size_t)len), 0);
	ret = ak_privkey_from_pkcs8(b.data, b.len, &priv);
	assert_true(ret == AK_PKEY_OK ? priv != NULL : priv == NULL);
	ak_privkey_unref(priv);
	ak_secbuf_clear(&b);
	OPENSSL_clear_free(der, (size_t)len);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	for (int j = 0; j < 8; j++)
		BN_clear_free(bn[j]);
	return ret;
}

/* An RSA key whose numbers do not make one key is refused (found by
 * fuzz_broker_key: d2i_RSAPrivateKey checks none of them). */
static void test_privkey_rsa_inconsistent(void **state)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	(void)state;
	assert_non_null(rsa);
	assert_int_equal(rsa_with_changed(rsa, -1), AK_PKEY_OK);
	/* n, e, d, p, q, dP, dQ, qInv each changed alone */
	for (int i = 0; i < 8; i++)
		assert_int_equal(rsa_with_changed(rsa, i), AK_PKEY_BAD_KEY);
	EVP_PKEY_free(rsa);
}

static void *parse_plain(void *arg)
{
	return json_loads(arg, 0, NULL);
}

/* JSON holding a secret is parsed into the secure heap, and only inside
 * the window, only on the thread that opened it. */
static void test_json_secret(void **state)
{
	const char *doc = "{\"key\": \"-----BEGIN PRIVATE KEY-----x\", \"n\": [1, 2]}";
	char err[128] = "";
	json_t *j, *plain;
	pthread_t th;
	void *other;

	(void)state;
	j = ak_json_loadb_secret(doc, strlen(doc), err, sizeof(err));
	assert_non_null(j);
	assert_true(CRYPTO_secure_allocated(json_string_value(json_object_get(j, "key"))));
	assert_true(CRYPTO_secure_allocated(j));
	/* outside the window, and on another thread inside it: malloc */
	plain = json_loads(doc, 0, NULL);
	assert_non_null(plain);
	assert_false(CRYPTO_secure_allocated(json_string_value(json_object_get(plain, "key"))));
	assert_int_equal(ak_json_secure_begin(), 0);
	assert_int_equal(pthread_create(&th, NULL, parse_plain, (void *)doc), 0);
	assert_int_equal(pthread_join(th, &other), 0);
	ak_json_secure_end();
	assert_non_null(other);
	assert_false(CRYPTO_secure_allocated(other));
	/* freed from another thread than the one that parsed: still wiped */
	json_decref(other);
	json_decref(plain);
	json_decref(j);
	/* a parse error names where, never the text */
	assert_null(ak_json_loadb_secret("{\"key\": SECRETSECRET}", 22, err, sizeof(err)));
	assert_non_null(strstr(err, "not JSON (line 1"));
	assert_null(strstr(err, "SECRET"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_b64url_rules),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_thumbprint_rfc7638),
		cmocka_unit_test(test_binding),
		cmocka_unit_test(test_jwe_roundtrip),
		cmocka_unit_test(test_jwe_refusals),
		cmocka_unit_test(test_jwe_wrong_alg),
		cmocka_unit_test(test_jwe_libjose_interop),
		cmocka_unit_test(test_jwe_pkey),
		cmocka_unit_test(test_jwe_pkey_kept),
		cmocka_unit_test(test_privkey_refusals),
		cmocka_unit_test(test_privkey_rsa_inconsistent),
		cmocka_unit_test(test_jwe_reasons_not_logged),
		cmocka_unit_test(test_log_one_line),
		cmocka_unit_test(test_json_secret),
	};
	int rc;

	ak_log_init("test");
	if (ak_secure_init() < 0)
		return 1;
	cmocka_set_message_output(CM_OUTPUT_TAP);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	OPENSSL_cleanup(); /* LeakSanitizer: release OpenSSL's global state */
	return rc;
}
