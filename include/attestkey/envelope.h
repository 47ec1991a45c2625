/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The release envelope of protocol v2 (docs/protocol.md §4.2): ONE key
 * agreement per release, however many keys it carries.
 *
 *   broker                                  module
 *   ak_env_seal_begin(recipient)  -> "envelope" {"alg", "epk"}
 *   ak_env_seal_key() per key     -> keys[i] {"iv", "ct", "tag"}
 *                                           ak_env_open_begin(eph, envelope)
 *                                           ak_env_open_key() per key
 *
 * The content key lives in the secure heap inside the seal/open object and
 * is wiped by ak_env_*_free(). ak_env_open_key() only reads the object, so
 * several threads may open keys of one release at once.
 *
 * Nothing here logs: failures set *why (when why is not NULL) to a constant
 * sentence without key material or sender-chosen text, for the caller's one
 * log line (the token and the key's label are the caller's to add).
 */
#ifndef ATTESTKEY_ENVELOPE_H
#define ATTESTKEY_ENVELOPE_H

#include <jansson.h>
#include <openssl/evp.h>
#include "attestkey/common.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"

struct ak_env;

/*
 * Broker side, AK_ALG_V2_ECDH. recipient: the request's validated EC key
 * (P-256 or P-384, from ak_pkey_from_jwk_ec()); epk: a fresh key on the same
 * curve made for this release alone, which is freed (even on failure), or
 * NULL to make one here. *envelope_out: {"alg", "epk"} for the reply.
 */
int ak_env_seal_begin(EVP_PKEY *recipient, EVP_PKEY *epk, const char *token, const char *nonce,
		      struct ak_env **out, json_t **envelope_out, const char **why) AK_WUR;
/* Encrypt one key (entry index of count) and set "iv", "ct" and "tag" in
 * item, which already holds the metadata members. */
int ak_env_seal_key(struct ak_env *e, size_t index, size_t count, const struct ak_key_meta *m,
		    const uint8_t *pt, size_t ptlen, json_t *item, const char **why) AK_WUR;

/*
 * Module side. priv: our ephemeral key; envelope: the release's "envelope"
 * object, whose "alg" must be want_alg (the one the request asked) and whose
 * "epk" must be a valid point on priv's curve.
 */
int ak_env_open_begin(EVP_PKEY *priv, const json_t *envelope, const char *want_alg,
		      const char *token, const char *nonce, struct ak_env **out,
		      const char **why) AK_WUR;
/* Decrypt entry index of count into out (the secure heap), checking its
 * tag over the metadata m; out is left empty on any failure. Thread-safe on
 * one e. */
int ak_env_open_key(const struct ak_env *e, size_t index, size_t count,
		    const struct ak_key_meta *m, const json_t *item, struct ak_secbuf *out,
		    const char **why) AK_WUR;

/* Wipe the content key and free. NULL-safe. */
void ak_env_free(struct ak_env *e);

#endif
