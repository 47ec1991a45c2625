/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JWE profile of docs/protocol.md §4, with libjose. Decryption streams
 * the plaintext into the OpenSSL secure heap through a jose_io_t sink and
 * accepts it only once the GCM tag has verified (jose_io_t.done()).
 *
 * Nothing here logs: each failure is a reason (a constant sentence without
 * key material or sender-chosen text) handed to the caller, which names the
 * token or request and logs one line (issue 8 item 20).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <jose/jose.h>
#include <jose/openssl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "attestkey/jwe.h"
#include "attestkey/pkey.h"
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
int ak_ecdh_derive(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t *z, size_t *zlen)
{
	EVP_PKEY_CTX *dctx = EVP_PKEY_CTX_new_from_pkey(ak_libctx(), mine, NULL);
	int ret = -EINVAL;

	/* validate_peer = 0: every peer here comes from ak_pkey_from_jwk_ec(),
	 * which has validated it; OpenSSL's full check would be one more
	 * scalar multiplication per key (docs/performance.md) */
	if (dctx && EVP_PKEY_derive_init(dctx) > 0 &&
	    EVP_PKEY_derive_set_peer_ex(dctx, peer, 0) > 0 && EVP_PKEY_derive(dctx, z, zlen) > 0)
		ret = 0;
	ERR_clear_error();
	EVP_PKEY_CTX_free(dctx);
	return ret;
}

int ak_concat_kdf(const uint8_t *z, size_t zlen, const uint8_t *other_info, size_t oilen,
		  uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(ak_libctx(), "SSKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[4];
	int ret = -EINVAL;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, zlen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)other_info,
						      oilen);
	params[3] = OSSL_PARAM_construct_end();
	if (kctx && EVP_KDF_derive(kctx, out, outlen, params) > 0)
		ret = 0;
	ERR_clear_error();
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ret;
}

static int ecdh_es_key(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t dk[PROFILE_KEY_BYTES])
{
	static const uint8_t other_info[] = {
		0, 0, 0, 7, 'A', '2', '5', '6', 'G', 'C', 'M', /* AlgorithmID */
		0, 0, 0, 0,                                   /* PartyUInfo */
		0, 0, 0, 0,                                   /* PartyVInfo */
		0, 0, 1, 0,                                   /* SuppPubInfo: 256 */
	};
	uint8_t z[66];
	size_t zlen = sizeof(z);
	int ret;

	ret = ak_ecdh_derive(mine, peer, z, &zlen);
	if (ret == 0)
		ret = ak_concat_kdf(z, zlen, other_info, sizeof(other_info), dk,
				    PROFILE_KEY_BYTES);
	OPENSSL_cleanse(z, sizeof(z));
	return ret;
}

/* The CEK as the JWK libjose's encryption takes. */
static int ecdh_es_cek(EVP_PKEY *mine, EVP_PKEY *peer, json_t **cek_out)
{
	uint8_t dk[PROFILE_KEY_BYTES];
	json_t *k = NULL;
	int ret;

	*cek_out = NULL;
	ret = ecdh_es_key(mine, peer, dk);
	if (ret < 0)
		return ret;
	k = jose_b64_enc(dk, sizeof(dk));
	OPENSSL_cleanse(dk, sizeof(dk));
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
	return ret;
}

/* The two ephemeral curves of the protocol: JWK name, OpenSSL group name
 * (the legacy path of an engine-taken EC knows only these spellings) and
 * coordinate size. */
static const struct eph_curve {
	const char *crv, *group;
	size_t coord;
} eph_curves[] = {
	{ "P-256", "prime256v1", 32 },
	{ "P-384", "secp384r1", 48 },
};

static const struct eph_curve *curve_by_crv(const char *crv)
{
	size_t i;

	for (i = 0; crv && i < AK_ARRAY_SIZE(eph_curves); i++) {
		if (strcmp(crv, eph_curves[i].crv) == 0)
			return &eph_curves[i];
	}
	return NULL;
}

