/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hostile OpenSSL 3 provider for tests/integration/module-tls.sh (issue 8
 * item 19). Loaded first through openssl.cnf, as pkcs11-provider is with
 * "-provider pkcs11 -provider default", it offers key management and key
 * exchange for X25519 and X448 (what a TLS handshake asks OpenSSL for) and,
 * with HOSTILE_ALGS=all, for EC, RSA and Ed25519 too, and AES-256-GCM and
 * SHA-2 (the module's own key operations, the release's content
 * decryption and the hash-and-sign digests). Every call it receives is appended to $HOSTILE_LOG as
 * "PID FUNCTION ALGORITHM" and then fails: a module whose TLS or crypto
 * re-enters the host's providers leaves lines in that file. Like
 * pkcs11-provider it declares the TLS groups it implements, so libssl
 * builds its key shares with it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

static void record(const char *fn, const char *alg)
{
	const char *path = getenv("HOSTILE_LOG");
	char line[160];
	int fd, n;

	if (!path)
		abort(); /* a test without a log would see nothing: be loud */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	n = snprintf(line, sizeof(line), "%ld %s %s\n", (long)getpid(), fn, alg);
	if (n > 0 && write(fd, line, (size_t)n) != n)
		abort();
	close(fd);
}

/* One set of functions per algorithm, so that the log names it. */
#define HOSTILE_KEYMGMT(sym, name)                                                         \
	static void *sym##_new(void *p)                                                    \
	{                                                                                  \
		(void)p;                                                                   \
		record("keymgmt_new", name);                                               \
		return NULL;                                                               \
	}                                                                                  \
	static void *sym##_gen_init(void *p, int sel, const OSSL_PARAM params[])          \
	{                                                                                  \
		(void)p;                                                                   \
		(void)sel;                                                                 \
		(void)params;                                                              \
		record("keymgmt_gen_init", name);                                          \
		return NULL;                                                               \
	}                                                                                  \
	static void *sym##_gen(void *g, OSSL_CALLBACK *cb, void *cbarg)                    \
	{                                                                                  \
		(void)g;                                                                   \
		(void)cb;                                                                  \
		(void)cbarg;                                                               \
		record("keymgmt_gen", name);                                               \
		return NULL;                                                               \
	}                                                                                  \
	static void *sym##_load(const void *ref, size_t sz)                                \
	{                                                                                  \
		(void)ref;                                                                 \
		(void)sz;                                                                  \
		record("keymgmt_load", name);                                              \
		return NULL;                                                               \
	}                                                                                  \
	static int sym##_import(void *k, int sel, const OSSL_PARAM params[])               \
	{                                                                                  \
		(void)k;                                                                   \
		(void)sel;                                                                 \
		(void)params;                                                              \
		record("keymgmt_import", name);                                            \
		return 0;                                                                  \
	}                                                                                  \
	static const OSSL_DISPATCH sym##_keymgmt[] = {                                     \
		{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))sym##_new },                      \
		{ OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))sym##_gen_init },            \
		{ OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))sym##_gen },                      \
		{ OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))gen_cleanup },            \
		{ OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))sym##_load },                    \
		{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))key_free },                      \
		{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))key_has },                        \
		{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))sym##_import },                \
		{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))no_types },              \
		{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))key_export },                  \
		{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))no_types },              \
		{ 0, NULL }                                                                \
	}

