/* SPDX-License-Identifier: Apache-2.0 */
/* The broker's turning of a key store's key material into a key:
 * broker_key_from_pem() (src/broker/keystore.c), which both the file store
 * (a key file and its optional certificate file) and the Vault store (a
 * secret's private_key and certificate strings) call, with the PEM reader
 * (ak_pem_pkcs8_secure), the PKCS#8 decoder (ak_privkey_from_pkcs8), the key
 * type check, the CKA_ID and the certificate match behind it.
 *
 * The Vault store's handling of what Vault answers is reached too:
 * src/broker/keystore_vault.c is compiled into the target (its functions
 * are static, as vault_response does with vault.c): key_from_secret(), what
 * read_key() does with a KV v2 secret's data (the shape check, pem_digest,
 * the cache of parsed keys, broker_key_from_pem), and list_answer(), what
 * vault_fetch() checks in the KV list answer (keys and folders, the bounds,
 * the pinned labels). Only the HTTP exchanges are not reached.
 *
 * Input: byte 0 mod 4 = 0 or 1: bytes 1-2 (big-endian) the length of the
 * key PEM (cut to what is there), which follows; the rest is the
 * certificate PEM, given only when byte 0 bit 0 is set (else none, as for
 * a key file without a .crt). 2: the rest is a KV v2 secret's data (JSON,
 * parsed into the secure heap as the Vault client does), read three times
 * by one store: version 3, version 3 again (from the cache), version 4.
 * 3: the rest is the data.keys of a KV list answer (JSON); byte 0 bit 2:
 * the token pins the label "web", bit 3: it also pins the first entry.
 *
 * What must hold: on success a key whose type is one of the three, its
 * CKA_ID the one of its public key, its PKCS#8 decoding again to a private
 * key that matches its SubjectPublicKeyInfo and signs what that public key
 * verifies, and a certificate exactly when one was given, for the same
 * public key; on failure an error message and nothing in the key; in both
 * cases no OpenSSL error left queued for the thread's next caller and the
 * secure heap back to what it was once the key is freed. Any breach
 * aborts. */
#define OPENSSL_SUPPRESS_DEPRECATED 1 /* RSA_sign, ECDSA_sign: as pkcs11/crypto.c */
#include "../../src/broker/keystore_vault.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "attestkey/hsmenv.h"
#include "attestkey/pkey.h"
#include "attestkey/secmem.h"
#include "../../src/broker/keystore.h"
#include "fuzz.h"

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_broker_key: %s\n", what);
	abort();
}

/* priv signs a fixed digest and pub (the key's SubjectPublicKeyInfo)
 * verifies the signature. */
static bool signs_for(const struct ak_privkey *priv, EVP_PKEY *pub)
{
	static const uint8_t md[32] = "attestkey fuzz_broker_key digst";
	uint8_t sig[1024];
	unsigned int slen = 0;
	size_t len = sizeof(sig);
	EVP_MD_CTX *m = NULL;
	EVP_PKEY_CTX *v = NULL;
	bool ok = false;

	switch (priv->type) {
	case EVP_PKEY_RSA:
		ok = RSA_size(priv->rsa) <= (int)sizeof(sig) &&
		     RSA_sign(NID_sha256, md, sizeof(md), sig, &slen, priv->rsa) == 1;
		break;
	case EVP_PKEY_EC:
		ok = ECDSA_size(priv->ec) <= (int)sizeof(sig) &&
		     ECDSA_sign(0, md, sizeof(md), sig, &slen, priv->ec) == 1;
		break;
	case EVP_PKEY_ED25519:
		m = EVP_MD_CTX_new();
		ok = m &&
		     EVP_DigestSignInit_ex(m, NULL, NULL, ak_libctx(), NULL, priv->ed, NULL) == 1 &&
		     EVP_DigestSign(m, sig, &len, md, sizeof(md)) == 1;
		EVP_MD_CTX_free(m);
		m = EVP_MD_CTX_new();
		ok = ok && m &&
		     EVP_DigestVerifyInit_ex(m, NULL, NULL, ak_libctx(), NULL, pub, NULL) == 1 &&
		     EVP_DigestVerify(m, sig, len, md, sizeof(md)) == 1;
		EVP_MD_CTX_free(m);
		return ok;
	default:
		return false;
	}
	v = EVP_PKEY_CTX_new_from_pkey(ak_libctx(), pub, NULL);
	ok = ok && v && EVP_PKEY_verify_init(v) == 1 &&
	     (priv->type != EVP_PKEY_RSA ||
	      (EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PADDING) == 1 &&
	       EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1)) &&
	     EVP_PKEY_verify(v, sig, slen, md, sizeof(md)) == 1;
	EVP_PKEY_CTX_free(v);
	return ok;
}

