/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <jose/jwk.h>
#include <openssl/evp.h>

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
