/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JWE profile of protocol v1: flattened JSON serialisation,
 * {"alg":"ECDH-ES","enc":"A256GCM"} in the protected header, to an EC
 * P-384 JWK. Built and opened with libjose.
 */
#ifndef ATTESTKEY_JWE_H
#define ATTESTKEY_JWE_H

#include <jansson.h>
#include "attestkey/common.h"
#include "attestkey/secmem.h"

/* Encrypt pt to the public JWK; *jwe_out is a new flattened JWE object. */
int ak_jwe_encrypt(const json_t *jwk_pub, const uint8_t *pt, size_t ptlen,
		   json_t **jwe_out) AK_WUR;

/* Decrypt with the private JWK straight into the secure heap. Refuses any
 * header other than the profile above. On failure *out is left empty: no
 * partial plaintext ever reaches the caller. */
int ak_jwe_decrypt(const json_t *jwk_priv, const json_t *jwe,
		   struct ak_secbuf *out) AK_WUR;

/* A fresh ephemeral EC P-384 private JWK; ak_jwk_free_secret() wipes "d". */
json_t *ak_jwk_generate_p384(void) AK_WUR;
/* Public copy of a JWK (no "d"). */
json_t *ak_jwk_public(const json_t *jwk) AK_WUR;
/* Wipe private members of a JWK in place, then json_decref it. NULL-safe. */
void ak_jwk_free_secret(json_t *jwk);

#endif
