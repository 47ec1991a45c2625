/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The release envelope of protocol v2, ak2-ECDH-ES+A256GCM
 * (docs/protocol.md §4.2): one ECDH per release gives one content key; each
 * key is AES-256-GCM under it with its own IV and its metadata as AAD.
 *
 * The content key sits in the secure heap for the life of the ak_env and is
 * wiped with it. Opening writes each key straight into the secure heap and
 * keeps nothing of an entry whose tag fails. Nothing here logs (envelope.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "attestkey/envelope.h"
#include "attestkey/jwe.h"
#include "attestkey/pkey.h"

struct ak_env {
	uint8_t cek[AK_V2_CEK_LEN];
	char token[256];
	const char *alg;
};

static int fail(const char **why, const char *reason, int ret)
{
	if (why)
		*why = reason;
	return ret;
}

/* The content key from our key and the peer's (validated) key. */
static int derive(EVP_PKEY *mine, EVP_PKEY *peer, const char *token, const char *nonce,
		  struct ak_env **out, const char **why)
{
	uint8_t z[66];
	size_t zlen = sizeof(z);
	struct ak_env *e = NULL;
	int ret;

	*out = NULL;
	if (strlen(token) >= sizeof(e->token))
		return fail(why, "the token name is too long", -EINVAL);
	if (ak_secure_init() < 0)
		return fail(why, "no secure heap for the content key", -ENOMEM);
	e = OPENSSL_secure_zalloc(sizeof(*e));
	if (!e)
		return fail(why, "the secure heap is exhausted", -ENOMEM);
	ret = ak_ecdh_derive(mine, peer, z, &zlen);
	if (ret < 0) {
		fail(why, "ECDH with the peer's key failed", ret);
		goto out;
	}
	ret = ak_v2_kdf(z, zlen, token, nonce, e->cek);
	if (ret < 0) {
		fail(why, "the content key derivation failed", ret);
		goto out;
	}
	memcpy(e->token, token, strlen(token) + 1);
	e->alg = AK_ALG_V2_ECDH;
	*out = e;
	e = NULL;
out:
	OPENSSL_cleanse(z, sizeof(z));
	ak_env_free(e);
	return ret;
}

void ak_env_free(struct ak_env *e)
{
	if (e)
		OPENSSL_secure_clear_free(e, sizeof(*e));
}

int ak_env_seal_begin(EVP_PKEY *recipient, EVP_PKEY *epk, const char *token, const char *nonce,
		      struct ak_env **out, json_t **envelope_out, const char **why)
{
	const char *crv = ak_ec_crv(recipient);
	json_t *epk_jwk = NULL;
	int ret;

	*out = NULL;
	*envelope_out = NULL;
	fail(why, NULL, 0);
	if (!crv || !token || !nonce || (epk && (!ak_ec_crv(epk) || strcmp(ak_ec_crv(epk), crv) != 0))) {
		EVP_PKEY_free(epk);
		return fail(why, "the recipient is not an EC P-256 or P-384 key, or the "
				 "ephemeral key is on another curve", -EINVAL);
	}
	if (!epk && !(epk = ak_ec_generate(crv))) {
		ret = fail(why, "cannot generate the ephemeral key", -ENOMEM);
		goto out;
	}
	epk_jwk = ak_jwk_from_pkey_public(epk);
	if (!epk_jwk) {
		ret = fail(why, "cannot export the ephemeral public key", -ENOMEM);
		goto out;
	}
	ret = derive(epk, recipient, token, nonce, out, why);
	if (ret < 0)
		goto out;
	*envelope_out = json_pack("{s:s,s:O}", "alg", AK_ALG_V2_ECDH, "epk", epk_jwk);
	if (!*envelope_out) {
		ak_env_free(*out);
		*out = NULL;
		ret = fail(why, "out of memory", -ENOMEM);
	}
out:
	ERR_clear_error();
	json_decref(epk_jwk);
	EVP_PKEY_free(epk); /* used for this release alone; OpenSSL wipes it */
	return ret;
}

static int set_b64(json_t *item, const char *name, const uint8_t *p, size_t n)
{
	char *s = ak_b64url_encode(p, n);
	int ret = s && json_object_set_new(item, name, json_string(s)) == 0 ? 0 : -ENOMEM;

	free(s);
	return ret;
}

int ak_env_seal_key(struct ak_env *e, size_t index, size_t count, const struct ak_key_meta *m,
		    const uint8_t *pt, size_t ptlen, json_t *item, const char **why)
{
	uint8_t iv[AK_V2_IV_LEN], tag[AK_V2_TAG_LEN], *aad = NULL, *ct = NULL;
	size_t aad_len = 0;
	int ret;

	fail(why, NULL, 0);
	if (!e || !pt || !json_is_object(item))
		return fail(why, "nothing to seal", -EINVAL);
	ret = ak_v2_key_aad(e->alg, e->token, index, count, m, &aad, &aad_len);
	if (ret < 0)
		return fail(why, "the key's metadata is incomplete", ret);
	ct = malloc(ptlen ? ptlen : 1); /* ciphertext: not secret */
	if (!ct) {
		ret = fail(why, "out of memory", -ENOMEM);
		goto out;
	}
	if (RAND_bytes_ex(ak_libctx(), iv, sizeof(iv), 0) != 1) {
		ret = fail(why, "no random IV", -EIO);
		goto out;
	}
	ret = ak_aes256gcm_seal(e->cek, iv, sizeof(iv), aad, aad_len, pt, ptlen, ct, tag);
	if (ret < 0) {
		fail(why, "AES-256-GCM encryption failed", ret);
		goto out;
	}
	if (set_b64(item, "iv", iv, sizeof(iv)) < 0 || set_b64(item, "ct", ct, ptlen) < 0 ||
	    set_b64(item, "tag", tag, sizeof(tag)) < 0)
		ret = fail(why, "out of memory", -ENOMEM);
out:
	ERR_clear_error();
	free(aad);
	free(ct);
	return ret;
}

int ak_env_open_begin(EVP_PKEY *priv, const json_t *envelope, const char *want_alg,
		      const char *token, const char *nonce, struct ak_env **out, const char **why)
{
	const char *alg = json_string_value(json_object_get(envelope, "alg"));
	const char *crv = ak_ec_crv(priv);
	EVP_PKEY *epk = NULL;
	int ret;

	*out = NULL;
	fail(why, NULL, 0);
	if (!json_is_object(envelope) || !alg)
		return fail(why, "the release's envelope is not an object with an \"alg\"", -EINVAL);
	if (!want_alg || strcmp(alg, want_alg) != 0)
		return fail(why, "the envelope's alg is not the one the request asked", -EPROTO);
	if (strcmp(alg, AK_ALG_V2_ECDH) != 0)
		return fail(why, "the envelope's alg is not one this module opens", -EPROTO);
	if (!crv || !token || !nonce)
		return fail(why, "no EC P-256 or P-384 key to open the envelope", -EINVAL);
	epk = ak_pkey_from_jwk_ec(json_object_get(envelope, "epk"), crv);
	if (!epk)
		return fail(why, "the envelope's \"epk\" is not a valid public key on our curve",
			    -EINVAL);
	ret = derive(priv, epk, token, nonce, out, why);
	EVP_PKEY_free(epk);
	return ret;
}

/* A base64url member of exactly want bytes (want 0: any length); NULL
 * otherwise. */
static uint8_t *get_b64(const json_t *item, const char *name, size_t want, size_t *len)
{
	const char *s = json_string_value(json_object_get(item, name));
	uint8_t *p = s ? ak_b64url_decode(s, len) : NULL;

	if (p && want && *len != want) {
		free(p);
		p = NULL;
	}
	return p;
}

int ak_env_open_key(const struct ak_env *e, size_t index, size_t count,
		    const struct ak_key_meta *m, const json_t *item, struct ak_secbuf *out,
		    const char **why)
{
	uint8_t *iv = NULL, *tag = NULL, *ct = NULL, *aad = NULL;
	size_t ivlen = 0, taglen = 0, ctlen = 0, aad_len = 0;
	int ret = -EINVAL;

	ak_secbuf_clear(out);
	fail(why, NULL, 0);
	if (!e || !json_is_object(item))
		return fail(why, "nothing to open", -EINVAL);
	iv = get_b64(item, "iv", AK_V2_IV_LEN, &ivlen);
	tag = get_b64(item, "tag", AK_V2_TAG_LEN, &taglen);
	ct = get_b64(item, "ct", 0, &ctlen);
	if (!iv || !tag || !ct || !ctlen) {
		fail(why, "the entry's iv (12 bytes), tag (16 bytes) or ct is missing or malformed",
		     0);
		goto out;
	}
	ret = ak_v2_key_aad(e->alg, e->token, index, count, m, &aad, &aad_len);
	if (ret < 0) {
		fail(why, "the entry's metadata is incomplete", 0);
		goto out;
	}
	ret = ak_aes256gcm_open(e->cek, iv, ivlen, aad, aad_len, ct, ctlen, tag, out);
	if (ret == -ENOMEM)
		fail(why, "the secure heap is exhausted", 0);
	else if (ret < 0)
		fail(why, "the entry's tag does not verify (tampered, moved between entries, "
			  "or its metadata changed)", 0);
out:
	free(iv);
	free(tag);
	free(ct);
	free(aad);
	if (ret < 0)
		ak_secbuf_clear(out);
	return ret;
}
