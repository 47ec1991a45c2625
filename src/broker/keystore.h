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

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <openssl/types.h>

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
	unsigned version; /* the store's version of the key (Vault KV v2); 0: none */
	/* A store that keeps the private key itself (the PKCS#11 HSM store,
	 * whose ops have wrap): pkcs8 stays empty and this is the store's own
	 * reference to the key (the HSM's CK_OBJECT_HANDLE); 0 otherwise. */
	unsigned long store_ref;
};

/*
 * A token's keys as a fetch returns them: a read-only view of one parsed,
 * reference-counted key set. Concurrent requests for a token share the set
 * the store cached (one copy of each private key in the secure heap, however
 * many requests are in flight); the set is wiped and freed when its last
 * holder clears its view.
 */
struct broker_keys; /* the shared, counted set (keystore.c) */
struct broker_keyset {
	const struct broker_key *keys;
	size_t n;
	struct broker_keys *shared; /* the reference this view holds; NULL if empty */
};
/* Drop this view's reference (the last one wipes every private key and
 * frees everything); leaves ks empty. */
void broker_keyset_clear(struct broker_keyset *ks);
/* Another view of the same keys (a reference; never fails). */
void broker_keyset_share(const struct broker_keyset *src, struct broker_keyset *dst);
/* For stores: make keys[0..n-1], filled by broker_key_from_pem(), an
 * immutable shared set owned by ks. Takes keys in every case (freed and
 * wiped on failure). 0 or -ENOMEM. */
int broker_keyset_adopt(struct broker_keyset *ks, struct broker_key *keys, size_t n) AK_WUR;
/* Wipe and free keys[0..n-1] and the array (a set not adopted). */
void broker_keys_free(struct broker_key *keys, size_t n);

/*
 * The HSM envelope (docs/hsm.md, include/attestkey/hsmenv.h): the private
 * keys of one release leave the HSM only by C_WrapKey, each wrapped with
 * one AES-256 key the HSM made for this release (CKM_AES_KEY_WRAP_PAD,
 * RFC 5649, DER PKCS#8 inside), and that key wrapped with RSA-OAEP to the
 * guest's ephemeral RSA key. Nothing here is secret.
 */
struct broker_envelope {
	const char *alg; /* AK_HSMENV_ALG_*: which OAEP hash the HSM used */
	uint8_t *ek;	 /* RSA-OAEP of the AES key */
	size_t ek_len;
	uint8_t **wk; /* wk[i]: the AES-KWP wrap of the keyset's key i */
	size_t *wk_len;
	size_t n;
};
void broker_envelope_clear(struct broker_envelope *env);

/* [token NAME] key_version = LABEL:N pins a key to a version of a store
 * that keeps versions (Vault KV v2); other keys follow the latest. */
struct broker_key_pin {
	char *label;
	unsigned version;
};

/* What a fetch asks for: the token (for messages), where its keys are in
 * the store ([token] keystore_path, default the token's name) and the
 * pinned versions. */
struct broker_fetch {
	const char *token;
	const char *path;
	const struct broker_key_pin *pins;
	size_t n_pins;
};

/*
 * A store failure that is not the configuration's or the keys' fault and
 * may pass (Vault sealed, unreachable, rate limited, a policy or a key
 * missing there): fetch returns it with err naming what failed, and the
 * release is refused 503 keystore_unavailable (never a partial release).
 */
#define BROKER_KEYSTORE_UNAVAILABLE (-EAGAIN)

