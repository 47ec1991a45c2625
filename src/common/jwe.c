/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JWE profile of docs/protocol.md §4, with libjose. Decryption streams
 * the plaintext into the OpenSSL secure heap through a jose_io_t sink and
 * accepts it only once the GCM tag has verified (jose_io_t.done()).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jose/jose.h>
#include <jose/openssl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "attestkey/jwe.h"
#include "attestkey/protocol.h"

#define PROFILE_ALG "ECDH-ES"
#define PROFILE_ENC "A256GCM"
#define PROFILE_KEY_BYTES 32

/*
 * ECDH-ES key agreement (RFC 7518 section 4.6) on EVP_PKEYs. libjose's
 * jose_jwe_enc()/jose_jwe_dec_jwk() convert every JWK to an EC_KEY and run
 * EC_KEY_check_key() on each call: two or three extra P-384 scalar
 * multiplications per key released, most of a login's CPU time
 * (docs/performance.md). Here each key is converted once per login (the
 * broker checks the recipient once per release), and the content
 * encryption, the JWE structure and its serialisation stay with libjose
 * (jose_jwe_enc_cek / jose_jwe_dec_cek_io). The unit tests check both
 * directions against libjose's own ECDH-ES.
 *
 * The direct-agreement CEK is Concat KDF (SP 800-56A; OpenSSL's "SSKDF"
 * with SHA-256) over Z, with OtherInfo = AlgorithmID "A256GCM", empty
 * PartyUInfo and PartyVInfo (the profile refuses "apu"/"apv"), and
 * SuppPubInfo = 256.
 */
static int ecdh_es_cek(EVP_PKEY *mine, EVP_PKEY *peer, json_t **cek_out)
{
	static const uint8_t other_info[] = {
		0, 0, 0, 7, 'A', '2', '5', '6', 'G', 'C', 'M', /* AlgorithmID */
		0, 0, 0, 0,                                   /* PartyUInfo */
		0, 0, 0, 0,                                   /* PartyVInfo */
		0, 0, 1, 0,                                   /* SuppPubInfo: 256 */
	};
	uint8_t z[66], dk[PROFILE_KEY_BYTES];
	size_t zlen = sizeof(z);
	EVP_PKEY_CTX *dctx = NULL;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[4];
	json_t *k = NULL;
	int ret = -EINVAL;

	*cek_out = NULL;
	dctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
	/* validate_peer = 0: every peer here comes from ak_pkey_from_jwk_p384(),
	 * which has validated it; OpenSSL's full check would be one more
	 * scalar multiplication per key (docs/performance.md) */
	if (!dctx || EVP_PKEY_derive_init(dctx) <= 0 ||
	    EVP_PKEY_derive_set_peer_ex(dctx, peer, 0) <= 0 ||
	    EVP_PKEY_derive(dctx, z, &zlen) <= 0)
		goto out;
	kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, zlen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)other_info,
						      sizeof(other_info));
	params[3] = OSSL_PARAM_construct_end();
	if (!kctx || EVP_KDF_derive(kctx, dk, sizeof(dk), params) <= 0)
		goto out;
	k = jose_b64_enc(dk, sizeof(dk));
	*cek_out = json_pack("{s:s,s:s}", "kty", "oct", "alg", PROFILE_ENC);
	if (k && *cek_out && json_object_set(*cek_out, "k", k) == 0) {
		ret = 0; /* the CEK object holds k; ak_jwk_free_secret() wipes it */
	} else {
		ak_jwk_free_secret(*cek_out);
		*cek_out = NULL;
		ret = -ENOMEM;
		if (k) /* nobody else holds it: wipe it before it is freed */
			ak_memzero((char *)json_string_value(k), json_string_length(k));
	}
	json_decref(k);
out:
	ERR_clear_error();
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(dk, sizeof(dk));
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	EVP_PKEY_CTX_free(dctx);
	return ret;
}

static bool is_p384(EVP_PKEY *pkey)
{
	char group[32];

	return pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
	       EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
					      sizeof(group), NULL) &&
	       strcmp(group, "secp384r1") == 0;
}

EVP_PKEY *ak_ec_p384_generate(void)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp384r1");

	if (!pkey)
		ak_log_openssl(AK_LOG_ERR, "cannot generate an EC P-384 key");
	return pkey;
}

