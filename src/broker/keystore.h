/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key stores of the broker. A store is a small ops table so that the Vault
 * KV v2 and PKCS#11 HSM stores (their own issues) drop in next to the file
 * store without touching the request handler:
 *
 *   [keystore]
 *   type = file          selects the ops table by name
 *   dir = /etc/...       every other key goes to ops->set()
 *
 * Stores are stateless from the broker's view: fetch() returns the token's
 * keys as the store holds them at that moment (replicas share only the
 * store; the file store re-parses a key only when its files changed), and
 * returns each private key as DER PKCS#8 in the OpenSSL secure heap.
 */
#ifndef ATTESTKEY_BROKER_KEYSTORE_H
#define ATTESTKEY_BROKER_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"

#define BROKER_KEY_ID_LEN 20 /* SHA-1: RFC 5280 §4.2.1.2 method (1) */

struct broker_key {
	char *label;			    /* CKA_LABEL */
	char id[2 * BROKER_KEY_ID_LEN + 1]; /* CKA_ID, lower-case hex */
	char type[8];			    /* "RSA", "EC" or "Ed25519" (protocol "type") */
	struct ak_secbuf pkcs8;		    /* DER PrivateKeyInfo, secure heap */
	uint8_t *cert_der;		    /* optional X.509 certificate */
	size_t cert_len;
	uint8_t *spki_der;		    /* DER SubjectPublicKeyInfo (public) */
	size_t spki_len;
};

struct broker_keyset {
	struct broker_key *keys;
	size_t n;
};
/* Wipe every private key and free everything; leaves ks empty. */
void broker_keyset_clear(struct broker_keyset *ks);
/* A deep copy (private keys into the secure heap). 0 or -ENOMEM; dst is
 * empty on failure. */
int broker_keyset_copy(const struct broker_keyset *src, struct broker_keyset *dst) AK_WUR;

struct broker_keystore_ops {
	const char *type; /* the value of "type =" */
	int (*create)(void **ctx);
	/* One INI key of [keystore] (not "type"). 0; -ENOENT for a key the store
	 * does not know; -EINVAL with err naming the bad value. */
	int (*set)(void *ctx, const char *key, const char *value, char *err, size_t errlen);
	/* All keys given: check the configuration is complete and usable. */
	int (*open)(void *ctx, char *err, size_t errlen);
	/* The token's keys, sorted by label. At least one key, or an error
	 * with err naming the file or object that failed (never key bytes). */
	int (*fetch)(void *ctx, const char *token, struct broker_keyset *out, char *err,
		     size_t errlen);
	void (*destroy)(void *ctx);
};

struct broker_keystore {
	const struct broker_keystore_ops *ops;
	void *ctx;
};

/* The ops table for a type name, or NULL. */
const struct broker_keystore_ops *broker_keystore_find(const char *type);
int broker_keystore_new(const char *type, struct broker_keystore **out, char *err,
			size_t errlen) AK_WUR;
int broker_keystore_set(struct broker_keystore *ks, const char *key, const char *value, char *err,
			size_t errlen) AK_WUR;
int broker_keystore_open(struct broker_keystore *ks, char *err, size_t errlen) AK_WUR;
int broker_keystore_fetch(struct broker_keystore *ks, const char *token, struct broker_keyset *out,
			  char *err, size_t errlen) AK_WUR;
void broker_keystore_free(struct broker_keystore *ks);

/* The file store (keystore_file.c). */
extern const struct broker_keystore_ops broker_keystore_file_ops;

/*
 * Shared by stores: parse one unencrypted PKCS#8 PEM private key (RSA or EC)
 * held in pem/pem_len, and optionally its PEM certificate, into key (label
 * is set by the caller). Computes the CKA_ID and refuses a certificate whose
 * public key differs from the private key. key_what / cert_what name the
 * sources in err.
 */
int broker_key_from_pem(const uint8_t *pem, size_t pem_len, const char *key_what,
			const uint8_t *cert_pem, size_t cert_len, const char *cert_what,
			struct broker_key *key, char *err, size_t errlen) AK_WUR;

/* Read a whole file (at most max bytes, regular files only) into the secure
 * heap: for private keys and secrets. 0 or -errno; out is empty on error. */
int broker_read_secure(const char *path, size_t max, struct ak_secbuf *out) AK_WUR;

#endif