static int type_of(const char *type)
{
	return strcmp(type, "RSA") == 0	      ? EVP_PKEY_RSA
	       : strcmp(type, "EC") == 0      ? EVP_PKEY_EC
	       : strcmp(type, "Ed25519") == 0 ? EVP_PKEY_ED25519
					      : EVP_PKEY_NONE;
}

/* The invariants of a key broker_key_from_pem made (cert: one was given),
 * with the label and version its store set. */
static void check_key(const struct broker_key *k, bool cert, const char *label, unsigned version)
{
	const unsigned char *p = k->spki_der;
	EVP_PKEY *pub =
	    k->spki_der ? d2i_PUBKEY_ex(NULL, &p, (long)k->spki_len, ak_libctx(), NULL) : NULL;
	struct ak_privkey *priv = NULL;
	char id[2 * BROKER_KEY_ID_LEN + 1];
	X509 *x = NULL;

	if (!pub || p != k->spki_der + k->spki_len)
		fail("the key's SubjectPublicKeyInfo does not decode");
	if (type_of(k->type) == EVP_PKEY_NONE || EVP_PKEY_get_base_id(pub) != type_of(k->type))
		fail("the key's type is not its public key's");
	if (ak_hsmenv_key_id(pub, id) < 0 || strcmp(id, k->id) != 0)
		fail("the key's CKA_ID is not its public key's");
	if (!k->pkcs8.len ||
	    ak_privkey_from_pkcs8(k->pkcs8.data, k->pkcs8.len, &priv) != AK_PKEY_OK)
		fail("the key's PKCS#8 does not decode");
	if (priv->type != type_of(k->type) || EVP_PKEY_eq(priv->pub, pub) != 1)
		fail("the key's PKCS#8 is another key than its SubjectPublicKeyInfo");
	if (!signs_for(priv, pub))
		fail("the private key does not sign for its public key");
	if (cert != (k->cert_der != NULL) || cert != (k->cert_len != 0))
		fail("a certificate given and none kept, or the other way round");
	if (cert) {
		p = k->cert_der;
		x = d2i_X509(NULL, &p, (long)k->cert_len);
		if (!x || p != k->cert_der + k->cert_len)
			fail("the kept certificate does not decode");
		if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) != 1)
			fail("the kept certificate is for another key");
	}
	if ((label ? !k->label || strcmp(k->label, label) != 0 : k->label != NULL) ||
	    k->version != version || k->store_ref)
		fail("the key's label, version or store reference is not what its store set");
	X509_free(x);
	ak_privkey_unref(priv);
	EVP_PKEY_free(pub);
	ERR_clear_error(); /* the checks' own, not the code under test's */
}

