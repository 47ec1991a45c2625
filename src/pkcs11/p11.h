/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of attestkey-pkcs11.so (prefix p11_). Nothing here is exported
 * from the module: attestkey.map exports only C_GetFunctionList,
 * C_GetInterfaceList and C_GetInterface.
 */
#ifndef ATTESTKEY_P11_H
#define ATTESTKEY_P11_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "attestkey/common.h"
#include "attestkey/evidence.h"
#include "attestkey/pkcs11-3.h"
#include "attestkey/pkey.h"

/* ---- configuration (config.c, attestkey.conf(5)) ---------------------- */
#define P11_DEFAULT_TIMEOUT 10
#define P11_LABEL_MAX 32 /* CK_TOKEN_INFO.label */

#define P11_DEFAULT_MAX_OFFLINE 3600 /* seconds of grace after a lease ends */
#define P11_RENEW_MIN_PCT 60 /* renewal: uniformly between these shares */
#define P11_RENEW_MAX_PCT 80 /* of the lease (docs/lifecycle.md) */
#define P11_MAX_OFFLINE_MAX (30L * 86400)

struct p11_token_config {
	char *name;  /* [token NAME] */
	char *label; /* label = ..., default NAME */
	long max_offline; /* max_offline = SECONDS; -1: [module]'s */
	int rotate_in_place; /* rotate_in_place = BOOL; -1: [module]'s */
};

struct p11_config {
	char *path;                 /* the file it came from (for messages) */
	char **brokers;             /* brokers = URL[,URL...], tried in order */
	size_t n_brokers;
	char *ca;                   /* PEM file trusted for the broker's TLS */
	long timeout;               /* seconds, per HTTP request */
	bool reattest_after_fork;   /* default false */
	long max_offline;           /* seconds the keys outlive their lease
				     * while no broker answers (docs/lifecycle.md) */
	bool rotate_in_place;       /* a renewal's new key versions replace the
				     * held keys (default true) */
	char *cache_dir;            /* the public view's cache; NULL: default
				     * (p11_pubcache_load) */
	bool no_threads;            /* not from the file: C_Initialize was given
				     * CKF_LIBRARY_CANT_CREATE_OS_THREADS */
	struct ev_config ev;        /* tee (default auto), the guest nodes, [sim] */
	struct p11_token_config *tokens;
	size_t n_tokens;
};

/* $ATTESTKEY_CONF, else SYSCONFDIR/attestkey/attestkey.conf. *explicit
 * tells whether the environment named it. */
const char *p11_config_path(bool *explicit_path);
/* The grace of a token: its own max_offline, else [module]'s. */
long p11_config_max_offline(const struct p11_config *cfg, const struct p11_token_config *t);
/* Whether a renewal's new key versions replace the keys held: the token's
 * rotate_in_place, else [module]'s. */
bool p11_config_rotate_in_place(const struct p11_config *cfg, const struct p11_token_config *t);
/* Parse a file. On error logs one line naming file, line and key, and
 * returns -EINVAL (bad content) or -errno (cannot read). */
int p11_config_load(const char *path, struct p11_config *cfg) AK_WUR;
void p11_config_clear(struct p11_config *cfg);

/* ---- objects (object.c): attribute arrays, built once at login -------- */
struct p11_object {
	CK_OBJECT_HANDLE handle;
	CK_OBJECT_CLASS klass;
	CK_ATTRIBUTE *attrs; /* values owned; never holds secret values */
	CK_ULONG n_attrs;
	EVP_PKEY *pkey;      /* key objects: the public key alone (own reference),
			      * for attributes, sizes and C_Verify */
	struct ak_privkey *priv; /* private-key objects: the key (own reference) */
	CK_KEY_TYPE key_type;
};

/* All objects of one logged-in token. Immutable once built: readers share it
 * under the token's read lock and take their own EVP_PKEY reference. */
struct p11_keyset {
	struct p11_object *objs;
	size_t n_objs;
	size_t n_keys;
};

/* Add a private key (the set takes over one reference of priv), its public
 * key and, when cert_der is given, its certificate. Nothing is added on
 * failure. Logs nothing: the caller names the token. */
CK_RV p11_keyset_add(struct p11_keyset *ks, struct ak_privkey *priv, const char *label,
		     const uint8_t *id, size_t id_len, const uint8_t *cert_der, size_t cert_len);
