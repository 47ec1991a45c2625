/* SPDX-License-Identifier: Apache-2.0 */
/* Stateless nonces, docs/protocol.md §1. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "nonce.h"

#define OFF_VER 0
#define OFF_TIME 1
#define OFF_RAND 9
#define OFF_TAG 25
#define OFF_MAC 33
#define TAG_LEN 8
#define MAC_LEN 32

static int token_tag(const char *token, uint8_t tag[TAG_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) || mdlen < TAG_LEN)
		return -EINVAL;
	memcpy(tag, md, TAG_LEN);
	return 0;
}

static int nonce_mac(const uint8_t *secret, size_t secret_len, const uint8_t *raw,
		     uint8_t mac[MAC_LEN])
{
	unsigned int maclen = 0;

	if (!HMAC(EVP_sha256(), secret, (int)secret_len, raw, OFF_MAC, mac, &maclen) ||
	    maclen != MAC_LEN)
		return -EINVAL;
	return 0;
}

int broker_nonce_issue(const uint8_t *secret, size_t secret_len, const char *token, uint64_t now,
		       char out[BROKER_NONCE_STR_LEN + 1])
{
	uint8_t raw[BROKER_NONCE_RAW_LEN];
	char *enc = NULL;
	int ret = -EINVAL;
	int i;

	if (!secret || secret_len < BROKER_SECRET_MIN || !token || !*token)
		return -EINVAL;
	raw[OFF_VER] = BROKER_NONCE_VERSION;
	for (i = 0; i < 8; i++)
		raw[OFF_TIME + i] = (uint8_t)(now >> (56 - 8 * i));
	if (RAND_bytes(raw + OFF_RAND, 16) != 1) {
		ak_log_openssl(AK_LOG_ERR, "cannot draw random bytes for a nonce");
		ret = -EIO;
		goto out;
	}
	if (token_tag(token, raw + OFF_TAG) < 0 ||
	    nonce_mac(secret, secret_len, raw, raw + OFF_MAC) < 0)
		goto out;
	enc = ak_b64url_encode(raw, sizeof(raw));
	if (!enc || strlen(enc) != BROKER_NONCE_STR_LEN) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(out, enc, BROKER_NONCE_STR_LEN + 1);
	ret = 0;
out:
	free(enc);
	return ret;
}

enum ak_reason broker_nonce_check(const uint8_t *secret, size_t secret_len, const char *nonce,
				  const char *token, uint64_t now, uint64_t ttl,
				  uint64_t *issued_at, char *msg, size_t msglen)
{
	enum ak_reason r = AK_R_NONCE_INVALID;
	uint8_t mac[MAC_LEN], tag[TAG_LEN];
	uint8_t *raw = NULL;
	char *canon = NULL;
	size_t len = 0;
	uint64_t t = 0;
	int i;

	if (!secret || secret_len < BROKER_SECRET_MIN || !token) {
		snprintf(msg, msglen, "the broker has no usable challenge secret");
		return AK_R_INTERNAL;
	}
	if (!nonce || strlen(nonce) != BROKER_NONCE_STR_LEN) {
		snprintf(msg, msglen, "nonce is not %d characters of base64url",
			 BROKER_NONCE_STR_LEN);
		goto out;
	}
	raw = ak_b64url_decode(nonce, &len);
	if (!raw || len != BROKER_NONCE_RAW_LEN) {
		snprintf(msg, msglen, "nonce is not valid base64url of %d bytes",
			 BROKER_NONCE_RAW_LEN);
		goto out;
	}
	/* Refuse non-canonical spellings (stray low bits in the last
	 * character): the binding hashes the string, so one raw nonce must have
	 * exactly one string. */
	canon = ak_b64url_encode(raw, len);
	if (!canon || strcmp(canon, nonce) != 0) {
		snprintf(msg, msglen, "nonce is not canonical base64url");
		goto out;
	}
	if (raw[OFF_VER] != BROKER_NONCE_VERSION) {
		snprintf(msg, msglen, "nonce has unknown version %u", raw[OFF_VER]);
		goto out;
	}
	if (nonce_mac(secret, secret_len, raw, mac) < 0) {
		snprintf(msg, msglen, "cannot compute the nonce MAC");
		r = AK_R_INTERNAL;
		goto out;
	}
	if (CRYPTO_memcmp(mac, raw + OFF_MAC, MAC_LEN) != 0) {
		snprintf(msg, msglen, "nonce was not issued by this broker (MAC does not verify)");
		goto out;
	}
	if (token_tag(token, tag) < 0) {
		snprintf(msg, msglen, "cannot compute the token tag");
		r = AK_R_INTERNAL;
		goto out;
	}
	if (CRYPTO_memcmp(tag, raw + OFF_TAG, TAG_LEN) != 0) {
		snprintf(msg, msglen, "nonce was issued for another token, not '%s'", token);
		r = AK_R_NONCE_WRONG_TOKEN;
		goto out;
	}
	for (i = 0; i < 8; i++)
		t = t << 8 | raw[OFF_TIME + i];
	if (issued_at)
		*issued_at = t;
	if (t > now && t - now > BROKER_NONCE_SKEW) {
		snprintf(msg, msglen, "nonce is issued %llu s in the future",
			 (unsigned long long)(t - now));
		r = AK_R_NONCE_EXPIRED;
		goto out;
	}
	if (t < now && now - t > ttl) {
		snprintf(msg, msglen, "nonce expired %llu s ago (lifetime %llu s)",
			 (unsigned long long)(now - t - ttl), (unsigned long long)ttl);
		r = AK_R_NONCE_EXPIRED;
		goto out;
	}
	r = AK_R_OK;
out:
	free(raw);
	free(canon);
	return r;
}

/* ---- replayed releases ---- */

#define REPLAY_KEY_LEN 16

struct broker_replay {
	pthread_mutex_t lock;
	size_t next, used;
	uint8_t keys[BROKER_REPLAY_SLOTS][REPLAY_KEY_LEN];
};

int broker_replay_new(struct broker_replay **out)
{
	struct broker_replay *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

void broker_replay_free(struct broker_replay *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

bool broker_replay_seen(struct broker_replay *r, const char *nonce,
			const uint8_t thp[AK_THUMBPRINT_LEN])
{
	static const uint8_t zero = 0;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	bool seen = false, ok;
	size_t i;

	if (!r)
		return false;
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, nonce, strlen(nonce)) && EVP_DigestUpdate(ctx, &zero, 1) &&
	     EVP_DigestUpdate(ctx, thp, AK_THUMBPRINT_LEN) && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen < REPLAY_KEY_LEN)
		return false; /* unmarked, never refused */
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->used && !seen; i++)
		seen = memcmp(r->keys[i], md, REPLAY_KEY_LEN) == 0;
	if (!seen) {
		memcpy(r->keys[r->next], md, REPLAY_KEY_LEN);
		r->next = (r->next + 1) % BROKER_REPLAY_SLOTS;
		if (r->used < BROKER_REPLAY_SLOTS)
			r->used++;
	}
	pthread_mutex_unlock(&r->lock);
	return seen;
}