#define HOSTILE_KEYEXCH(sym, name)                                                         \
	static void *sym##_newctx(void *p)                                                 \
	{                                                                                  \
		(void)p;                                                                   \
		record("keyexch_newctx", name);                                            \
		return NULL;                                                               \
	}                                                                                  \
	static int sym##_init(void *c, void *k, const OSSL_PARAM params[])                 \
	{                                                                                  \
		(void)c;                                                                   \
		(void)k;                                                                   \
		(void)params;                                                              \
		record("keyexch_init", name);                                              \
		return 0;                                                                  \
	}                                                                                  \
	static int sym##_derive(void *c, unsigned char *s, size_t *sl, size_t sz)          \
	{                                                                                  \
		(void)c;                                                                   \
		(void)s;                                                                   \
		(void)sl;                                                                  \
		(void)sz;                                                                  \
		record("keyexch_derive", name);                                            \
		return 0;                                                                  \
	}                                                                                  \
	static const OSSL_DISPATCH sym##_keyexch[] = {                                     \
		{ OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))sym##_newctx },                \
		{ OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))sym##_init },                    \
		{ OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))sym##_derive },                \
		{ OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))set_peer },                  \
		{ OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))key_free },                   \
		{ 0, NULL }                                                                \
	}

static void gen_cleanup(void *g)
{
	(void)g;
}

static void key_free(void *k)
{
	(void)k;
}

static int key_has(const void *k, int sel)
{
	(void)sel;
	return k != NULL;
}

static int key_export(void *k, int sel, OSSL_CALLBACK *cb, void *cbarg)
{
	(void)k;
	(void)sel;
	(void)cb;
	(void)cbarg;
	record("keymgmt_export", "-");
	return 0;
}

static const OSSL_PARAM *no_types(int sel)
{
	static const OSSL_PARAM none[] = { OSSL_PARAM_END };

	(void)sel;
	return none;
}

static int set_peer(void *c, void *k)
{
	(void)c;
	(void)k;
	record("keyexch_set_peer", "-");
	return 0;
}

HOSTILE_KEYMGMT(x25519, "X25519");
HOSTILE_KEYMGMT(x448, "X448");
HOSTILE_KEYMGMT(ec, "EC");
HOSTILE_KEYMGMT(rsa, "RSA");
HOSTILE_KEYMGMT(ed25519, "ED25519");
HOSTILE_KEYEXCH(x25519, "X25519");
HOSTILE_KEYEXCH(x448, "X448");
HOSTILE_KEYEXCH(ecdh, "ECDH");

/* A cipher and digests whose every context creation is recorded and fails.
 * get_params makes them complete enough for OpenSSL to fetch them. */
static void *cipher_newctx(void *p)
{
	(void)p;
	record("cipher_newctx", "AES-256-GCM");
	return NULL;
}
static int cipher_get_params(OSSL_PARAM params[])
{
	OSSL_PARAM *q;

	if ((q = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)))
		OSSL_PARAM_set_size_t(q, 32);
	if ((q = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)))
		OSSL_PARAM_set_size_t(q, 12);
	if ((q = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_BLOCK_SIZE)))
		OSSL_PARAM_set_size_t(q, 1);
	if ((q = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)))
		OSSL_PARAM_set_uint(q, 6); /* EVP_CIPH_GCM_MODE */
	if ((q = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD)))
		OSSL_PARAM_set_int(q, 1);
	return 1;
}
static int cipher_init(void *c, const unsigned char *k, size_t kl, const unsigned char *iv,
		       size_t ivl, const OSSL_PARAM params[])
{
	(void)c, (void)k, (void)kl, (void)iv, (void)ivl, (void)params;
	record("cipher_init", "AES-256-GCM");
	return 0;
}
static int cipher_update(void *c, unsigned char *out, size_t *outl, size_t outsize,
			 const unsigned char *in, size_t inl)
{
	(void)c, (void)out, (void)outl, (void)outsize, (void)in, (void)inl;
	record("cipher_update", "AES-256-GCM");
	return 0;
}
static int cipher_final(void *c, unsigned char *out, size_t *outl, size_t outsize)
{
	(void)c, (void)out, (void)outl, (void)outsize;
	return 0;
}
static const OSSL_DISPATCH aes256gcm_cipher[] = {
	{ OSSL_FUNC_CIPHER_NEWCTX, (void (*)(void))cipher_newctx },
	{ OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void))cipher_init },
	{ OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void))cipher_init },
	{ OSSL_FUNC_CIPHER_UPDATE, (void (*)(void))cipher_update },
	{ OSSL_FUNC_CIPHER_FINAL, (void (*)(void))cipher_final },
	{ OSSL_FUNC_CIPHER_FREECTX, (void (*)(void))key_free },
	{ OSSL_FUNC_CIPHER_GET_PARAMS, (void (*)(void))cipher_get_params },
	{ 0, NULL }
};

