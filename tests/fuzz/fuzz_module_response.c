/* SPDX-License-Identifier: Apache-2.0 */
/* The PKCS#11 module's side of a login: what src/pkcs11/release.c does
 * with the broker's answers once they have arrived, through the functions
 * the login itself calls (p11_challenge_answer, p11_release_answer):
 * the challenge's nonce and envelope choice; the release's id, lease,
 * token, envelope and each key's metadata; the v1 JWE
 * (ak_jwe_decrypt_with), the v2 envelope (ak_env_open_begin/_key), the HSM
 * envelope (ak_hsmenv_open/_unwrap, ak_hsmenv_key_id); the PKCS#8 decoder
 * (ak_privkey_from_pkcs8) on what decrypts and the PKCS#11 objects made of
 * it; and the public view (p11_public_parse).
 *
 * The module's ephemeral keys are fixed test keys (tests/fuzz/keys/,
 * made for this and nothing else), so that seeds made by the broker's own
 * sealing functions decrypt: AK_FUZZ_WRITE_SEEDS=DIR makes this program
 * write such seeds into DIR and exit (tests/fuzz/README.md).
 *
 * Input: byte 0 bit 3 set: the rest is a challenge's answer; else bit 4
 * set: a public view (GET /v1/public); else a release's answer to the
 * request byte 0 mod 3 says: 0 v1 (ECDH-ES+A256GCM JWEs), 1 v2
 * (ak2-ECDH-ES+A256GCM), 2 the HSM envelope (byte 0 bit 2: OAEP SHA-256,
 * else SHA-1). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attestkey/common.h"
#include "attestkey/envelope.h"
#include "attestkey/hsmenv.h"
#include "attestkey/jwe.h"
#include "attestkey/pkey.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"
#include "../../src/pkcs11/p11.h"
#include "fuzz.h"

#define TOKEN "web"
/* a nonce as issued: 87 base64url characters */
#define NONCE "bm9uY2Utb2YtdGhlLWZ1enotdGFyZ2V0LW1vZHVsZV9yZXNwb25zZS0xMjM0NTY3ODkwYWJjZGVmZ2hpamtsbW5v"

static EVP_PKEY *eph_ec, *eph_rsa;

static EVP_PKEY *load_key(const char *name)
{
	char path[1024];
	FILE *f;
	EVP_PKEY *k;

	snprintf(path, sizeof(path), "%s/keys/%s", AK_FUZZ_SRCDIR, name);
	if (!(f = fopen(path, "r")))
		fuzz_die(path);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		fuzz_die(path);
	return k;
}

static void write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("AK_FUZZ_WRITE_SEEDS");

	(void)argc;
	(void)argv;
	fuzz_init();
	eph_ec = load_key("module-p384.pem");
	eph_rsa = load_key("module-rsa3072.pem");
	if (seeds && *seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *brokers[] = { "https://broker.fuzz" };
	static const struct p11_config cfg = { .brokers = brokers, .n_brokers = 1,
					       .no_threads = true };
	struct p11_release_info info = { 0 };
	struct p11_keyset *ks = NULL;
	const char *alg = NULL;
	char *nonce = NULL;
	json_t *root;
	unsigned mode;

	if (size < 1)
		return 0;
	root = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
	if (!root)
		return 0;
	if (data[0] & 8) {
		if (p11_challenge_answer(&cfg, TOKEN, root, &alg, &nonce) == CKR_OK)
			fuzz_sink(alg && nonce && *nonce);
	} else if (data[0] & 16) {
		fuzz_sink(p11_public_parse(TOKEN, root, &ks) == CKR_OK);
	} else {
		mode = data[0] % 3;
		alg = mode == 0 ? AK_ALG_V1
		      : mode == 1 ? AK_ALG_V2_ECDH
		      : data[0] & 4 ? AK_HSMENV_ALG_OAEP_256 : AK_HSMENV_ALG_OAEP;
		if (p11_release_answer(&cfg, TOKEN, alg, NONCE, mode == 2 ? eph_rsa : eph_ec, root,
				       &ks, &info) == CKR_OK)
			fuzz_sink(ks->n_keys > 0);
	}
	p11_keyset_free(ks);
	free(nonce);
	json_decref(root);
	return 0;
}

/* ---- AK_FUZZ_WRITE_SEEDS: answers as a broker makes them --------------- */

static void put(const char *dir, const char *name, uint8_t mode, json_t *answer)
{
	char path[1024], *text = json_dumps(answer, JSON_COMPACT | JSON_SORT_KEYS);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!text || !(f = fopen(path, "wb")))
		fuzz_die(path);
	fputc(mode, f);
	fputs(text, f);
	if (fclose(f) != 0)
		fuzz_die(path);
	free(text);
}

static json_t *meta_item(const struct ak_key_meta *m)
{
	return json_pack("{s:s,s:s,s:s,s:I}", "label", m->label, "id", m->id, "type", m->type,
			 "version", (json_int_t)m->version);
}