/* The public JWK (RFC 7518 section 6.2.1) from the encoded public point
 * alone: libjose's jose_openssl_jwk_from_EVP_PKEY() would first write the
 * private scalar "d" as base64url into the ordinary heap. */
json_t *ak_jwk_from_pkey_public(EVP_PKEY *pkey)
{
	static const struct {
		const char *group, *crv;
		size_t coord;
	} curves[] = {
		{ "prime256v1", "P-256", 32 },
		{ "secp384r1", "P-384", 48 },
		{ "secp521r1", "P-521", 66 },
	};
	unsigned char *pt = NULL;
	char group[32];
	size_t len = 0, i;
	json_t *pub = NULL;

	if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    NULL))
		goto out;
	len = EVP_PKEY_get1_encoded_public_key(pkey, &pt);
	for (i = 0; i < AK_ARRAY_SIZE(curves); i++) {
		size_t c = curves[i].coord;

		/* uncompressed: 0x04 || x || y (SEC 1 section 2.3.3) */
		if (strcmp(group, curves[i].group) == 0 && len == 1 + 2 * c && pt[0] == 0x04)
			pub = json_pack("{s:s,s:s,s:o,s:o}", "kty", "EC", "crv", curves[i].crv, "x",
					jose_b64_enc(pt + 1, c), "y", jose_b64_enc(pt + 1 + c, c));
	}
out:
	OPENSSL_free(pt);
	ERR_clear_error();
	return pub;
}

/*
 * An EC P-384 public JWK to an EVP_PKEY with the partial public-key
 * validation of NIST SP 800-56A rev. 3, section 5.6.2.3.4, which that
 * standard allows for ephemeral keys: coordinates of the field size, point on
 * the curve and not at infinity (EVP_PKEY_public_check_quick). P-384 has
 * cofactor 1, so the full check's extra n*Q multiplication (what libjose's
 * jose_openssl_jwk_to_EVP_PKEY runs) adds nothing for it. libjose decodes
 * the base64url.
 */
EVP_PKEY *ak_pkey_from_jwk_p384(const json_t *jwk)
{
	const char *kty = NULL, *crv = NULL, *x = NULL, *y = NULL;
	size_t xl = 0, yl = 0;
	uint8_t pt[1 + 2 * 48];
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];

	if (json_unpack((json_t *)jwk, "{s:s,s:s,s:s%,s:s%}", "kty", &kty, "crv", &crv, "x", &x,
			&xl, "y", &y, &yl) < 0 ||
	    strcmp(kty, "EC") != 0 || strcmp(crv, "P-384") != 0 ||
	    jose_b64_dec_buf(x, xl, NULL, 0) != 48 || jose_b64_dec_buf(y, yl, NULL, 0) != 48)
		return NULL;
	pt[0] = 0x04; /* uncompressed point */
	if (jose_b64_dec_buf(x, xl, pt + 1, 48) != 48 || jose_b64_dec_buf(y, yl, pt + 49, 48) != 48)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"secp384r1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		/* An engine that took over EC (libp11 in nginx or openssl) makes
		 * this a legacy context, which cannot import: let libjose build
		 * the key the legacy way, with its full check. */
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		pkey = jose_openssl_jwk_to_EVP_PKEY(NULL, jwk);
		if (is_p384(pkey))
			return pkey;
		ctx = NULL;
		goto fail;
	}
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!chk || EVP_PKEY_public_check_quick(chk) != 1 || !is_p384(pkey))
		goto fail;
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
fail:
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