static void *md_newctx(void *p)
{
	(void)p;
	record("digest_newctx", "SHA2");
	return NULL;
}
static int md_init(void *c, const OSSL_PARAM params[])
{
	(void)c, (void)params;
	record("digest_init", "SHA2");
	return 0;
}
static int md_update(void *c, const unsigned char *in, size_t inl)
{
	(void)c, (void)in, (void)inl;
	return 0;
}
static int md_final(void *c, unsigned char *out, size_t *outl, size_t outsz)
{
	(void)c, (void)out, (void)outl, (void)outsz;
	return 0;
}
static int md_get_params(OSSL_PARAM params[])
{
	OSSL_PARAM *q;

	if ((q = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_SIZE)))
		OSSL_PARAM_set_size_t(q, 32);
	if ((q = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_BLOCK_SIZE)))
		OSSL_PARAM_set_size_t(q, 64);
	return 1;
}
static const OSSL_DISPATCH sha2_digest[] = {
	{ OSSL_FUNC_DIGEST_NEWCTX, (void (*)(void))md_newctx },
	{ OSSL_FUNC_DIGEST_INIT, (void (*)(void))md_init },
	{ OSSL_FUNC_DIGEST_UPDATE, (void (*)(void))md_update },
	{ OSSL_FUNC_DIGEST_FINAL, (void (*)(void))md_final },
	{ OSSL_FUNC_DIGEST_FREECTX, (void (*)(void))key_free },
	{ OSSL_FUNC_DIGEST_GET_PARAMS, (void (*)(void))md_get_params },
	{ 0, NULL }
};

#define PROPS "provider=hostile"

