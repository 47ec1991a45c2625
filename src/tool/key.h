/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `attestkey key`: provisioning of the keys the broker serves, in one of its
 * key stores. key.c parses the command line and does everything that is
 * the same for every store (generating keys with OpenSSL, certificates and
 * CSRs, printing); a store is a small ops table, chosen by the scheme of
 * --store:
 *
 *   file:DIR                    key_file.c    a broker file-store token directory
 *   vault:URL/MOUNT/PATH        key_vault.c   Vault KV v2, one secret per key
 *   pkcs11:URI                  key_pkcs11.c  a PKCS#11 token (an HSM)
 *
 * A store that cannot hold a plaintext private key (an HSM) sets
 * ops->generate and makes keys itself; the others get a PKCS#8 PEM in the
 * secure heap through ops->write. Private keys cross this interface only as
 * struct key_secret, whose PEM is in the OpenSSL secure heap: a store
 * never copies it to the ordinary heap, never prints it, and wipes what it
 * read (ak_secbuf_clear) before returning.
 *
 * Every op returns 0 or a negative errno-style value with err naming what
 * was wrong (the store, the key, the version; never key bytes). The codes
 * key.c tells apart: -ENOENT no such key or version, -EEXIST the name is
 * taken (generate/import), -EACCES refused by the store's access control,
 * -ENOTSUP the store cannot do this, -EINVAL bad input; anything else is a
 * store failure.
 */
#ifndef ATTESTKEY_TOOL_KEY_H
#define ATTESTKEY_TOOL_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attestkey/common.h"
#include "attestkey/secmem.h"

/* Key names: [A-Za-z0-9._-], not starting with '.', at most this long (a
 * file name in a file store, a path component in Vault, a CKA_LABEL). */
#define KEY_NAME_MAX 128
/* The broker's CKA_ID of a key: SHA-1 (keystore.c) */
#define KEY_ID_LEN 20

/* The key types `generate --type` offers (the types the broker serves). */
enum key_type_id {
	KEY_RSA2048,
	KEY_RSA3072,
	KEY_RSA4096,
	KEY_P256,
	KEY_P384,
	KEY_P521,
	KEY_ED25519,
};
struct key_type {
	enum key_type_id id;
	const char *name;  /* "rsa2048", "p256", "ed25519" (--type) */
	int evp_type;	   /* EVP_PKEY_RSA, EVP_PKEY_EC, EVP_PKEY_ED25519 */
	unsigned rsa_bits; /* RSA */
	const char *group; /* EC: "P-256", "P-384", "P-521" */
};
/* The type named by --type, or NULL. */
const struct key_type *key_type_find(const char *name);

/* How a write may treat an existing name. */
enum key_write_mode {
	KEY_CREATE, /* a new name: -EEXIST if it exists (generate, import) */
	KEY_ROTATE, /* a new version of an existing name: -ENOENT if absent */
};

/* A private key on its way into a store: PKCS#8 PEM ("PRIVATE KEY") in
 * the secure heap, and optionally the PEM certificate chain (leaf first;
 * public, ordinary heap, NUL-terminated). */
struct key_secret {
	struct ak_secbuf pem;
	char *cert_pem; /* NULL: no certificate */
};
/* Wipe and free both; leaves s zeroed. */
void key_secret_clear(struct key_secret *s);

/* What `show` and `list` print, as a store returns it. */
struct key_public {
	unsigned version;  /* the version these bytes are */
	uint8_t *spki_der; /* DER SubjectPublicKeyInfo (malloc) */
	size_t spki_len;
	char *cert_pem; /* PEM chain, leaf first, or NULL (malloc) */
};
void key_public_clear(struct key_public *p);

/* For stores that hold PKCS#8 PEM (file, Vault): the public half of s,
 * checked as the broker checks it (an unencrypted PKCS#8 key of a type the
 * broker serves; a certificate whose public key is the key's). what names
 * the source in err. */
int key_public_from_secret(const struct key_secret *s, const char *what, struct key_public *out,
			   char *err, size_t errlen) AK_WUR;

/* A list of names or versions a store returns (malloc'd, sorted). */
struct key_names {
	char **v;
	size_t n;
};
void key_names_clear(struct key_names *l);
/* Append a copy of name: 0 or -ENOMEM. */
int key_names_add(struct key_names *l, const char *name) AK_WUR;

