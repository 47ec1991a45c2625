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

#include "attestkey/jwe.h"
#include "attestkey/protocol.h"

#define PROFILE_ALG "ECDH-ES"
#define PROFILE_ENC "A256GCM"

int ak_jwe_encrypt(const json_t *jwk_pub, const uint8_t *pt, size_t ptlen, json_t **jwe_out)
{
	json_t *jwe = NULL;
	int ret = -EINVAL;

	*jwe_out = NULL;
	if (!jwk_pub || !pt)
		return -EINVAL;
	jwe = json_pack("{s:{s:s,s:s}}", "protected", "alg", PROFILE_ALG, "enc", PROFILE_ENC);
	if (!jwe)
		return -ENOMEM;
	if (!jose_jwe_enc(NULL, jwe, NULL, jwk_pub, pt, ptlen)) {
		ak_log(AK_LOG_ERR, "JWE encryption to the ephemeral key failed");
		goto out;
	}
	*jwe_out = jwe;
	jwe = NULL;
	ret = 0;
out:
	json_decref(jwe);
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
	if (json_object_get(hdr, "zip") || json_object_get(hdr, "crit")) {
		ak_log(AK_LOG_ERR, "release envelope: JWE \"zip\"/\"crit\" headers are refused");
		goto out;
	}
	ret = 0;
out:
	json_decref(hdr);
	return ret;
}

int ak_jwe_decrypt(const json_t *jwk_priv, const json_t *jwe, struct ak_secbuf *out)
{
	struct secsink *sink = NULL;
	jose_io_t *io = NULL;
	json_t *cek = NULL;
	uint8_t *ct = NULL;
	size_t ctlen = 0;
	const char *ct_b64;
	int ret = -EINVAL;

	ak_secbuf_clear(out);
	if (!jwk_priv || !jwe || !json_is_object(jwe)) {
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
	cek = jose_jwe_dec_jwk(NULL, jwe, NULL, jwk_priv);
	if (!cek) {
		ak_log(AK_LOG_ERR, "release envelope: the JWE is not for our ephemeral key");
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
	free(ct);
	if (ret < 0)
		ak_secbuf_clear(out);
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
