/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JWE profile of protocol v1: flattened JSON serialisation,
 * {"alg":"ECDH-ES","enc":"A256GCM"} in the protected header, to an EC
 * P-384 JWK. Built and opened with libjose.
 */
#ifndef ATTESTKEY_JWE_H
#define ATTESTKEY_JWE_H

#include <jansson.h>
#include <openssl/evp.h>
#include "attestkey/common.h"
#include "attestkey/secmem.h"

/*
 * Nothing here logs. The _to/_with functions set *why (when why is not NULL)
 * to a constant sentence saying what failed, without key material or text
 * the sender chose, for the caller's one log line; NULL on success.
 */

/* Encrypt pt to the public JWK; *jwe_out is a new flattened JWE object. */
int ak_jwe_encrypt(const json_t *jwk_pub, const uint8_t *pt, size_t ptlen,
		   json_t **jwe_out) AK_WUR;

/* Decrypt with the private JWK straight into the secure heap. Refuses any
 * header other than the profile above. On failure *out is left empty: no
 * partial plaintext ever reaches the caller. */
int ak_jwe_decrypt(const json_t *jwk_priv, const json_t *jwe,
		   struct ak_secbuf *out) AK_WUR;

/* The same on EVP_PKEYs, converted once by the caller (each JWK conversion
 * costs libjose's EC_KEY_check_key()). recipient/priv must be EC P-384, and
 * a recipient must come from ak_pkey_from_jwk_p384() (which validated it) or
 * be a key of our own. epk: a fresh P-384 key made for this JWE alone,
 * which is freed (even on failure), or NULL to make one here. */
int ak_jwe_encrypt_to(EVP_PKEY *recipient, EVP_PKEY *epk, const uint8_t *pt, size_t ptlen,
		      json_t **jwe_out, const char **why) AK_WUR;
int ak_jwe_decrypt_with(EVP_PKEY *priv, const json_t *jwe, struct ak_secbuf *out,
			const char **why) AK_WUR;
/* A fresh EC P-384 key (its scalar in the secure heap when it is up), or
 * NULL with the reason in OpenSSL's error queue (the caller logs it). The
 * curve is named "secp384r1": inside an application whose EC methods an
 * engine took over (libp11), the legacy path knows only that name. */
EVP_PKEY *ak_ec_p384_generate(void) AK_WUR;
/* {kty, crv, x, y} of an EC key: never "d". */
json_t *ak_jwk_from_pkey_public(EVP_PKEY *pkey) AK_WUR;
/* An EC P-384 public JWK to an EVP_PKEY, validated as SP 800-56A allows for
 * ephemeral keys (on the curve, not infinity). NULL if it is not one. */
EVP_PKEY *ak_pkey_from_jwk_p384(const json_t *jwk) AK_WUR;

/* Protocol v2 (attestkey/envelope.h) negotiates the ephemeral curve by the
 * request's "crv": "P-256" or "P-384". The same two functions for either:
 * a fresh key on the named curve (NULL for another name), and a public JWK
 * on it validated as above (crv NULL: either of the two). */
EVP_PKEY *ak_ec_generate(const char *crv) AK_WUR;
EVP_PKEY *ak_pkey_from_jwk_ec(const json_t *jwk, const char *crv) AK_WUR;
/* "P-256" / "P-384" of an EC key on one of those curves, else NULL. */
const char *ak_ec_crv(EVP_PKEY *pkey);
/* For a process that makes and imports ephemeral keys all day (the
 * broker): keep each curve's domain parameters, so that the two functions
 * above copy them instead of building the curve from its name each time
 * (about 0.06 ms per key on P-256, twice per release). Call keep once
 * before any thread uses them, drop after the last has stopped; without
 * keep (the module) everything works by name, as before. */
void ak_ec_params_keep(void);
void ak_ec_params_drop(void);

/* The building blocks both envelopes share, in attestkey's library context.
 * ECDH: the shared x coordinate into z (*zlen: its room in, its length
 * out); peer must be validated already. Concat KDF with SHA-256 (OpenSSL's
 * SSKDF) of z and other_info. AES-256-GCM with a 16-byte tag: open
 * decrypts into out (the secure heap, exactly ctlen bytes of room) and
 * keeps nothing unless the tag verifies (-EBADMSG); seal writes ptlen bytes
 * to ct. All 0 or -errno. */
int ak_ecdh_derive(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t *z, size_t *zlen) AK_WUR;
int ak_concat_kdf(const uint8_t *z, size_t zlen, const uint8_t *other_info, size_t oilen,
		  uint8_t *out, size_t outlen) AK_WUR;
int ak_aes256gcm_open(const uint8_t key[32], const uint8_t *iv, size_t ivlen,
		      const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
		      const uint8_t tag[16], struct ak_secbuf *out) AK_WUR;
int ak_aes256gcm_seal(const uint8_t key[32], const uint8_t *iv, size_t ivlen,
		      const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
		      uint8_t *ct, uint8_t tag[16]) AK_WUR;

/* A fresh ephemeral EC P-384 private JWK; ak_jwk_free_secret() wipes "d". */
json_t *ak_jwk_generate_p384(void) AK_WUR;
/* Public copy of a JWK (no "d"). */
json_t *ak_jwk_public(const json_t *jwk) AK_WUR;
/* Wipe private members of a JWK in place, then json_decref it. NULL-safe. */
void ak_jwk_free_secret(json_t *jwk);

#endif