const char *ak_ec_crv(EVP_PKEY *pkey)
{
	char group[32];
	size_t i;

	if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
					    sizeof(group), NULL))
		return NULL;
	for (i = 0; i < AK_ARRAY_SIZE(eph_curves); i++) {
		if (strcmp(group, eph_curves[i].group) == 0)
			return eph_curves[i].crv;
	}
	return NULL;
}

static bool is_p384(EVP_PKEY *pkey)
{
	const char *crv = ak_ec_crv(pkey);

	return crv && strcmp(crv, "P-384") == 0;
}

/* ak_ec_params_keep(): per curve, its domain parameters (NULL: by name) */
static EVP_PKEY *kept_params[AK_ARRAY_SIZE(eph_curves)];

void ak_ec_params_keep(void)
{
	for (size_t i = 0; i < AK_ARRAY_SIZE(eph_curves); i++) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(ak_libctx(), "EC", NULL);

		if (kept_params[i] || !ctx || EVP_PKEY_paramgen_init(ctx) <= 0 ||
		    EVP_PKEY_CTX_set_group_name(ctx, eph_curves[i].group) <= 0 ||
		    EVP_PKEY_paramgen(ctx, &kept_params[i]) <= 0)
			ERR_clear_error(); /* that curve goes by name */
		EVP_PKEY_CTX_free(ctx);
	}
}

void ak_ec_params_drop(void)
{
	for (size_t i = 0; i < AK_ARRAY_SIZE(eph_curves); i++) {
		EVP_PKEY_free(kept_params[i]);
		kept_params[i] = NULL;
	}
}

static EVP_PKEY *params_of(const struct eph_curve *c)
{
	return kept_params[c - eph_curves];
}

EVP_PKEY *ak_ec_generate(const char *crv)
{
	const struct eph_curve *c = curve_by_crv(crv);
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *k = NULL;

	if (!c)
		return NULL;
	if (params_of(c)) {
		ctx = EVP_PKEY_CTX_new_from_pkey(ak_libctx(), params_of(c), NULL);
		if (ctx && EVP_PKEY_keygen_init(ctx) > 0 && EVP_PKEY_keygen(ctx, &k) > 0) {
			EVP_PKEY_CTX_free(ctx);
			return k;
		}
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
	}
	/* on failure OpenSSL's error queue holds the reason, for the caller */
	return EVP_PKEY_Q_keygen(ak_libctx(), NULL, "EC", c->group);
}

EVP_PKEY *ak_ec_p384_generate(void)
{
	return ak_ec_generate("P-384");
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
 * An EC public JWK on one of the ephemeral curves to an EVP_PKEY with the
 * partial public-key validation of NIST SP 800-56A rev. 3, section
 * 5.6.2.3.4, which that standard allows for ephemeral keys: coordinates of
 * the field size, point on the curve and not at infinity
 * (EVP_PKEY_public_check_quick). P-256 and P-384 have cofactor 1, so the
 * full check's extra n*Q multiplication (what libjose's
 * jose_openssl_jwk_to_EVP_PKEY runs) adds nothing for them. libjose decodes
 * the base64url.
 */
EVP_PKEY *ak_pkey_from_jwk_ec(const json_t *jwk, const char *want)
{
	const char *kty = NULL, *crv = NULL, *x = NULL, *y = NULL;
	const struct eph_curve *c;
	size_t xl = 0, yl = 0;
	uint8_t pt[1 + 2 * 48];
	size_t n;
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];

	if (json_unpack((json_t *)jwk, "{s:s,s:s,s:s%,s:s%}", "kty", &kty, "crv", &crv, "x", &x,
			&xl, "y", &y, &yl) < 0 ||
	    strcmp(kty, "EC") != 0 || !(c = curve_by_crv(crv)) || (want && strcmp(crv, want) != 0))
		return NULL;
	n = c->coord;
	if (jose_b64_dec_buf(x, xl, NULL, 0) != n || jose_b64_dec_buf(y, yl, NULL, 0) != n)
		return NULL;
	pt[0] = 0x04; /* uncompressed point */
	if (jose_b64_dec_buf(x, xl, pt + 1, n) != n || jose_b64_dec_buf(y, yl, pt + 1 + n, n) != n)
		return NULL;
	if (params_of(c)) {
		/* the kept parameters, then the point (on the curve, or refused) */
		if (!(pkey = EVP_PKEY_new()) || EVP_PKEY_copy_parameters(pkey, params_of(c)) != 1 ||
		    EVP_PKEY_set1_encoded_public_key(pkey, pt, 1 + 2 * n) != 1)
			goto fail;
		goto check;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)c->group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * n);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(ak_libctx(), "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		/* An engine that took over EC (libp11 in nginx or openssl) makes
		 * this a legacy context, which cannot import: let libjose build
		 * the key the legacy way, with its full check. */
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		pkey = jose_openssl_jwk_to_EVP_PKEY(NULL, jwk);
		if (ak_ec_crv(pkey) && strcmp(ak_ec_crv(pkey), crv) == 0)
			return pkey;
		ctx = NULL;
		goto fail;
	}
