/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HSM envelope (docs/hsm.md): how a PKCS#11 HSM key store releases
 * keys without the broker ever holding them. For one release the HSM
 * makes an AES-256 key (a session object), wraps each private key with it
 * (CKM_AES_KEY_WRAP_PAD: RFC 5649 key wrap with padding, the plaintext
 * being the key's DER PKCS#8 PrivateKeyInfo), and wraps the AES key with
 * RSA-OAEP (CKM_RSA_PKCS_OAEP) to the guest's ephemeral RSA public key:
 * one RSA operation per release however many keys it carries.
 *
 * The alg (protocol v2, docs/protocol.md §4.3) names the OAEP hash in
 * JOSE's spelling (RFC 7518 §4.3: "RSA-OAEP" is SHA-1 with MGF1-SHA-1,
 * "RSA-OAEP-256" SHA-256 with MGF1-SHA-256), and "A256KWP" the RFC 5649
 * wrap with a 256-bit key. SoftHSMv2 2.6 wraps only with OAEP SHA-1 (its
 * C_WrapKey refuses any other hashAlg); an HSM that takes SHA-256 gives the
 * second. The broker finds out which when it opens the key store.
 */
#ifndef ATTESTKEY_HSMENV_H
#define ATTESTKEY_HSMENV_H

#define AK_HSMENV_ALG_OAEP "ak2-RSA-OAEP+A256KWP"
#define AK_HSMENV_ALG_OAEP_256 "ak2-RSA-OAEP-256+A256KWP" /* = AK_ALG_V2_RSA_KWP */
#define AK_HSMENV_KEK_LEN 32	/* the AES-256 key the HSM makes per release */
#define AK_HSMENV_RSA_BITS 3072 /* the guest's ephemeral key */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"

/*
 * The guest's side (the PKCS#11 module). Nothing here logs: failures set
 * *why (when why is not NULL) to a constant sentence without key material
 * or sender-chosen text, for the caller's one log line; NULL on success.
 */

/* The ephemeral key as it travels in the request's "pubkey": the RSA
 * public JWK {"kty": "RSA", "n", "e"} (RFC 7518 §6.3.1), never a private
 * member. NULL on failure. */
struct json_t;
struct json_t *ak_hsmenv_jwk_public(EVP_PKEY *rsa) AK_WUR;
/* The broker's side of it: an RSA public JWK with exactly kty, n and e (a
 * private member is refused), of AK_HSMENV_RSA_BITS to 8192 bits with an
 * odd exponent of 3 or more, to a public key in ak_libctx(). NULL with
 * *why naming what is wrong. */
EVP_PKEY *ak_hsmenv_pkey_from_jwk(const struct json_t *jwk, const char **why) AK_WUR;
/* The CKA_ID the broker gives a key (RFC 5280 §4.2.1.2 method 1: SHA-1 of
 * the subjectPublicKey BIT STRING), in lower-case hex: KWP has no AAD, so
 * the module checks each unwrapped key against its entry's id. 0 or
 * -EINVAL. */
int ak_hsmenv_key_id(EVP_PKEY *pub, char hex[41]) AK_WUR;

/* Whether alg is one of the envelope's names above. */
bool ak_hsmenv_alg_known(const char *alg);
/* The ephemeral RSA key the module makes when the challenge asks for this
 * envelope (AK_HSMENV_RSA_BITS, in ak_libctx(): its private numbers in
 * the secure heap); NULL with the reason in OpenSSL's error queue. */
EVP_PKEY *ak_hsmenv_keygen(void) AK_WUR;
/* RSA-OAEP-decrypt ek (the hash as alg names it) with the ephemeral key
 * into kek, in the secure heap: exactly AK_HSMENV_KEK_LEN bytes, or an
 * error with kek left empty. */
int ak_hsmenv_open(EVP_PKEY *priv, const char *alg, const uint8_t *ek, size_t ek_len,
		   struct ak_secbuf *kek, const char **why) AK_WUR;
/* RFC 5649-unwrap wk with kek into out (secure heap): one DER PKCS#8
 * SEQUENCE, optionally followed by fewer than 8 zero bytes (SoftHSMv2 pads
 * the key to a multiple of 8 before wrapping it, softhsm/SoftHSMv2#305),
 * which are dropped. A failed integrity check, anything else after the
 * DER, or a plaintext that is not a DER SEQUENCE is refused and leaves out
 * empty: no partial key. */
int ak_hsmenv_unwrap(const struct ak_secbuf *kek, const uint8_t *wk, size_t wk_len,
		     struct ak_secbuf *out, const char **why) AK_WUR;

#endif
