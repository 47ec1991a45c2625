/* SPDX-License-Identifier: Apache-2.0 */
/* The PKCS#11 module's side of a release: what it does with the keys of a
 * /v1/keys answer, through the library functions src/pkcs11/release.c
 * uses (the JSON handling around them is static there): the v1 JWE
 * (ak_jwe_decrypt_with), the v2 envelope (ak_env_open_begin/_key), the HSM
 * envelope (ak_hsmenv_open/_unwrap, ak_hsmenv_key_id), then the PKCS#8
 * decoder (ak_privkey_from_pkcs8) on what decrypts.
 *
 * The module's ephemeral keys are fixed test keys (tests/fuzz/keys/,
 * made for this and nothing else), so that seeds made by the broker's own
 * sealing functions decrypt: AK_FUZZ_WRITE_SEEDS=DIR makes this program
 * write such seeds into DIR and exit (tests/fuzz/README.md).
 *
 * Input: byte 0 mod 3 says what the request asked: 0 v1 (ECDH-ES+A256GCM
 * JWEs), 1 v2 (ak2-ECDH-ES+A256GCM), 2 the HSM envelope (byte 0 bit 2:
 * OAEP SHA-256, else SHA-1); the rest is the answer's JSON text. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/pem.h>

#include "attestkey/common.h"
#include "attestkey/envelope.h"
#include "attestkey/hsmenv.h"
#include "attestkey/jwe.h"
#include "attestkey/pkey.h"
#include "attestkey/protocol.h"
#include "attestkey/secmem.h"
#include "fuzz.h"

#define TOKEN "web"
/* a nonce as issued: 87 base64url characters */
#define NONCE "bm9uY2Utb2YtdGhlLWZ1enotdGFyZ2V0LW1vZHVsZV9yZXNwb25zZS0xMjM0NTY3ODkwYWJjZGVmZ2hpamtsbW5v"
#define MAX_KEYS 16

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

/* release.c's entry_meta(), in short: the members the AAD binds. */
static bool entry_meta(const json_t *k, struct ak_key_meta *m, uint8_t **cert)
{
	const char *cert64 = json_string_value(json_object_get(k, "cert"));
	const json_t *ver = json_object_get(k, "version");

	*m = (struct ak_key_meta){.label = json_string_value(json_object_get(k, "label")),
				  .id = json_string_value(json_object_get(k, "id")),
				  .type = json_string_value(json_object_get(k, "type"))};
	if (!m->label || !m->id || !m->type)
		return false;
	if (ver) {
		if (!json_is_integer(ver) || json_integer_value(ver) < 1)
			return false;
		m->version = (uint64_t)json_integer_value(ver);
	}
	if (cert64 && !(*cert = ak_b64url_decode(cert64, &m->cert_len)))
		return false;
	m->cert = *cert;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *hsm_alg, *why = NULL;
	struct ak_secbuf kek = {0};
	struct ak_env *env = NULL;
	json_t *root, *keys, *envelope;
	unsigned mode;
	size_t n;

	if (size < 1)
		return 0;
	mode = data[0] % 3;
	hsm_alg = data[0] & 4 ? AK_HSMENV_ALG_OAEP_256 : AK_HSMENV_ALG_OAEP;
	root = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
	keys = json_object_get(root, "keys");
	envelope = json_object_get(root, "envelope");
	if (!json_is_array(keys))
		goto out;
	if (mode == 1 && ak_env_open_begin(eph_ec, envelope, AK_ALG_V2_ECDH, TOKEN, NONCE, &env,
					   &why) < 0)
		goto out;
	if (mode == 2) {
		const char *alg = json_string_value(json_object_get(envelope, "alg"));
		size_t eklen = 0;
		uint8_t *ek = ak_b64url_decode(json_string_value(json_object_get(envelope, "ek")),
					       &eklen);
		int r = ek && alg && strcmp(alg, hsm_alg) == 0
			    ? ak_hsmenv_open(eph_rsa, alg, ek, eklen, &kek, &why)
			    : -1;

		free(ek);
		if (r < 0)
			goto out;
	}
	n = json_array_size(keys);
	for (size_t i = 0; i < n && i < MAX_KEYS; i++) {
		const json_t *k = json_array_get(keys, i);
		struct ak_secbuf pt = {0};
		struct ak_privkey *priv = NULL;
		struct ak_key_meta m;
		uint8_t *cert = NULL;
		int r = -1;

		if (!entry_meta(k, &m, &cert)) {
			free(cert);
			continue;
		}
		if (mode == 0) {
			r = ak_jwe_decrypt_with(eph_ec, json_object_get(k, "jwe"), &pt, &why);
		} else if (mode == 1) {
			r = ak_env_open_key(env, i, n, &m, k, &pt, &why);
		} else {
			size_t wlen = 0;
			uint8_t *wk = ak_b64url_decode(
			    json_string_value(json_object_get(k, "wrapped")), &wlen);

			r = wk ? ak_hsmenv_unwrap(&kek, wk, wlen, &pt, &why) : -1;
			free(wk);
		}
		if (r == 0 && ak_privkey_from_pkcs8(pt.data, pt.len, &priv) == AK_PKEY_OK) {
			char id[41];

			if (mode == 2)
				fuzz_sink(ak_hsmenv_key_id(priv->pub, id));
			ak_privkey_unref(priv);
		}
		ak_secbuf_clear(&pt);
		free(cert);
	}
out:
	ak_env_free(env);
	ak_secbuf_clear(&kek);
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
	unsigned char *der = NULL;
	int derlen = i2d_PrivateKey(released, &der);
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
		put(dir, sha256 ? "hsm-oaep256-release" : "hsm-oaep-release", sha256 ? 6 : 2,
		    json_pack("{s:s,s:{s:s,s:s},s:[o]}", "token", TOKEN, "envelope", "alg",
			      sha256 ? AK_HSMENV_ALG_OAEP_256 : AK_HSMENV_ALG_OAEP, "ek", ek64,
			      "keys", item));
		free(ek64);
		free(wk64);
	}
	json_decref(envelope);
	json_decref(keys);
	OPENSSL_clear_free(der, (size_t)derlen);
	EVP_PKEY_free(pub_ec);
	EVP_PKEY_free(released);
}