check:
	chk = EVP_PKEY_CTX_new_from_pkey(ak_libctx(), pkey, NULL);
	if (!chk || EVP_PKEY_public_check_quick(chk) != 1 || !ak_ec_crv(pkey) ||
	    strcmp(ak_ec_crv(pkey), crv) != 0)
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

EVP_PKEY *ak_pkey_from_jwk_p384(const json_t *jwk)
{
	return ak_pkey_from_jwk_ec(jwk, "P-384");
}

/* Set the caller's reason, when it asked for one; returns ret. */
static int fail(const char **why, const char *reason, int ret)
{
	if (why)
		*why = reason;
	return ret;
}

int ak_jwe_encrypt_to(EVP_PKEY *recipient, EVP_PKEY *epk, const uint8_t *pt, size_t ptlen,
		      json_t **jwe_out, const char **why)
{
	json_t *jwe = NULL, *epk_jwk = NULL, *cek = NULL;
	int ret = -EINVAL;

	*jwe_out = NULL;
	fail(why, NULL, 0);
	if (!is_p384(recipient) || !pt || (epk && !is_p384(epk))) {
		EVP_PKEY_free(epk);
		return fail(why, "the recipient or the ephemeral key is not an EC P-384 key",
			    -EINVAL);
	}
	if (!epk && !(epk = ak_ec_p384_generate())) {
		ret = fail(why, "cannot generate an EC P-384 ephemeral key", -ENOMEM);
		goto out;
	}
	if (!(epk_jwk = ak_jwk_from_pkey_public(epk))) {
		ret = fail(why, "cannot export the ephemeral public key", -ENOMEM);
		goto out;
	}
	if (ecdh_es_cek(epk, recipient, &cek) < 0) {
		ret = fail(why, "ECDH-ES with the recipient's key failed", -EINVAL);
		goto out;
	}
	/* the shape jose_jwe_enc() gives: epk in the unprotected header */
	jwe = json_pack("{s:{s:s,s:s},s:{s:O}}", "protected", "alg", PROFILE_ALG, "enc",
			PROFILE_ENC, "header", "epk", epk_jwk);
	if (!jwe) {
		ret = fail(why, "out of memory", -ENOMEM);
		goto out;
	}
	if (!jose_jwe_enc_cek(NULL, jwe, cek, pt, ptlen)) {
		ret = fail(why, "A256GCM encryption failed", -EINVAL);
		goto out;
	}
	*jwe_out = jwe;
	jwe = NULL;
	ret = 0;
out:
	ERR_clear_error();
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
	ret = ak_jwe_encrypt_to(pub, NULL, pt, ptlen, jwe_out, NULL);
	EVP_PKEY_free(pub);
	return ret;
}