static void write_seeds(const char *dir)
{
	EVP_PKEY *released = load_key("released-p256.pem"), *pub_ec = NULL, *epk;
	struct ak_key_meta m = {.label = "tls", .type = "EC", .version = 1};
	/* PKCS#8 PrivateKeyInfo, what a broker seals (i2d_PrivateKey would
	 * give SEC1, which the module refuses) */
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(released);
	unsigned char *der = NULL;
	int derlen = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
	const char *why = NULL;
	json_t *keys, *item, *jwe = NULL, *envelope = NULL;
	struct ak_env *env = NULL;
	char id[41];

	if (derlen <= 0 || ak_hsmenv_key_id(released, id) < 0)
		fuzz_die("the released test key");
	m.id = id;
	/* the recipient as the broker sees it: the public half only */
	{
		json_t *jwk = ak_jwk_from_pkey_public(eph_ec);

		pub_ec = jwk ? ak_pkey_from_jwk_p384(jwk) : NULL;
		json_decref(jwk);
		if (!pub_ec)
			fuzz_die("the P-384 recipient");
	}
	/* v1: one JWE per key */
	epk = ak_ec_p384_generate();
	if (!epk || ak_jwe_encrypt_to(pub_ec, epk, der, (size_t)derlen, &jwe, &why) < 0)
		fuzz_die(why ? why : "ak_jwe_encrypt_to");
	/* (ak_jwe_encrypt_to freed epk) */
	item = meta_item(&m);
	json_object_set_new(item, "jwe", jwe);
	keys = json_pack("[o]", item);
	put(dir, "v1-release", 0, json_pack("{s:s,s:I,s:o}", "token", TOKEN, "lease", 3600,
					    "keys", keys));
	/* v2: one envelope, two keys */
	if (ak_env_seal_begin(pub_ec, NULL, TOKEN, NONCE, &env, &envelope, &why) < 0)
		fuzz_die(why ? why : "ak_env_seal_begin");
	keys = json_array();
	for (size_t i = 0; i < 2; i++) {
		item = meta_item(&m);
		if (ak_env_seal_key(env, i, 2, &m, der, (size_t)derlen, item, &why) < 0)
			fuzz_die(why ? why : "ak_env_seal_key");
		json_array_append_new(keys, item);
	}
	ak_env_free(env);
	put(dir, "v2-release", 1, json_pack("{s:s,s:I,s:O,s:O}", "token", TOKEN, "lease", 3600,
					    "envelope", envelope, "keys", keys));
	/* v2 with the entries swapped: each tag binds its index */
	json_array_append(keys, json_array_get(keys, 0));
	json_array_remove(keys, 0);
	put(dir, "v2-entries-swapped", 1, json_pack("{s:s,s:O,s:O}", "token", TOKEN, "envelope",
						    envelope, "keys", keys));
	put(dir, "v2-as-v1", 0, json_pack("{s:s,s:o,s:o}", "token", TOKEN, "envelope", envelope,
					  "keys", keys));
	/* the HSM envelope: RSA-OAEP(kek), then RFC 5649 (AES-256 KWP) */
	for (int sha256 = 0; sha256 < 2; sha256++) {
		uint8_t k[AK_HSMENV_KEK_LEN], ek[512], wk[4096];
		size_t eklen = sizeof(ek);
		int wlen = 0, fin = 0;
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(eph_rsa, NULL);
		EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
		char *ek64, *wk64;

		memset(k, 0x42, sizeof(k));
		if (!pc || !cc || EVP_PKEY_encrypt_init(pc) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 ||
		    (sha256 && (EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) != 1 ||
				EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1)) ||
		    EVP_PKEY_encrypt(pc, ek, &eklen, k, sizeof(k)) != 1)
			fuzz_die("RSA-OAEP");
		EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
		if (EVP_EncryptInit_ex(cc, EVP_aes_256_wrap_pad(), NULL, k, NULL) != 1 ||
		    EVP_EncryptUpdate(cc, wk, &wlen, der, derlen) != 1 ||
		    EVP_EncryptFinal_ex(cc, wk + wlen, &fin) != 1)
			fuzz_die("AES key wrap");
		EVP_PKEY_CTX_free(pc);
		EVP_CIPHER_CTX_free(cc);
		ek64 = ak_b64url_encode(ek, eklen);
		wk64 = ak_b64url_encode(wk, (size_t)(wlen + fin));
		item = meta_item(&m);
		json_object_set_new(item, "wrapped", json_string(wk64));
		put(dir, sha256 ? "hsm-oaep256-release" : "hsm-oaep-release", sha256 ? 5 : 2,
		    json_pack("{s:s,s:{s:s,s:s},s:[o]}", "token", TOKEN, "envelope", "alg",
			      sha256 ? AK_HSMENV_ALG_OAEP_256 : AK_HSMENV_ALG_OAEP, "ek", ek64,
			      "keys", item));
		free(ek64);
		free(wk64);
	}
	/* challenges: every envelope offered, v1 alone, none this module
	 * opens; and the public view of the released key */
	put(dir, "challenge-all-algs", 8,
	    json_pack("{s:s,s:[s,s],s:[s,s,s,s]}", "nonce", NONCE, "tee", "snp", "tdx", "algs",
		      AK_ALG_V2_ECDH, AK_HSMENV_ALG_OAEP_256, AK_HSMENV_ALG_OAEP, AK_ALG_V1));
	put(dir, "challenge-v1-only", 8, json_pack("{s:s,s:[s]}", "nonce", NONCE, "algs", AK_ALG_V1));
	put(dir, "challenge-no-alg-known", 8,
	    json_pack("{s:s,s:[s]}", "nonce", NONCE, "algs", "RSA-OAEP-512+A128KW"));
	{
		unsigned char *spki = NULL;
		int spkilen = i2d_PUBKEY(released, &spki);
		char *spki64 = spkilen > 0 ? ak_b64url_encode(spki, (size_t)spkilen) : NULL;

		if (!spki64)
			fuzz_die("the released key's SPKI");
		put(dir, "public-view", 16,
		    json_pack("{s:s,s:[{s:s,s:s,s:s,s:s}]}", "token", TOKEN, "keys", "label", "tls",
			      "id", id, "type", "EC", "spki", spki64));
		free(spki64);
		OPENSSL_free(spki);
	}
	json_decref(envelope);
	json_decref(keys);
	OPENSSL_clear_free(der, (size_t)derlen);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(pub_ec);
	EVP_PKEY_free(released);
}