int ak_jwe_encrypt_to(EVP_PKEY *recipient, EVP_PKEY *epk, const uint8_t *pt, size_t ptlen,
		      json_t **jwe_out)
{
	json_t *jwe = NULL, *epk_jwk = NULL, *cek = NULL;
	int ret = -EINVAL;

	*jwe_out = NULL;
	if (!is_p384(recipient) || !pt || (epk && !is_p384(epk))) {
		EVP_PKEY_free(epk);
		return -EINVAL;
	}
	if (!epk)
		epk = ak_ec_p384_generate();
	epk_jwk = epk ? ak_jwk_from_pkey_public(epk) : NULL;
	if (!epk_jwk || ecdh_es_cek(epk, recipient, &cek) < 0)
		goto out;
	/* the shape jose_jwe_enc() gives: epk in the unprotected header */
	jwe = json_pack("{s:{s:s,s:s},s:{s:O}}", "protected", "alg", PROFILE_ALG, "enc",
			PROFILE_ENC, "header", "epk", epk_jwk);
	if (!jwe) {
		ret = -ENOMEM;
		goto out;
	}
	if (!jose_jwe_enc_cek(NULL, jwe, cek, pt, ptlen))
		goto out;
	*jwe_out = jwe;
	jwe = NULL;
	ret = 0;
out:
	if (ret < 0)
		ak_log(AK_LOG_ERR, "JWE encryption to the ephemeral key failed");
	json_decref(jwe);
	json_decref(epk_jwk);
	ak_jwk_free_secret(cek);
	EVP_PKEY_free(epk); /* its scalar is wiped with it */
	return ret;
}

int ak_jwe_encrypt(const json_t *jwk_pub, const uint8_t *pt, size_t ptlen, json_t **jwe_out)
{
	EVP_PKEY *pub = jwk_pub ? ak_pkey_from_jwk_p384(jwk_pub) : NULL;
	int ret;

	*jwe_out = NULL;
	if (!pub)
		return -EINVAL;
	ret = ak_jwe_encrypt_to(pub, NULL, pt, ptlen, jwe_out);
	EVP_PKEY_free(pub);
	return ret;
}

/* ---- a jose_io_t that appends to an ak_secbuf ---- */
struct secsink {
	jose_io_t io;
	struct ak_secbuf *buf;
	bool failed;
};

static bool secsink_feed(jose_io_t *io, const void *in, size_t len)
{
	struct secsink *s = (struct secsink *)io;

	if (ak_secbuf_append(s->buf, in, len) < 0) {
		s->failed = true;
		return false;
	}
	return true;
}

static bool secsink_done(jose_io_t *io)
{
	return !((struct secsink *)io)->failed;
}

static void secsink_free(jose_io_t *io)
{
	free(io);
}

/* Only the profile's header, nothing that would change how we decrypt. */
static int check_header(const json_t *jwe)
{
	json_t *hdr = jose_jwe_hdr(jwe, jwe); /* flattened: the JWE is its own recipient */
	const char *alg = NULL, *enc = NULL;
	int ret = -EINVAL;

	if (!hdr) {
		ak_log(AK_LOG_ERR, "release envelope: the JWE header does not parse");
		return -EINVAL;
	}
	if (json_unpack(hdr, "{s:s,s:s}", "alg", &alg, "enc", &enc) < 0) {
		ak_log(AK_LOG_ERR, "release envelope: the JWE header lacks alg or enc");
		goto out;
	}
	if (strcmp(alg, PROFILE_ALG) != 0 || strcmp(enc, PROFILE_ENC) != 0) {
		ak_log(AK_LOG_ERR, "release envelope: JWE alg %s / enc %s refused (only %s / %s)", alg,
		       enc, PROFILE_ALG, PROFILE_ENC);
		goto out;
	}
	if (json_object_get(hdr, "zip") || json_object_get(hdr, "crit") ||
	    json_object_get(hdr, "apu") || json_object_get(hdr, "apv")) {
		ak_log(AK_LOG_ERR, "release envelope: JWE \"zip\", \"crit\", \"apu\" and \"apv\" headers are refused");
		goto out;
	}
	ret = 0;
out:
	json_decref(hdr);
	return ret;
}

