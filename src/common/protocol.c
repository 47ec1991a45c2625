/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <jose/jwk.h>
#include <openssl/evp.h>

#include "attestkey/jwe.h"
#include "attestkey/protocol.h"

/* One table: name and HTTP status per reason (docs/protocol.md §5). */
static const struct {
	const char *name;
	unsigned http;
} reasons[AK_R_COUNT_] = {
	[AK_R_OK] = { "ok", 200 },
	[AK_R_BAD_REQUEST] = { "bad_request", 400 },
	[AK_R_UNKNOWN_TOKEN] = { "unknown_token", 404 },
	[AK_R_NONCE_INVALID] = { "nonce_invalid", 403 },
	[AK_R_NONCE_EXPIRED] = { "nonce_expired", 403 },
	[AK_R_NONCE_WRONG_TOKEN] = { "nonce_wrong_token", 403 },
	[AK_R_TEE_UNSUPPORTED] = { "tee_unsupported", 400 },
	[AK_R_EVIDENCE_MALFORMED] = { "evidence_malformed", 400 },
	[AK_R_UNTRUSTED_CHAIN] = { "untrusted_chain", 403 },
	[AK_R_BAD_SIGNATURE] = { "bad_signature", 403 },
	[AK_R_TCB_MISMATCH] = { "tcb_mismatch", 403 },
	[AK_R_CHIP_ID_MISMATCH] = { "chip_id_mismatch", 403 },
	[AK_R_BINDING_MISMATCH] = { "binding_mismatch", 403 },
	[AK_R_MEASUREMENT_NOT_ALLOWED] = { "measurement_not_allowed", 403 },
	[AK_R_DEBUG_NOT_ALLOWED] = { "debug_not_allowed", 403 },
	[AK_R_GUEST_SVN_TOO_LOW] = { "guest_svn_too_low", 403 },
	[AK_R_VMPL_NOT_ALLOWED] = { "vmpl_not_allowed", 403 },
	[AK_R_TCB_TOO_LOW] = { "tcb_too_low", 403 },
	[AK_R_PIN_INCORRECT] = { "pin_incorrect", 403 },
	[AK_R_PUBKEY_UNSUPPORTED] = { "pubkey_unsupported", 400 },
	[AK_R_KEYSTORE_UNAVAILABLE] = { "keystore_unavailable", 503 },
	[AK_R_KEYSTORE] = { "keystore", 500 },
	[AK_R_AUDIT_UNAVAILABLE] = { "audit_unavailable", 503 },
	[AK_R_POLICY_MISMATCH] = { "policy_mismatch", 403 },
	[AK_R_CERT_REVOKED] = { "cert_revoked", 403 },
	[AK_R_TCB_STATUS_NOT_ALLOWED] = { "tcb_status_not_allowed", 403 },
	[AK_R_COLLATERAL_EXPIRED] = { "collateral_expired", 403 },
	[AK_R_COLLATERAL_UNAVAILABLE] = { "collateral_unavailable", 503 },
	[AK_R_ALG_UNSUPPORTED] = { "alg_unsupported", 400 },
	[AK_R_REVOKED] = { "revoked", 403 },
	[AK_R_RATE_LIMITED] = { "rate_limited", 429 },
	[AK_R_INTERNAL] = { "internal", 500 },
};

const char *ak_reason_name(enum ak_reason r)
{
	if ((unsigned)r >= AK_R_COUNT_ || !reasons[r].name)
		return "internal";
	return reasons[r].name;
}

enum ak_reason ak_reason_from_name(const char *name)
{
	size_t i;

	for (i = 0; name && i < AK_R_COUNT_; i++) {
		if (reasons[i].name && strcmp(reasons[i].name, name) == 0)
			return (enum ak_reason)i;
	}
	return AK_R_INTERNAL;
}

unsigned ak_reason_http_status(enum ak_reason r)
{
	if ((unsigned)r >= AK_R_COUNT_ || !reasons[r].http)
		return 500;
	return reasons[r].http;
}