struct broker_keystore_ops {
	const char *type; /* the value of "type =" */
	bool versioned;	  /* keeps versions: [token] key_version may pin them */
	int (*create)(void **ctx);
	/* One INI key of [keystore] (not "type"). 0; -ENOENT for a key the store
	 * does not know; -EINVAL with err naming the bad value. */
	int (*set)(void *ctx, const char *key, const char *value, char *err, size_t errlen);
	/* All keys given: check the configuration is complete and usable. */
	int (*open)(void *ctx, char *err, size_t errlen);
	/* The keys at req->path (pinned versions as req says), sorted by
	 * label. At least one key, or an error with err naming the file or
	 * object that failed (never key bytes); -ENOBUFS when the secure heap
	 * has no room for them; BROKER_KEYSTORE_UNAVAILABLE as said above. */
	int (*fetch)(void *ctx, const struct broker_fetch *req, struct broker_keyset *out,
		     char *err, size_t errlen);
	/* Optional: bytes of secure heap the keys at path take (an upper
	 * bound), for [broker] secure_heap = auto. 0 or -errno. */
	int (*secure_bytes)(void *ctx, const char *path, size_t *out);
	/* Optional, for a store that never hands out private keys (an HSM):
	 * its fetch() returns each key's public part and store_ref, never
	 * pkcs8, and wrap() makes the envelope of ks (as that fetch returned
	 * it, every key, in order) to the guest's RSA public key. err names
	 * the key or the HSM call that failed. 0 or -errno. */
	int (*wrap)(void *ctx, const struct broker_keyset *ks, EVP_PKEY *guest,
		    struct broker_envelope *out, char *err, size_t errlen);
	/* With wrap: the envelope's alg (AK_HSMENV_ALG_*) once open. */
	const char *(*wrap_alg)(void *ctx);
	/* Optional, for /readyz: a cheap check that the store answers now
	 * (a directory readable, a Vault lookup-self, an HSM session). 0, or
	 * -errno with err saying what does not answer. */
	int (*ready)(void *ctx, char *err, size_t errlen);
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
int broker_keystore_fetch_at(struct broker_keystore *ks, const struct broker_fetch *req,
			     struct broker_keyset *out, char *err, size_t errlen) AK_WUR;
/* The same for a token whose keys are at its own name, unpinned. */
int broker_keystore_fetch(struct broker_keystore *ks, const char *token, struct broker_keyset *out,
			  char *err, size_t errlen) AK_WUR;
bool broker_keystore_versioned(const struct broker_keystore *ks);
/* Adds the token's secure_bytes to *total (best effort: what cannot be
 * counted now fails at the fetch); -ENOTSUP when the store cannot tell. */
int broker_keystore_secure_bytes(struct broker_keystore *ks, const char *token, size_t *total);
void broker_keystore_free(struct broker_keystore *ks);
/* ops->ready; 0 for a store without it. */
int broker_keystore_ready(struct broker_keystore *ks, char *err, size_t errlen) AK_WUR;
/* Whether the store releases keys only wrapped by itself (ops->wrap). */
bool broker_keystore_wraps(const struct broker_keystore *ks);
/* The alg of its envelope (docs/protocol.md §4.3), NULL if it has none. */
const char *broker_keystore_wrap_alg(const struct broker_keystore *ks);
/* ops->wrap; -ENOTSUP for a store without it. out is empty on error. */
int broker_keystore_wrap(struct broker_keystore *ks, const struct broker_keyset *keys,
			 EVP_PKEY *guest, struct broker_envelope *out, char *err,
			 size_t errlen) AK_WUR;

/* The file store (keystore_file.c). */
extern const struct broker_keystore_ops broker_keystore_file_ops;
/* The Vault KV v2 store (keystore_vault.c, docs/vault.md). */
extern const struct broker_keystore_ops broker_keystore_vault_ops;
/* The PKCS#11 HSM store (keystore_pkcs11.c, docs/hsm.md). */
extern const struct broker_keystore_ops broker_keystore_pkcs11_ops;

/* A key's name as a store gives it can be its label (CKA_LABEL, the
 * broker's log and audit lines): no control character (a NUL counted as
 * one) in its len bytes. */
bool broker_label_printable(const char *s, size_t len);

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

/*
 * For stores that hold no private key bytes: the public part of key from a
 * DER SubjectPublicKeyInfo (type checked as for a PEM key, CKA_ID computed
 * the same way, spki copied). what names the key in err.
 */
int broker_key_from_spki(const uint8_t *spki, size_t len, const char *what,
			 struct broker_key *key, char *err, size_t errlen) AK_WUR;

/*
 * Files the broker reads are trusted only if only their owner can change
 * them, and, when they hold a secret, read them: the checks return -EPERM
 * with err naming the file and the chmod that fixes it. shown is the name
 * used in err.
 */
/* A secret (private key, TLS key, challenge secret): no group/other bits. */
int broker_check_private(const struct stat *st, const char *shown, char *err, size_t errlen) AK_WUR;
/* A configuration, certificate or directory: not group/other-writable. */
int broker_check_not_writable(const struct stat *st, const char *shown, char *err,
			      size_t errlen) AK_WUR;

/* Read a whole file (at most max bytes, a regular file, passing
 * broker_check_private when it is a secret, else broker_check_not_writable)
 * into the secure heap: for private keys and secrets, and what comes with
 * them. name is opened relative to dirfd (AT_FDCWD for a path) with oflags
 * added (O_NOFOLLOW for a key store's files); shown names it in err. 0 or
 * -errno (-ENOBUFS: the secure heap is exhausted; -ENOENT leaves err alone
 * for a file that is not a secret, as optional files are); out is empty on
 * error. */
int broker_read_secure(int dirfd, const char *name, int oflags, bool secret, const char *shown,
		       size_t max, struct ak_secbuf *out, char *err, size_t errlen) AK_WUR;
/* err for an exhausted secure heap while reading what (one message for
 * every caller). */
void broker_secure_heap_exhausted(const char *what, char *err, size_t errlen);

#endif