int ak_aes256gcm_open(const uint8_t key[32], const uint8_t *iv, size_t ivlen,
		      const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
		      const uint8_t tag[16], struct ak_secbuf *out)
{
	EVP_CIPHER *c = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	uint8_t *pt = NULL;
	size_t cap = ctlen ? ctlen : 1;
	int l1 = 0, l2 = 0, ret = -EBADMSG;

	ak_secbuf_clear(out);
	if (ctlen > INT_MAX || aadlen > INT_MAX || !ivlen)
		return -EINVAL;
	if (ak_secure_init() < 0)
		return -ENOMEM;
	/* the plaintext goes straight into the buffer the caller keeps */
	pt = OPENSSL_secure_zalloc(cap);
	if (!pt)
		return -ENOMEM;
	c = EVP_CIPHER_fetch(ak_libctx(), "AES-256-GCM", NULL);
	ctx = EVP_CIPHER_CTX_new();
	params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
	params[1] = OSSL_PARAM_construct_end();
	if (!c || !ctx || !EVP_DecryptInit_ex2(ctx, c, NULL, NULL, params) ||
	    !EVP_DecryptInit_ex2(ctx, NULL, key, iv, NULL) ||
	    (aadlen && !EVP_DecryptUpdate(ctx, NULL, &l1, aad, (int)aadlen)) ||
	    !EVP_DecryptUpdate(ctx, pt, &l1, ct, (int)ctlen) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag) ||
	    EVP_DecryptFinal_ex(ctx, pt + l1, &l2) <= 0)
		goto out; /* tag mismatch: nothing of what was decrypted is kept */
	out->data = pt;
	out->cap = cap;
	out->len = (size_t)l1 + (size_t)l2;
	pt = NULL;
	ret = 0;
out:
	ERR_clear_error();
	if (pt)
		OPENSSL_secure_clear_free(pt, cap);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return ret;
}

int ak_aes256gcm_seal(const uint8_t key[32], const uint8_t *iv, size_t ivlen,
		      const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
		      uint8_t *ct, uint8_t tag[16])
{
	EVP_CIPHER *c = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	int l1 = 0, l2 = 0, ret = -EINVAL;

	if (ptlen > INT_MAX || aadlen > INT_MAX || !ivlen)
		return -EINVAL;
	c = EVP_CIPHER_fetch(ak_libctx(), "AES-256-GCM", NULL);
	ctx = EVP_CIPHER_CTX_new();
	params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
	params[1] = OSSL_PARAM_construct_end();
	if (c && ctx && EVP_EncryptInit_ex2(ctx, c, NULL, NULL, params) &&
	    EVP_EncryptInit_ex2(ctx, NULL, key, iv, NULL) &&
	    (!aadlen || EVP_EncryptUpdate(ctx, NULL, &l1, aad, (int)aadlen)) &&
	    EVP_EncryptUpdate(ctx, ct, &l1, pt, (int)ptlen) &&
	    EVP_EncryptFinal_ex(ctx, ct + l1, &l2) > 0 && (size_t)l1 + (size_t)l2 == ptlen &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0)
		ret = 0;
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx); /* wipes the key schedule */
	EVP_CIPHER_free(c);
	return ret;
}

/*
 * A256GCM content decryption (RFC 7516 section 5.2, steps 14 to 16) with the
 * cipher of attestkey's library context, straight into the secure heap: the
 * CEK and the plaintext key never pass through a provider or ENGINE the
 * host application loaded (libjose would fetch AES-GCM from OpenSSL's
 * default context). The flattened serialisation's AAD is the protected
 * header as sent; the profile has no "aad" member.
 */
static int gcm_open(const uint8_t key[PROFILE_KEY_BYTES], const json_t *jwe, const uint8_t *ct,
		    size_t ctlen, struct ak_secbuf *out, const char **why)
{
	const char *prot = json_string_value(json_object_get(jwe, "protected"));
	const char *iv64 = json_string_value(json_object_get(jwe, "iv"));
	const char *tag64 = json_string_value(json_object_get(jwe, "tag"));
	uint8_t *iv = NULL, *tag = NULL;
	size_t ivlen = 0, taglen = 0;
	int ret = -EINVAL;

	if (!prot || json_object_get(jwe, "aad") || !iv64 || !(iv = ak_b64url_decode(iv64, &ivlen)) ||
	    ivlen != 12 || !tag64 || !(tag = ak_b64url_decode(tag64, &taglen)) || taglen != 16 ||
	    ctlen > INT_MAX) {
		fail(why, "the JWE iv, tag or protected header is missing or malformed", 0);
		goto out;
	}
	ret = ak_aes256gcm_open(key, iv, ivlen, (const uint8_t *)prot, strlen(prot), ct, ctlen, tag,
				out);
	if (ret == -ENOMEM) {
		fail(why, "the secure heap is exhausted", 0);
	} else if (ret < 0) {
		fail(why, "JWE authentication failed (tampered or wrong key)", 0);
		ret = -EINVAL; /* this API's one code for a JWE that does not open */
	}
out:
	free(iv);
	free(tag);
	return ret;
}