int ak_jwk_thumbprint(const json_t *jwk, uint8_t out[AK_THUMBPRINT_LEN])
{
	if (!jwk || !json_is_object(jwk))
		return -EINVAL;
	if (jose_jwk_thp_buf(NULL, jwk, "S256", out, AK_THUMBPRINT_LEN) != AK_THUMBPRINT_LEN)
		return -EINVAL;
	return 0;
}

int ak_binding_compute(const char *nonce, const char *token, const uint8_t thp[AK_THUMBPRINT_LEN],
		       uint8_t out[AK_BINDING_LEN])
{
	static const char label[] = "attestkey-v1"; /* followed by its NUL */
	static const uint8_t zero = 0;
	EVP_MD_CTX *ctx = NULL;
	unsigned int len = 0;
	int ret = -EINVAL;

	if (!nonce || !token || !*nonce || !*token)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) ||
	    !EVP_DigestUpdate(ctx, label, sizeof(label)) ||
	    !EVP_DigestUpdate(ctx, nonce, strlen(nonce)) ||
	    !EVP_DigestUpdate(ctx, token, strlen(token)) ||
	    !EVP_DigestUpdate(ctx, &zero, 1) ||
	    !EVP_DigestUpdate(ctx, thp, AK_THUMBPRINT_LEN) ||
	    !EVP_DigestFinal_ex(ctx, out, &len) || len != AK_BINDING_LEN)
		goto out;
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* Growing byte string for the fixed binary encodings below (no secrets). */
struct bytes {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *np;

		while (cap - b->len < n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_u32(struct bytes *b, uint32_t v)
{
	uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	put(b, be, sizeof(be));
}

static void put_u64(struct bytes *b, uint64_t v)
{
	put_u32(b, (uint32_t)(v >> 32));
	put_u32(b, (uint32_t)v);
}

/* lp(x) = u32(length) || x */
static void put_lp(struct bytes *b, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		b->oom = true;
		return;
	}
	put_u32(b, (uint32_t)n);
	put(b, p, n);
}

static void put_str(struct bytes *b, const char *s)
{
	put_lp(b, s, strlen(s));
}

int ak_v2_key_aad(const char *alg, const char *token, size_t index, size_t count,
		  const struct ak_key_meta *m, uint8_t **aad, size_t *aad_len)
{
	static const char label[] = "attestkey-v2-key"; /* followed by its NUL */
	uint8_t digest[32];
	struct bytes b = { 0 };

	*aad = NULL;
	*aad_len = 0;
	if (!alg || !token || !m || !m->label || !m->id || !m->type || index >= count ||
	    count > AK_V2_MAX_KEYS || (m->cert_len && !m->cert))
		return -EINVAL;
	put(&b, label, sizeof(label));
	put_u32(&b, (uint32_t)index);
	put_u32(&b, (uint32_t)count);
	put_str(&b, alg);
	put_str(&b, token);
	put_str(&b, m->label);
	put_str(&b, m->id);
	put_str(&b, m->type);
	put_u64(&b, m->version);
	if (m->cert) {
		if (!EVP_Digest(m->cert, m->cert_len, digest, NULL, EVP_sha256(), NULL)) {
			free(b.p);
			return -ENOMEM;
		}
		put_lp(&b, digest, sizeof(digest));
	} else {
		put_lp(&b, NULL, 0);
	}
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*aad = b.p;
	*aad_len = b.len;
	return 0;
}

int ak_v2_kdf(const uint8_t *z, size_t zlen, const char *token, const char *nonce,
	      uint8_t cek[AK_V2_CEK_LEN])
{
	struct bytes oi = { 0 };
	int ret;

	if (!z || !zlen || !token || !nonce)
		return -EINVAL;
	/* RFC 7518 §4.6.2 OtherInfo */
	put_str(&oi, AK_ALG_V2_ECDH);  /* AlgorithmID */
	put_str(&oi, token);           /* PartyUInfo */
	put_str(&oi, nonce);           /* PartyVInfo */
	put_u32(&oi, AK_V2_CEK_LEN * 8); /* SuppPubInfo */
	ret = oi.oom ? -ENOMEM : ak_concat_kdf(z, zlen, oi.p, oi.len, cek, AK_V2_CEK_LEN);
	free(oi.p);
	return ret;
}