/* What --cert asks for, with --subject. */
enum key_cert_kind { KEY_CERT_NONE, KEY_CERT_SELF_SIGNED, KEY_CERT_CSR };

struct key_store_ops {
	const char *scheme; /* "file", "vault", "pkcs11": the part of --store before ':' */
	/* Parse location (what follows "scheme:"; pkcs11 gets its whole URI
	 * in store) and connect. */
	int (*open)(const char *location, const char *store, void **ctx, char *err, size_t errlen);
	void (*close)(void *ctx);
	/* The names of the keys in the store, sorted. An empty store is an
	 * empty list, not an error. */
	int (*list)(void *ctx, struct key_names *out, char *err, size_t errlen);
	/* The current version of name and every version still readable,
	 * ascending (current included). -ENOENT when name does not exist. */
	int (*versions)(void *ctx, const char *name, unsigned *current, unsigned **all,
			size_t *n_all, char *err, size_t errlen);
	/* The public key and certificate of version (0: the current one). */
	int (*read_public)(void *ctx, const char *name, unsigned version, struct key_public *out,
			   char *err, size_t errlen);
	/* Store key as a new version of name (version 1 for KEY_CREATE) and
	 * set *version to it. NULL for a store that takes no plaintext key. */
	int (*write)(void *ctx, const char *name, enum key_write_mode mode,
		     const struct key_secret *key, unsigned *version, char *err, size_t errlen);
	/* Optional: make the key inside the store (an HSM). When set, key.c
	 * calls it instead of generating and calling write; out receives the
	 * new public key and version. */
	int (*generate)(void *ctx, const char *name, enum key_write_mode mode,
			const struct key_type *type, struct key_public *out, char *err,
			size_t errlen);
	/* Optional, with generate: a self-signed certificate or a CSR (PEM,
	 * malloc'd into *pem) for the current version of name, signed inside
	 * the store; a certificate is also stored with the key. */
	int (*certify)(void *ctx, const char *name, enum key_cert_kind kind, const char *subject,
		       long days, char **pem, char *err, size_t errlen);
	/* Delete version (0: every version and the name itself). Deleting the
	 * current version while older ones remain may be refused (-EBUSY,
	 * err saying to rotate first or delete them all). */
	int (*remove)(void *ctx, const char *name, unsigned version, char *err, size_t errlen);
};

/* The stores. key_store_pkcs11_ops is defined by key_pkcs11.c when that
 * store is built (weak here: `pkcs11:` answers "not built" otherwise). */
extern const struct key_store_ops key_store_file_ops;
extern const struct key_store_ops key_store_vault_ops;
extern const struct key_store_ops key_store_pkcs11_ops __attribute__((weak));

/* For a store that signs inside itself (certify): the unsigned self-signed
 * certificate (*x, valid for days) or CSR (*req) for the public key pk, as
 * generate --cert makes them; one of the two is set. */
int key_cert_new(EVP_PKEY *pk, enum key_cert_kind kind, const char *subject, long days, X509 **x,
		 X509_REQ **req, char *err, size_t errlen) AK_WUR;
/* The digest a signature by pk uses ("SHA256"...; NULL for Ed25519). */
const char *key_sign_digest(EVP_PKEY *pk);
/* The PEM of x, or else of req (malloc'd into *pem). */
int key_cert_pem(X509 *x, X509_REQ *req, char **pem) AK_WUR;
/* Every certificate of a PEM chain, leaf first; NULL (err says why) when
 * it holds none. */
STACK_OF(X509) * key_read_chain(const char *pem, const char *what, char *err, size_t errlen);
/* The broker's CKA_ID of a DER SubjectPublicKeyInfo: RFC 5280 §4.2.1.2
 * method (1), SHA-1 of the subjectPublicKey BIT STRING (keystore.c). */
int key_spki_id(const uint8_t *spki, size_t len, uint8_t id[KEY_ID_LEN]) AK_WUR;

/* Whether name is a valid key name (see KEY_NAME_MAX); err says why not. */
bool key_name_valid(const char *name, char *err, size_t errlen);

/* `attestkey key ...` (main.c's table). */
int tool_key(int argc, char **argv);

#endif
