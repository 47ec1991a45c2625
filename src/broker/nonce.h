/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stateless challenge nonces (docs/protocol.md §1 "The nonce is stateless"):
 *
 *   raw   = ver (1, =1) || issued_at (8, BE Unix seconds) || random (16)
 *           || tag (8: SHA-256(token)[0..7])
 *           || mac (32: HMAC-SHA256(secret, the 33 bytes before it))
 *   nonce = base64url(raw)    65 bytes -> 87 characters
 *
 * Any replica holding the same secret checks any nonce; nothing is stored.
 * Every function takes `now` explicitly so tests control time.
 */
#ifndef ATTESTKEY_BROKER_NONCE_H
#define ATTESTKEY_BROKER_NONCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attestkey/common.h"
#include "attestkey/protocol.h"

#define BROKER_NONCE_VERSION 1
#define BROKER_NONCE_RAW_LEN 65
#define BROKER_NONCE_STR_LEN 87
/* A nonce "issued" this far in the future is still accepted (clock skew
 * between replicas), docs/protocol.md §1. */
#define BROKER_NONCE_SKEW 5
/* The HMAC key must be at least this long (HMAC-SHA256 block strength). */
#define BROKER_SECRET_MIN 32

/* Issue a nonce for token at time now; out gets the 87 characters + NUL. */
int broker_nonce_issue(const uint8_t *secret, size_t secret_len, const char *token, uint64_t now,
		       char out[BROKER_NONCE_STR_LEN + 1]) AK_WUR;

/*
 * Check a nonce presented with token at time now. Returns, in the order the
 * protocol demands: AK_R_NONCE_INVALID (does not decode, wrong version, MAC
 * fails), AK_R_NONCE_WRONG_TOKEN, AK_R_NONCE_EXPIRED (issued more than
 * BROKER_NONCE_SKEW s in the future, or more than ttl s ago), else AK_R_OK.
 * msg gets one sentence on refusal. *issued_at (optional) gets the time.
 */
enum ak_reason broker_nonce_check(const uint8_t *secret, size_t secret_len, const char *nonce,
				  const char *token, uint64_t now, uint64_t ttl,
				  uint64_t *issued_at, char *msg, size_t msglen) AK_WUR;

/*
 * Replayed releases: the nonce is stateless and may be used again within its
 * lifetime, so an exact replay of a captured /v1/keys request is served
 * (encrypted to the same ephemeral key: worthless without it). To keep the
 * release counts of the audit log honest, each process remembers the last
 * BROKER_REPLAY_SLOTS (nonce, ephemeral-key thumbprint) pairs it released
 * to, as 16 bytes of their SHA-256, and the audit line of a repeat says
 * "replay": true. Not shared between replicas, lost on restart, and a pair
 * pushed out by that many newer releases is not recognised
 * (docs/attestkey-broker.8.md, "AUDIT LOG").
 */
#define BROKER_REPLAY_SLOTS 4096
struct broker_replay;
int broker_replay_new(struct broker_replay **out) AK_WUR;
void broker_replay_free(struct broker_replay *r); /* NULL-safe */
/* Remember the pair; true when it was already remembered. */
bool broker_replay_seen(struct broker_replay *r, const char *nonce,
			const uint8_t thp[AK_THUMBPRINT_LEN]);

#endif