static void from_pem(const uint8_t *data, size_t size)
{
	size_t klen, used = CRYPTO_secure_used();
	uint8_t *kpem, *cpem;
	bool cert = data[0] & 1;
	struct broker_key *key = calloc(1, sizeof(*key));
	char err[512] = "";
	int ret;

	if (!key)
		fuzz_die("calloc");
	klen = (size_t)data[1] << 8 | data[2];
	data += 3;
	size -= 3;
	if (klen > size)
		klen = size;
	/* each part in a block of its own size: ASan sees a read past the
	 * key's end, which would otherwise land in the certificate */
	kpem = malloc(klen ? klen : 1);
	cpem = malloc(size - klen ? size - klen : 1);
	if (!kpem || !cpem)
		fuzz_die("malloc");
	memcpy(kpem, data, klen);
	memcpy(cpem, data + klen, size - klen);
	ret = broker_key_from_pem(kpem, klen, "key.pem", cert ? cpem : NULL, cert ? size - klen : 0,
				  "key.crt", key, err, sizeof(err));
	free(kpem);
	free(cpem);
	if (ERR_peek_error() != 0)
		fail("an OpenSSL error is left queued");
	if (ret == 0) {
		check_key(key, cert, NULL, 0);
	} else {
		if (!err[0])
			fail("a refusal without a message");
		/* the secure heap (1 MiB) holds any input libFuzzer makes */
		if (ret != -EINVAL)
			fail("a refusal other than -EINVAL");
		if (key->pkcs8.data || key->pkcs8.len || key->cert_der || key->cert_len ||
		    key->spki_der || key->spki_len)
			fail("a refused key keeps a part");
	}
	broker_keys_free(key, 1);
	if (CRYPTO_secure_used() != used)
		fail("the secure heap is not back to what it was");
}

/* One key of each type the broker takes, through the code under test and
 * the checks: what OpenSSL sets up once per type (the first EC key takes
 * 512 bytes of secure heap for good) is not charged to the first input. */
static void warm_up(EVP_PKEY *pk)
{
	struct broker_key *key = calloc(1, sizeof(*key));
	BIO *b = BIO_new(BIO_s_secmem());
	BUF_MEM *pem = NULL;
	char err[512];

	if (!key || !pk || !b || !PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) ||
	    BIO_get_mem_ptr(b, &pem) != 1)
		fuzz_die("making a key to warm up with");
	if (broker_key_from_pem((const uint8_t *)pem->data, pem->length, "warm-up", NULL, 0, NULL,
				key, err, sizeof(err)) < 0)
		fuzz_die(err);
	check_key(key, false, NULL, 0);
	broker_keys_free(key, 1);
	BIO_free(b);
	EVP_PKEY_free(pk);
}

static bool same_key(const struct broker_key *a, const struct broker_key *b)
{
	return strcmp(a->id, b->id) == 0 && strcmp(a->type, b->type) == 0 &&
	       strcmp(a->label, b->label) == 0 && a->pkcs8.len == b->pkcs8.len &&
	       memcmp(a->pkcs8.data, b->pkcs8.data, a->pkcs8.len) == 0 &&
	       a->cert_len == b->cert_len &&
	       (!a->cert_len || memcmp(a->cert_der, b->cert_der, a->cert_len) == 0) &&
	       a->spki_len == b->spki_len && memcmp(a->spki_der, b->spki_der, a->spki_len) == 0;
}