/* Move every object of from (handles and references unchanged) to the end
 * of ks; from is left empty. Key sets built on separate threads (each
 * p11_keyset_add on its own set: handles come from one locked counter) are
 * joined this way. On failure both are unchanged. */
CK_RV p11_keyset_merge(struct p11_keyset *ks, struct p11_keyset *from);
/* Destroy every object and drop the keys (OpenSSL wipes secure-heap
 * BIGNUMs on free). NULL-safe. */
void p11_keyset_free(struct p11_keyset *ks);
const struct p11_object *p11_keyset_find(const struct p11_keyset *ks, CK_OBJECT_HANDLE h);
/* C_GetAttributeValue semantics (PKCS#11 2.40 section 5.7). */
CK_RV p11_object_get_attrs(const struct p11_object *o, CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* CKA_ALLOWED_MECHANISMS of the object holds mech (2.40 section 4.7). */
bool p11_object_allows(const struct p11_object *o, CK_MECHANISM_TYPE mech);
/* Add the public-key object (and the certificate, when given) of a key the
 * token does not hold: the public view before login (protocol.md section 7).
 * Takes one reference of pub. */
CK_RV p11_keyset_add_public(struct p11_keyset *ks, EVP_PKEY *pub, const char *label,
			    const uint8_t *id, size_t id_len, const uint8_t *cert_der,
			    size_t cert_len);
/* Give the public-key and certificate objects of ks the handles of the
 * objects of `from` (the public view) with the same class, CKA_ID and
 * CKA_LABEL: handles an application found before C_Login stay valid after
 * it (libp11 caches them). */
void p11_keyset_adopt_handles(struct p11_keyset *ks, const struct p11_keyset *from);
/* The same for every object, private keys included, and by class and
 * CKA_LABEL alone when no object has the same CKA_ID (a rotated key: its
 * CKA_ID is its public key's hash): a renewal's key set takes the handles
 * of the set it replaces (rotation in place, docs/lifecycle.md), so the
 * handle an application holds signs with the new key. */
void p11_keyset_adopt_all_handles(struct p11_keyset *ks, const struct p11_keyset *from);
/* The two sets hold the same objects: each of a has one in b of the same
 * class, CKA_ID and CKA_LABEL (certificates: and CKA_VALUE), and b has no
 * other. NULL-safe (two NULLs are the same). */
bool p11_keyset_same(const struct p11_keyset *a, const struct p11_keyset *b);
/* True when every template attribute is present with an equal value. */
bool p11_object_match(const struct p11_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* ---- cryptographic operations (crypto.c) ------------------------------- */
enum p11_op_kind { P11_OP_NONE = 0, P11_OP_SIGN, P11_OP_DECRYPT, P11_OP_VERIFY };

struct p11_op {
	enum p11_op_kind kind;
	CK_MECHANISM_TYPE mech;
	EVP_PKEY *pkey;        /* own reference: the public key */
	struct ak_privkey *priv; /* own reference: sign and decrypt only */
	CK_KEY_TYPE key_type;  /* of pkey: EVP_PKEY_get_base_id() takes
				* OpenSSL's global engine lock on every call */
	EVP_MD_CTX *mdctx;     /* hash-and-sign mechanisms */
	const EVP_MD *md;      /* PSS / OAEP hash, or the hash of mdctx */
	const EVP_MD *mgf1;    /* PSS / OAEP MGF1 hash */
	int saltlen;           /* PSS */
	uint8_t *label;        /* OAEP source data */
	size_t label_len;
	uint8_t *buf;          /* raw mechanisms: data collected by Update */
	size_t buf_len;
	bool multipart;        /* SignUpdate seen: C_Sign is no longer allowed */
};

void p11_op_reset(struct p11_op *op);
CK_RV p11_sign_init(struct p11_op *op, const CK_MECHANISM *mech, const struct p11_object *key);
CK_RV p11_sign_update(struct p11_op *op, const uint8_t *data, size_t len);
/* Exact signature length of the operation's key and mechanism. */
CK_ULONG p11_sign_length(const struct p11_op *op);
/* Size query semantics of PKCS#11 2.40 section 5.2: sig NULL -> length,
 * short buffer -> CKR_BUFFER_TOO_SMALL; in both cases *done is false and
 * the operation stays active. */
CK_RV p11_sign_final(struct p11_op *op, uint8_t *sig, CK_ULONG *sig_len, bool *done);
/* Verification with public-key objects (2.40 section 5.13): the same
 * mechanisms as signing; p11_sign_update collects or hashes the data. A
 * signature of the wrong length is CKR_SIGNATURE_LEN_RANGE, a wrong one
 * CKR_SIGNATURE_INVALID. */
CK_RV p11_verify_init(struct p11_op *op, const CK_MECHANISM *mech, const struct p11_object *key);
CK_RV p11_verify_final(struct p11_op *op, const uint8_t *sig, size_t sig_len);
CK_RV p11_decrypt_init(struct p11_op *op, const CK_MECHANISM *mech,
		       const struct p11_object *key);
CK_RV p11_decrypt(struct p11_op *op, const uint8_t *in, size_t in_len, uint8_t *out,
		  CK_ULONG *out_len, bool *done);
CK_RV p11_mechanism_list(CK_MECHANISM_TYPE *list, CK_ULONG *count);
CK_RV p11_mechanism_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);
/* The mechanisms usable with a key type, for CKA_ALLOWED_MECHANISMS: the
 * count, and up to max of them in out (out may be NULL). */
size_t p11_mechanisms_for_key(CK_KEY_TYPE kt, CK_MECHANISM_TYPE *out, size_t max);

/* ---- digests and public-key encryption (digest.c) ---------------------- */
/* A session's digest operation (PKCS#11 3.0 base section 5.12). */
struct p11_digest {
	bool active;
	bool multipart;  /* C_DigestUpdate seen: C_Digest is no longer allowed */
	EVP_MD *md;
	EVP_MD_CTX *ctx;
	size_t len;      /* of the digest */
};

/* A session's encryption with an RSA public-key object (section 5.8). */
struct p11_encrypt {
	bool active;
	EVP_PKEY_CTX *ctx; /* ready to encrypt: padding and OAEP parameters set */
	CK_ULONG out_len;  /* the modulus length */
	size_t max_in;     /* the padding's data limit */
};

/* CKM_SHA_1, CKM_SHA224 ... CKM_SHA512: the count, and up to max in out. */
size_t p11_digest_mechanisms(CK_MECHANISM_TYPE *out, size_t max);
/* C_GetMechanismInfo of a digest mechanism; false: not one. */
bool p11_digest_mechanism_info(CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info);
/* CKF_ENCRYPT for the mechanisms C_Encrypt accepts, else 0. */
CK_FLAGS p11_encrypt_mechanism_flags(CK_MECHANISM_TYPE mech);

void p11_digest_reset(struct p11_digest *d);
CK_RV p11_digest_init(struct p11_digest *d, const CK_MECHANISM *mech);
CK_RV p11_digest_update(struct p11_digest *d, const uint8_t *data, size_t len);
/* Size queries as p11_sign_final: *done false, the operation stays. */
CK_RV p11_digest_final(struct p11_digest *d, uint8_t *out, CK_ULONG *out_len, bool *done);

void p11_encrypt_reset(struct p11_encrypt *e);
CK_RV p11_encrypt_init(struct p11_encrypt *e, const CK_MECHANISM *mech,
		       const struct p11_object *key);
/* Single-part only (the RSA mechanisms have no multi-part form). Size
 * queries as p11_sign_final; data over the padding's limit is
 * CKR_DATA_LEN_RANGE. */
CK_RV p11_encrypt(struct p11_encrypt *e, const uint8_t *in, size_t in_len, uint8_t *out,
		  CK_ULONG *out_len, bool *done);

/* ---- the attested login (release.c) ------------------------------------ */
/* How a release ended, beyond its CKR (docs/lifecycle.md). */
enum p11_outcome {
	P11_RELEASED = 0,
	P11_REFUSED,   /* the broker said no (HTTP 403/404 with a reason other
			* than a nonce's): a renewal wipes the keys */
	P11_UNREACHED, /* no broker answered, or one answered 5xx or with
			* something that is not a release: retry later */
};

struct p11_release_info {
	bool renewal;          /* in: a background renewal: a refusal is not
				* logged here but returned in why (the caller
				* logs one line) */
	const atomic_bool *stop; /* in, may be NULL: aborts the transfers */
	const atomic_bool *cancel; /* in, may be NULL: aborts them too (one
				    * token's C_Logout; stop: the process's) */
	enum p11_outcome outcome;
	long lease;            /* seconds, the release's "lease"; 0: none */
	char id[72];           /* release id, or the refusal's id */
	char why[900];         /* the refusal or the failure, printable */
};

/* Run protocol v1 against the configured brokers, in order, and build the
 * key set of `token`. Logs one line on failure and returns the CKR of
 * docs/protocol.md section 5; *out is NULL then. info (may be NULL) is
 * filled in either case. */
CK_RV p11_release(const struct p11_config *cfg, const char *token, const uint8_t *pin,
		  size_t pin_len, struct p11_keyset **out, struct p11_release_info *info);
/* GET /v1/public/<token> (docs/protocol.md section 7) from the brokers in
 * order: the public view of the token, as JSON ({"token", "keys"}). Never
 * logs above debug level: a token without reachable broker just keeps the
 * view it has. stop (may be NULL), once set, aborts the transfer. */
CK_RV p11_public_fetch(const struct p11_config *cfg, const char *token, const atomic_bool *stop,
		       json_t **view);
/* The objects (public keys, certificates) of a public view. */
CK_RV p11_public_parse(const char *token, const json_t *view, struct p11_keyset **out);

/* For tests/fuzz only: what p11_release() does with a challenge's answer
 * (its nonce and the envelope picked, *alg) and with a release's answer
 * (every key opened with eph, all or nothing) once each has arrived with
 * HTTP 200, without a transfer. cfg needs one broker, named in the log. */
CK_RV p11_challenge_answer(const struct p11_config *cfg, const char *token, const json_t *resp,
			   const char **alg, char **nonce);
CK_RV p11_release_answer(const struct p11_config *cfg, const char *token, const char *alg,
			 const char *nonce, EVP_PKEY *eph, const json_t *resp,
			 struct p11_keyset **out, struct p11_release_info *info);

/* ---- the public view's cache file (pubcache.c) ------------------------ */
/* Read the cached public view of `token` (attestkey.conf(5) cache_dir):
 * 0 and *view, -ENOENT when there is none (or it was written for other
 * brokers), another -errno when the file is refused (logged: a file not
 * owned by this user or root, group- or world-writable, not a regular
 * file, or not JSON). */
int p11_pubcache_load(const struct p11_config *cfg, const char *token, json_t **view);
/* Write the public view atomically (temporary file, fsync, rename), mode
 * 0600, creating the directory (0700) when missing. Logs once on failure. */
int p11_pubcache_store(const struct p11_config *cfg, const char *token, const json_t *view);
/* The public view of a released key set: label, id, type, spki and cert of
 * each key, as GET /v1/public/<token> gives it. NULL when out of memory. */
json_t *p11_public_view_of(const struct p11_keyset *ks, const char *token);

/* The handle counter's lock across fork() (common.h, ak_mutex_atfork). */
void p11_handles_atfork(enum ak_fork_phase phase);

/* ---- test-only hooks (module.c); never exported (attestkey.map) -------- */
/* Add pkey (one reference taken) with its objects to the key set of slot
 * `slot`, as if the broker had released it, leaving the token logged out:
 * the next C_Login then succeeds from these keys without a broker, exactly
 * as in a forked child. The module must be initialised. */
CK_RV p11_token_install_keys_for_test(CK_SLOT_ID slot, EVP_PKEY *pkey, const char *label,
				      const uint8_t *id, size_t id_len, const uint8_t *cert_der,
				      size_t cert_len);

/* The object behind a handle in any token's key set (logged in or public
 * view), and the number of rows of the class table of object.c. */
const struct p11_object *p11_object_for_test(CK_OBJECT_HANDLE h);
size_t p11_class_attr_count_for_test(CK_OBJECT_CLASS klass, CK_KEY_TYPE kt, bool sensitive);
/* The attribute types of those rows: the count, and up to max in out. */
size_t p11_class_attr_types_for_test(CK_OBJECT_CLASS klass, CK_KEY_TYPE kt, bool sensitive,
				     CK_ATTRIBUTE_TYPE *out, size_t max);

#endif
