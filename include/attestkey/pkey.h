/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private keys that exist only in the OpenSSL secure heap (DESIGN.md
 * "Invariants"; docs/security.md says how the tests check it).
 *
 * OpenSSL's generic decoders (d2i_PrivateKey, EVP_PKCS82PKEY, OSSL_DECODER)
 * copy the PKCS#8 DER into ordinary scratch buffers and free them unwiped;
 * OpenSSL 3.0 imports RSA numbers from parameters into ordinary-heap
 * BIGNUMs (which happens whenever a provider key is exported to a legacy
 * one, as it is when an ENGINE such as libp11's takes over RSA); and the
 * RSA method caches Montgomery contexts holding p and q in the ordinary
 * heap. ak_privkey avoids all three:
 *
 * - PKCS#8 is walked in place with ASN1_get_object (no allocation); only
 *   the algorithm's typed decoders run, and those keep private numbers in
 *   secure BIGNUMs (CBIGNUM);
 * - RSA and EC keys are legacy objects bound to OpenSSL's own built-in
 *   methods (never an ENGINE's), used with the low-level calls, so no
 *   export to another representation ever happens; RSA's private
 *   Montgomery cache is off (RSA_FLAG_CACHE_PRIVATE), so the per-operation
 *   contexts are wiped (BN_MONT_CTX_free clears) when each operation ends;
 * - Ed25519 lives in a private library context holding only OpenSSL's
 *   default provider (the seed is kept in secure memory by it).
 */
#ifndef ATTESTKEY_PKEY_H
#define ATTESTKEY_PKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/types.h>

#include "attestkey/common.h"

/* attestkey's own library context: OpenSSL's default provider only, no
 * openssl.cnf, nothing the host application loaded. Created once; NULL only
 * when OpenSSL cannot create it (logged once). */
OSSL_LIB_CTX *ak_libctx(void);

struct ak_privkey {
	int type;      /* EVP_PKEY_RSA, EVP_PKEY_EC or EVP_PKEY_ED25519 */
	RSA *rsa;      /* RSA: RSA_PKCS1_OpenSSL(), no private Montgomery cache */
	EC_KEY *ec;    /* EC: EC_KEY_OpenSSL() */
	EVP_PKEY *ed;  /* Ed25519, in ak_libctx() */
	EVP_PKEY *pub; /* the public key alone, in ak_libctx() */
	int refs;      /* atomic */
};

/* Why a decode failed, for the caller's one log line. */
enum ak_pkey_err {
	AK_PKEY_OK = 0,
	AK_PKEY_NOT_PKCS8,     /* not DER PKCS#8 PrivateKeyInfo */
	AK_PKEY_UNSUPPORTED,   /* an algorithm or curve attestkey does not hold */
	AK_PKEY_BAD_KEY,       /* the inner key does not parse or is inconsistent */
	AK_PKEY_NO_SECURE_MEM, /* the secure heap is missing or full */
};
const char *ak_pkey_strerror(enum ak_pkey_err e);

/* Decode an unencrypted PKCS#8 PrivateKeyInfo (der should be in the secure
 * heap; it is only read). Logs nothing. */
enum ak_pkey_err ak_privkey_from_pkcs8(const uint8_t *der, size_t len,
				       struct ak_privkey **out) AK_WUR;
/* The algorithm of a PKCS#8 key as a short name ("rsaEncryption",
 * "EC secp256k1", "ED448"), read from its public AlgorithmIdentifier: for
 * the message that refuses an unsupported one. */
void ak_pkcs8_algorithm(const uint8_t *der, size_t len, char *out, size_t outlen);
/* Build from an EVP_PKEY through its PKCS#8 encoding: for tests and the
 * CLI, whose keys come from OpenSSL's generators. */
enum ak_pkey_err ak_privkey_from_evp(EVP_PKEY *pkey, struct ak_privkey **out) AK_WUR;
struct ak_privkey *ak_privkey_ref(struct ak_privkey *k);
/* Drop one reference; the last one frees (and so wipes) the key. NULL-safe. */
void ak_privkey_unref(struct ak_privkey *k);

/* The first "PRIVATE KEY" block of a PEM text (blocks before it, such as
 * "EC PARAMETERS", are skipped), decoded into the secure heap: *der (free
 * with OPENSSL_secure_clear_free) of *der_len bytes. A PKCS#1, SEC1 or
 * encrypted key is refused (-EINVAL) with err naming the conversion; no
 * such block at all is -ENODATA, with OpenSSL's error queue left to the
 * caller (a full secure heap fails alike). what names the source in err. */
int ak_pem_pkcs8_secure(const uint8_t *pem, size_t pem_len, const char *what, unsigned char **der,
			long *der_len, char *err, size_t errlen) AK_WUR;

/* A public key from PKCS#11 attributes (the broker's HSM store, the CLI's
 * pkcs11 store): an RSA modulus and public exponent (big-endian); or
 * CKA_EC_PARAMS (a named curve's OID, or edwards25519 as the OID or the
 * PrintableString of PKCS#11 3.0) and CKA_EC_POINT (a DER OCTET STRING,
 * or the raw point some tokens give) of an EC key, or of an Ed25519 key
 * (edwards: CKK_EC_EDWARDS). NULL when they make no key; OpenSSL's error
 * queue is cleared. */
EVP_PKEY *ak_rsa_public(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen);
EVP_PKEY *ak_ec_public(bool edwards, const uint8_t *params, size_t plen, const uint8_t *point,
		       size_t ptlen);

/* Overwrite the stack below the caller's frame (64 KiB): OpenSSL's
 * decoders leave key bytes in their dead stack frames (PEM base64 decoding
 * was seen doing so), which a core dump of a long-lived thread would hold.
 * Call it right after a decoding call returns. */
void ak_stack_wipe(void);
/* Zero every vector register (x86-64; nothing elsewhere): OpenSSL's RSA
 * exponentiation leaves exponent limbs there, which a core dump's notes
 * record. Call it after ak_stack_wipe() where a key was just used. */
void ak_vector_registers_wipe(void);

#endif