/* Only the profile's header, nothing that would change how we decrypt.
 * The header's values are the sender's: they stay out of the reason. */
static int check_header(const json_t *jwe, const char **why)
{
	json_t *hdr = jose_jwe_hdr(jwe, jwe); /* flattened: the JWE is its own recipient */
	const char *alg = NULL, *enc = NULL;
	int ret = -EINVAL;

	if (!hdr)
		return fail(why, "the JWE header does not parse", -EINVAL);
	if (json_unpack(hdr, "{s:s,s:s}", "alg", &alg, "enc", &enc) < 0)
		fail(why, "the JWE header lacks alg or enc", 0);
	else if (strcmp(alg, PROFILE_ALG) != 0 || strcmp(enc, PROFILE_ENC) != 0)
		fail(why, "the JWE alg / enc is not " PROFILE_ALG " / " PROFILE_ENC, 0);
	else if (json_object_get(hdr, "zip") || json_object_get(hdr, "crit") ||
		 json_object_get(hdr, "apu") || json_object_get(hdr, "apv"))
		fail(why, "JWE \"zip\", \"crit\", \"apu\" and \"apv\" headers are refused", 0);
	else
		ret = 0;
	json_decref(hdr);
	return ret;
}

int ak_jwe_decrypt_with(EVP_PKEY *priv, const json_t *jwe, struct ak_secbuf *out,
			const char **why)
{
	uint8_t cek[PROFILE_KEY_BYTES];
	json_t *hdr = NULL;
	EVP_PKEY *epk = NULL;
	uint8_t *ct = NULL;
	size_t ctlen = 0;
	const char *ct_b64;
	int ret = -EINVAL;

	ak_secbuf_clear(out);
	fail(why, NULL, 0);
	if (!is_p384(priv) || !jwe || !json_is_object(jwe))
		return fail(why, "not a JWE object, or no EC P-384 key to open it", -EINVAL);
	if (ak_secure_init() < 0)
		return fail(why, "no secure heap for the plaintext", -ENOMEM);
	if (check_header(jwe, why) < 0)
		goto out;
	ct_b64 = json_string_value(json_object_get(jwe, "ciphertext"));
	if (!ct_b64 || !(ct = ak_b64url_decode(ct_b64, &ctlen))) {
		fail(why, "the JWE ciphertext is missing or not base64url", 0);
		goto out;
	}
	hdr = jose_jwe_hdr(jwe, jwe);
	epk = hdr ? ak_pkey_from_jwk_p384(json_object_get(hdr, "epk")) : NULL;
	if (!epk) {
		fail(why, "the JWE has no valid EC P-384 \"epk\"", 0);
		goto out;
	}
	if (ecdh_es_key(priv, epk, cek) < 0) {
		fail(why, "ECDH-ES with our ephemeral key failed", 0);
		goto out;
	}
	ret = gcm_open(cek, jwe, ct, ctlen, out, why);
out:
	OPENSSL_cleanse(cek, sizeof(cek));
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
		return -EINVAL;
	}
	ret = ak_jwe_decrypt_with(priv, jwe, out, NULL);
	EVP_PKEY_free(priv);
	return ret;
}

json_t *ak_jwk_generate_p384(void)
{
	json_t *jwk = json_pack("{s:s,s:s}", "kty", "EC", "crv", "P-384");

	if (!jwk)
		return NULL;
	if (!jose_jwk_gen(NULL, jwk)) {
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