int ak_jwe_decrypt_with(EVP_PKEY *priv, const json_t *jwe, struct ak_secbuf *out)
{
	struct secsink *sink = NULL;
	jose_io_t *io = NULL;
	json_t *cek = NULL, *hdr = NULL;
	EVP_PKEY *epk = NULL;
	uint8_t *ct = NULL;
	size_t ctlen = 0;
	const char *ct_b64;
	int ret = -EINVAL;

	ak_secbuf_clear(out);
	if (!is_p384(priv) || !jwe || !json_is_object(jwe)) {
		ak_log(AK_LOG_ERR, "release envelope: not a JWE object");
		return -EINVAL;
	}
	if (ak_secure_init() < 0)
		return -ENOMEM;
	if (check_header(jwe) < 0)
		goto out;
	ct_b64 = json_string_value(json_object_get(jwe, "ciphertext"));
	if (!ct_b64 || !(ct = ak_b64url_decode(ct_b64, &ctlen))) {
		ak_log(AK_LOG_ERR, "release envelope: JWE ciphertext missing or not base64url");
		goto out;
	}
	hdr = jose_jwe_hdr(jwe, jwe);
	epk = hdr ? ak_pkey_from_jwk_p384(json_object_get(hdr, "epk")) : NULL;
	if (!epk) {
		ak_log(AK_LOG_ERR, "release envelope: the JWE has no valid EC P-384 \"epk\"");
		goto out;
	}
	if (ecdh_es_cek(priv, epk, &cek) < 0) {
		ak_log(AK_LOG_ERR, "release envelope: ECDH-ES with our ephemeral key failed");
		goto out;
	}
	sink = calloc(1, sizeof(*sink));
	if (!sink) {
		ret = -ENOMEM;
		goto out;
	}
	sink->io.feed = secsink_feed;
	sink->io.done = secsink_done;
	sink->io.free = secsink_free;
	sink->buf = out;
	io = jose_jwe_dec_cek_io(NULL, jwe, cek, jose_io_incref(&sink->io));
	if (!io) {
		ak_log(AK_LOG_ERR, "release envelope: cannot start JWE decryption");
		goto out;
	}
	if (!io->feed(io, ct, ctlen) || !io->done(io)) {
		/* Tag mismatch or sink failure: throw away every byte we saw. */
		ak_log(AK_LOG_ERR, "release envelope: JWE authentication failed (tampered or wrong key)");
		goto out;
	}
	ret = 0;
out:
	jose_io_decref(io);
	if (sink)
		jose_io_decref(&sink->io);
	ak_jwk_free_secret(cek);
	json_decref(hdr);
	EVP_PKEY_free(epk);
	free(ct);
	if (ret < 0)
		ak_secbuf_clear(out);
	return ret;
}

int ak_jwe_decrypt(const json_t *jwk_priv, const json_t *jwe, struct ak_secbuf *out)
{
	EVP_PKEY *priv = jwk_priv ? jose_openssl_jwk_to_EVP_PKEY(NULL, jwk_priv) : NULL;
	int ret;

	ak_secbuf_clear(out);
	if (!is_p384(priv)) {
		EVP_PKEY_free(priv);
		ERR_clear_error();
		ak_log(AK_LOG_ERR, "release envelope: the private JWK is not an EC P-384 key");
		return -EINVAL;
	}
	ret = ak_jwe_decrypt_with(priv, jwe, out);
	EVP_PKEY_free(priv);
	return ret;
}

json_t *ak_jwk_generate_p384(void)
{
	json_t *jwk = json_pack("{s:s,s:s}", "kty", "EC", "crv", "P-384");

	if (!jwk)
		return NULL;
	if (!jose_jwk_gen(NULL, jwk)) {
		ak_log(AK_LOG_ERR, "cannot generate the ephemeral P-384 key");
		json_decref(jwk);
		return NULL;
	}
	return jwk;
}

json_t *ak_jwk_public(const json_t *jwk)
{
	json_t *pub = json_deep_copy(jwk);

	if (pub && !jose_jwk_pub(NULL, pub)) {
		json_decref(pub);
		return NULL;
	}
	return pub;
}

void ak_jwk_free_secret(json_t *jwk)
{
	/* RFC 7518 private members: EC/OKP "d", oct "k", RSA CRT parts. */
	static const char *const priv[] = { "d", "k", "p", "q", "dp", "dq", "qi" };
	size_t i;

	if (!jwk)
		return;
	for (i = 0; json_is_object(jwk) && i < AK_ARRAY_SIZE(priv); i++) {
		json_t *v = json_object_get(jwk, priv[i]);
		const char *s = json_string_value(v);

		/* jansson owns a private copy of the string: wipe it in place */
		if (s)
			ak_memzero((char *)s, json_string_length(v));
	}
	json_decref(jwk);
}