static const OSSL_ALGORITHM tls_keymgmt[] = {
	{ "X25519:1.3.101.110", PROPS, x25519_keymgmt, "hostile X25519" },
	{ "X448:1.3.101.111", PROPS, x448_keymgmt, "hostile X448" },
	{ NULL, NULL, NULL, NULL }
};
static const OSSL_ALGORITHM all_keymgmt[] = {
	{ "X25519:1.3.101.110", PROPS, x25519_keymgmt, "hostile X25519" },
	{ "X448:1.3.101.111", PROPS, x448_keymgmt, "hostile X448" },
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", PROPS, ec_keymgmt, "hostile EC" },
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", PROPS, rsa_keymgmt, "hostile RSA" },
	{ "ED25519:1.3.101.112", PROPS, ed25519_keymgmt, "hostile Ed25519" },
	{ NULL, NULL, NULL, NULL }
};
static const OSSL_ALGORITHM tls_keyexch[] = {
	{ "X25519:1.3.101.110", PROPS, x25519_keyexch, "hostile X25519" },
	{ "X448:1.3.101.111", PROPS, x448_keyexch, "hostile X448" },
	{ NULL, NULL, NULL, NULL }
};
static const OSSL_ALGORITHM all_keyexch[] = {
	{ "X25519:1.3.101.110", PROPS, x25519_keyexch, "hostile X25519" },
	{ "X448:1.3.101.111", PROPS, x448_keyexch, "hostile X448" },
	{ "ECDH", PROPS, ecdh_keyexch, "hostile ECDH" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM all_ciphers[] = {
	{ "AES-256-GCM:id-aes256-GCM:aes-256-gcm:2.16.840.1.101.3.4.1.46", PROPS, aes256gcm_cipher,
	  "hostile AES-256-GCM" },
	{ NULL, NULL, NULL, NULL }
};
static const OSSL_ALGORITHM all_digests[] = {
	{ "SHA2-256:SHA-256:SHA256:2.16.840.1.101.3.4.2.1", PROPS, sha2_digest, "hostile SHA-256" },
	{ "SHA2-384:SHA-384:SHA384:2.16.840.1.101.3.4.2.2", PROPS, sha2_digest, "hostile SHA-384" },
	{ "SHA2-512:SHA-512:SHA512:2.16.840.1.101.3.4.2.3", PROPS, sha2_digest, "hostile SHA-512" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *query(void *provctx, int op, int *no_cache)
{
	const char *algs = getenv("HOSTILE_ALGS");
	int all = algs && strcmp(algs, "all") == 0;

	(void)provctx;
	*no_cache = 0;
	switch (op) {
	case OSSL_OP_KEYMGMT:
		return all ? all_keymgmt : tls_keymgmt;
	case OSSL_OP_KEYEXCH:
		return all ? all_keyexch : tls_keyexch;
	case OSSL_OP_CIPHER:
		return all ? all_ciphers : NULL;
	case OSSL_OP_DIGEST:
		return all ? all_digests : NULL;
	default:
		return NULL;
	}
}

/* TLS-GROUP capabilities, as pkcs11-provider declares them: libssl offers
 * a group only when the provider that declares it is also the one its
 * fetch of the key type returns, which for a provider loaded first is
 * this one. */
struct group {
	char name[16], internal[16], alg[16];
	unsigned int id, secbits;
	int min_tls, max_tls, min_dtls, max_dtls, is_kem;
};
static struct group groups[] = {
	{ "x25519", "X25519", "X25519", 0x1d, 128, 0x0301, 0, 0xfeff, 0, 0 },
	{ "x448", "X448", "X448", 0x1e, 224, 0x0301, 0, 0xfeff, 0, 0 },
	{ "secp256r1", "prime256v1", "EC", 0x17, 128, 0x0301, 0, 0xfeff, 0, 0 },
	{ "secp384r1", "secp384r1", "EC", 0x18, 192, 0x0301, 0, 0xfeff, 0, 0 },
};
#define GROUP_PARAMS(i)                                                                       \
	{                                                                                     \
		OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME, groups[i].name,        \
				       sizeof(groups[i].name)),                               \
		OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL,               \
				       groups[i].internal, sizeof(groups[i].internal)),       \
		OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_ID, &groups[i].id),                 \
		OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_ALG, groups[i].alg,          \
				       sizeof(groups[i].alg)),                                \
		OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_SECURITY_BITS, &groups[i].secbits), \
		OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_TLS, &groups[i].min_tls),        \
		OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_TLS, &groups[i].max_tls),        \
		OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_DTLS, &groups[i].min_dtls),      \
		OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_DTLS, &groups[i].max_dtls),      \
		OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_IS_KEM, &groups[i].is_kem),          \
		OSSL_PARAM_END                                                                \
	}
static const OSSL_PARAM group_params[][11] = { GROUP_PARAMS(0), GROUP_PARAMS(1), GROUP_PARAMS(2),
					       GROUP_PARAMS(3) };

static int get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb, void *arg)
{
	const char *algs = getenv("HOSTILE_ALGS");
	size_t i, n = algs && strcmp(algs, "all") == 0 ? 4 : 2;

	(void)provctx;
	if (strcmp(capability, "TLS-GROUP") != 0)
		return 1;
	for (i = 0; i < n; i++) {
		if (!cb(group_params[i], arg))
			return 0;
	}
	return 1;
}

static void teardown(void *provctx)
{
	(void)provctx;
}

static const OSSL_DISPATCH provider_functions[] = {
	{ OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))teardown },
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query },
	{ OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))get_capabilities },
	{ 0, NULL }
};

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		       const OSSL_DISPATCH **out, void **provctx);
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		       const OSSL_DISPATCH **out, void **provctx)
{
	(void)in;
	*out = provider_functions;
	*provctx = (void *)handle;
	return 1;
}
