/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Protocol v1 and v2 between the module and the broker (docs/protocol.md).
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
	/* issue 10: protocol v2 */
	AK_R_ALG_UNSUPPORTED,    /* the request's "alg" is not one the challenge offered */
	/* issue 12: key lifecycle */
	AK_R_REVOKED,            /* the token, chip id, FMSPC or measurement is on the
				  * broker's deny list (attestkey-broker revoke) */
	/* issue 13: hostile clients */
	AK_R_RATE_LIMITED,       /* the client's address is over [broker] rate_limit:
				  * HTTP 429, try later or another replica */
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

/*
 * Release envelopes (docs/protocol.md §4): the names the challenge's "algs"
 * lists, the request's "alg" picks, and a v2 release's "envelope"."alg"
 * repeats.
 *
 *  v1  one flattened JWE per key, ECDH-ES + A256GCM to a P-384 key: one key
 *      agreement per key on each side. Kept for one release of overlap; a
 *      request without "alg" asks for it.
 *  v2  ONE envelope object per release; keys[] carries each key's metadata
 *      and its own ciphertext, opened with the envelope's one content key.
 *      Kinds:
 *      AK_ALG_V2_ECDH    one ECDH-ES agreement (P-256 or P-384, the curve
 *                        of the request's pubkey) gives the content key;
 *                        each key is AES-256-GCM under it with its own IV
 *                        and its metadata as AAD (ak_v2_key_aad).
 *      AK_ALG_V2_RSA_KWP the HSM envelope (helper "hsm", issue 10 item 2):
 *                        an AES-256 key RSA-OAEP-wrapped to the request's
 *                        RSA pubkey in envelope "ek", each private key
 *                        AES-KWP-wrapped (RFC 5649) by the HSM in the
 *                        entry's "wrapped" (docs/protocol.md §4.3). Its
 *                        names, with the SHA-1 form an HSM such as SoftHSM
 *                        gives, and its code: attestkey/hsmenv.h.
 */
#define AK_ALG_V1 "ECDH-ES+A256GCM"
#define AK_ALG_V2_ECDH "ak2-ECDH-ES+A256GCM"
#define AK_ALG_V2_RSA_KWP "ak2-RSA-OAEP-256+A256KWP"
#define AK_V2_CEK_LEN 32 /* AES-256 */
#define AK_V2_IV_LEN 12  /* GCM, NIST SP 800-38D §8.2.2 random IV */
#define AK_V2_TAG_LEN 16
#define AK_V2_MAX_KEYS 4096 /* keys in one release; far above what 1 MiB holds */

/* A key's metadata as the release carries it: what its AAD binds, so that
 * no entry's ciphertext can be moved under another entry's name. */
struct ak_key_meta {
	const char *label;  /* CKA_LABEL */
	const char *id;     /* CKA_ID as on the wire: lower-case hex */
	const char *type;   /* "RSA", "EC", "Ed25519" */
	const uint8_t *cert; /* DER X.509 as decoded from "cert", or NULL */
	size_t cert_len;
	uint64_t version;   /* the key store's version; 0 when it gives none */
};

/*
 * The AAD of entry index (0-based) of a release of count keys:
 *
 *   "attestkey-v2-key" 0x00 || u32(index) || u32(count) || lp(alg)
 *   || lp(token) || lp(label) || lp(id) || lp(type) || u64(version)
 *   || lp(cert == NULL ? "" : SHA-256(cert))
 *
 * u32/u64 big-endian; lp(x) = u32(length of x) || x. *aad is malloc()ed
 * (no secret in it); the caller frees it. 0, -EINVAL, -ENOMEM.
 */
int ak_v2_key_aad(const char *alg, const char *token, size_t index, size_t count,
		  const struct ak_key_meta *m, uint8_t **aad, size_t *aad_len) AK_WUR;

/*
 * The content key of AK_ALG_V2_ECDH from the shared secret Z: Concat KDF
 * (NIST SP 800-56A §5.8.2.1, SHA-256) as RFC 7518 §4.6.2 uses it, with
 * AlgorithmID = AK_ALG_V2_ECDH, PartyUInfo = token, PartyVInfo = nonce
 * (the nonce string as issued), SuppPubInfo = 256. Binding the token and
 * the nonce makes a release's content key this request's alone.
 */
int ak_v2_kdf(const uint8_t *z, size_t zlen, const char *token, const char *nonce,
	      uint8_t cek[AK_V2_CEK_LEN]) AK_WUR;

#endif