/* A KV v2 secret's data as read_key() takes it from ak_vault_kv_read(). */
static void from_secret(const uint8_t *data, size_t size)
{
	static const char path[] = "attestkey/web/tls", shown[] = "secret/data/attestkey/web/tls";
	static const unsigned versions[3] = {3, 3, 4};
	size_t used = CRYPTO_secure_used(), cached = 0;
	struct broker_key keys[3];
	struct vault_store *vs;
	struct parsed *p;
	json_t *j, *cert;
	char err[1536];
	int ret[3];

	if (vault_create((void **)&vs) < 0)
		fuzz_die("vault_create");
	j = ak_json_loadb_secret((const char *)data, size, err, sizeof(err));
	cert = json_object_get(j, "certificate");
	memset(keys, 0, sizeof(keys));
	for (int i = 0; i < 3; i++) {
		err[0] = 0;
		ret[i] = key_from_secret(vs, path, "tls", versions[i], j, shown, &keys[i], err,
					 sizeof(err));
		if (ERR_peek_error() != 0)
			fail("an OpenSSL error is left queued");
		if (ret[i] == 0) {
			check_key(&keys[i], json_is_string(cert), "tls", versions[i]);
		} else if (!err[0] || ret[i] != -EINVAL || keys[i].label || keys[i].pkcs8.data ||
			   keys[i].cert_der || keys[i].spki_der) {
			fail("a refused secret without a message, or with a part of a key");
		}
		/* the same PEMs parse the same at every version */
		if ((ret[i] == 0) != (ret[0] == 0))
			fail("the same secret accepted once and refused once");
	}
	if (ret[0] == 0 && (!same_key(&keys[0], &keys[1]) || !same_key(&keys[0], &keys[2])))
		fail("the cache gave back another key than the one parsed");
	for (p = vs->cache; p; p = p->next)
		cached++;
	if (cached != (ret[0] == 0) || (vs->cache && vs->cache->version != 4))
		fail("the cache does not hold exactly the last version parsed");
	for (int i = 0; i < 3; i++) {
		free(keys[i].label);
		keys[i].label = NULL;
		ak_secbuf_clear(&keys[i].pkcs8);
		free(keys[i].cert_der);
		OPENSSL_free(keys[i].spki_der);
	}
	json_decref(j);
	vault_destroy(vs);
	if (CRYPTO_secure_used() != used)
		fail("the secure heap is not back to what it was");
}

/* A KV list answer's data.keys (an array: ak_vault_kv_list refuses
 * anything else), as vault_fetch() takes it. */
static void from_list(uint8_t flags, const uint8_t *data, size_t size)
{
	json_t *names = json_loadb((const char *)data, size, 0, NULL), *name;
	struct broker_key_pin pins[2] = {{.label = (char *)"web", .version = 1}, {0}};
	struct broker_fetch req = {.token = "web", .path = "web", .pins = pins};
	size_t n = 0, keys = 0, idx;
	char err[1024] = "";
	int ret;

	if (!json_is_array(names)) {
		json_decref(names);
		return;
	}
	if (flags & 4)
		req.n_pins = 1;
	if ((flags & 8) && json_string_value(json_array_get(names, 0))) {
		pins[req.n_pins].label = (char *)json_string_value(json_array_get(names, 0));
		pins[req.n_pins++].version = 2;
	}
	ret = list_answer(names, &req, "secret/metadata/attestkey/web", &n, err, sizeof(err));
	json_array_foreach(names, idx, name)
	{
		const char *s = json_string_value(name);

		keys += s && *s && s[strlen(s) - 1] != '/';
	}
	if (n != keys)
		fail("list_answer counted other keys than the entries that are not folders");
	if (ret == 0) {
		if (n == 0 || n > MAX_KEYS_PER_TOKEN)
			fail("a list of no keys or too many accepted");
		json_array_foreach(names, idx, name)
		{
			const char *s = json_string_value(name);

			/* folders are not keys: their names are never labels */
			for (size_t i = 0;
			     s && *s && s[strlen(s) - 1] != '/' && i < json_string_length(name);
			     i++) {
				if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
					fail("a key name with a control character accepted");
			}
		}
		for (size_t i = 0; i < req.n_pins; i++) {
			bool found = false;

			json_array_foreach(names, idx, name)
			{
				const char *s = json_string_value(name);

				found = found || (s && strcmp(s, pins[i].label) == 0);
			}
			if (!found)
				fail("a pinned label that is not listed accepted");
		}
	} else if (!err[0] ||
		   (ret != -E2BIG && ret != -EINVAL && ret != BROKER_KEYSTORE_UNAVAILABLE)) {
		fail("a refused list without a message or with another error");
	}
	json_decref(names);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	warm_up(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	warm_up(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	warm_up(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"));
	warm_up(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"));
	warm_up(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
	case 1:
		if (size >= 3)
			from_pem(data, size);
		break;
	case 2:
		from_secret(data + 1, size - 1);
		break;
	default:
		from_list(data[0], data + 1, size - 1);
		break;
	}
	return 0;
}
