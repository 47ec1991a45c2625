/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Protocol v1 between the module and the broker (docs/protocol.md).
 * Everything both sides must compute identically lives here.
 */
#ifndef ATTESTKEY_PROTOCOL_H
#define ATTESTKEY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "attestkey/common.h"

#define AK_PROTOCOL_PATH_CHALLENGE "/v1/challenge"
#define AK_PROTOCOL_PATH_KEYS "/v1/keys"
#define AK_PROTOCOL_PATH_PUBLIC "/v1/public/" /* + token name, GET */
#define AK_BINDING_LEN 64     /* SHA-512, = SNP REPORT_DATA / TDX REPORTDATA */
#define AK_THUMBPRINT_LEN 32  /* RFC 7638 JWK thumbprint, SHA-256 */
#define AK_MAX_BODY (1024 * 1024) /* largest request or response body */

/* Machine-readable refusal reasons: the "error" member of every error body. */
enum ak_reason {
	AK_R_OK = 0,
	AK_R_BAD_REQUEST,        /* malformed JSON / missing member / wrong type */
	AK_R_UNKNOWN_TOKEN,
	AK_R_NONCE_INVALID,      /* not ours: bad encoding or HMAC */
	AK_R_NONCE_EXPIRED,
	AK_R_NONCE_WRONG_TOKEN,  /* HMAC fine under another token name */
	AK_R_TEE_UNSUPPORTED,
	AK_R_EVIDENCE_MALFORMED, /* report/quote/cert table does not parse */
	AK_R_UNTRUSTED_CHAIN,    /* VCEK/ASK do not chain to a configured root */
	AK_R_BAD_SIGNATURE,      /* report signature does not verify */
	AK_R_TCB_MISMATCH,       /* VCEK TCB extensions != REPORTED_TCB */
	AK_R_CHIP_ID_MISMATCH,   /* VCEK hwID != CHIP_ID */
	AK_R_BINDING_MISMATCH,   /* REPORT_DATA != recomputed binding */
	AK_R_MEASUREMENT_NOT_ALLOWED,
	AK_R_DEBUG_NOT_ALLOWED,
	AK_R_GUEST_SVN_TOO_LOW,
	AK_R_VMPL_NOT_ALLOWED,
	AK_R_TCB_TOO_LOW,
	AK_R_PIN_INCORRECT,
	AK_R_PUBKEY_UNSUPPORTED, /* ephemeral JWK not an acceptable key */
	AK_R_KEYSTORE_UNAVAILABLE, /* no room for the keys now (secure heap) */
	AK_R_KEYSTORE,           /* key store failure (broker side) */
	AK_R_AUDIT_UNAVAILABLE,  /* the release could not be audited (broker side) */
	/* issue 9: real SEV-SNP and TDX */
	AK_R_POLICY_MISMATCH,    /* a policy field other than the measurement differs
				  * (host_data, id_key_digest, family_id, image_id, SMT,
				  * migration agent, platform_info, RTMRs, MRCONFIGID...) */
	AK_R_CERT_REVOKED,       /* a certificate of the chain is on its issuer's CRL */
	AK_R_TCB_STATUS_NOT_ALLOWED, /* TDX: the TCB status is not an accepted one */
	AK_R_COLLATERAL_EXPIRED, /* TDX: TCB info / QE identity / CRL outside validity */
	AK_R_COLLATERAL_UNAVAILABLE, /* certificates or collateral could not be obtained
				      * (AMD KDS / Intel PCS unreachable, offline cache empty) */
	AK_R_INTERNAL,
	AK_R_COUNT_
};
/* "nonce_expired" etc.; never NULL. */
const char *ak_reason_name(enum ak_reason r);
/* Inverse of ak_reason_name; AK_R_INTERNAL for unknown names. */
enum ak_reason ak_reason_from_name(const char *name);
/* HTTP status the broker answers for a reason (400, 403, 404, 500...). */
unsigned ak_reason_http_status(enum ak_reason r);

/* RFC 7638 thumbprint (SHA-256) of the public part of a JWK. */
int ak_jwk_thumbprint(const json_t *jwk, uint8_t out[AK_THUMBPRINT_LEN]) AK_WUR;

/*
 * binding = SHA-512("attestkey-v1" 0x00 || nonce || token || 0x00 || thp)
 * where nonce is the nonce string exactly as the broker issued it (ASCII
 * base64url), token the token name, thp the raw 32-byte JWK thumbprint of
 * the module's ephemeral public key.
 */
int ak_binding_compute(const char *nonce, const char *token,
		       const uint8_t thp[AK_THUMBPRINT_LEN],
		       uint8_t out[AK_BINDING_LEN]) AK_WUR;

#endif
