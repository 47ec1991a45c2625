/* SPDX-License-Identifier: Apache-2.0 */
/* The broker's turning of a key store's key material into a key:
 * broker_key_from_pem() (src/broker/keystore.c), which both the file store
 * (a key file and its optional certificate file) and the Vault store (a
 * secret's private_key and certificate strings) call, with the PEM reader
 * (ak_pem_pkcs8_secure), the PKCS#8 decoder (ak_privkey_from_pkcs8), the key
 * type check, the CKA_ID and the certificate match behind it.
 *
 * Input: byte 0 mod 4 = 0 or 1: bytes 1-2 (big-endian) the length of the
 * key PEM (cut to what is there), which follows; the rest is the
 * certificate PEM, given only when byte 0 bit 0 is set (else none, as for
 * a key file without a .crt).
 *
 * What must hold: on success a key whose type is one of the three, its
 * CKA_ID the one of its public key, its PKCS#8 decoding again to a private
 * key that matches its SubjectPublicKeyInfo and signs what that public key
 * verifies, and a certificate exactly when one was given, for the same
 * public key; on failure an error message and nothing in the key; in both
 * cases no OpenSSL error left queued for the thread's next caller and the
 * secure heap back to what it was once the key is freed. Any breach
 * aborts. */
#include "config.h"

#define OPENSSL_SUPPRESS_DEPRECATED 1 /* RSA_sign, ECDSA_sign: as pkcs11/crypto.c */

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
		ok = m && EVP_DigestSignInit_ex(m, NULL, NULL, ak_libctx(), NULL, priv->ed, NULL) == 1 &&
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

/* The invariants of a key broker_key_from_pem made (cert: one was given). */
static void check_key(const struct broker_key *k, bool cert)
{
	const unsigned char *p = k->spki_der;
	EVP_PKEY *pub = k->spki_der ? d2i_PUBKEY_ex(NULL, &p, (long)k->spki_len, ak_libctx(), NULL)
				    : NULL;
	struct ak_privkey *priv = NULL;
	char id[2 * BROKER_KEY_ID_LEN + 1];
	X509 *x = NULL;

	if (!pub || p != k->spki_der + k->spki_len)
		fail("the key's SubjectPublicKeyInfo does not decode");
	if (type_of(k->type) == EVP_PKEY_NONE || EVP_PKEY_get_base_id(pub) != type_of(k->type))
		fail("the key's type is not its public key's");
	if (ak_hsmenv_key_id(pub, id) < 0 || strcmp(id, k->id) != 0)
		fail("the key's CKA_ID is not its public key's");
	if (!k->pkcs8.len || ak_privkey_from_pkcs8(k->pkcs8.data, k->pkcs8.len, &priv) != AK_PKEY_OK)
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
	if (k->label || k->version || k->store_ref)
		fail("broker_key_from_pem set what belongs to the store");
	X509_free(x);
	ak_privkey_unref(priv);
	EVP_PKEY_free(pub);
	ERR_clear_error(); /* the checks' own, not the code under test's */
}

static void from_pem(const uint8_t *data, size_t size)
{
	size_t klen, used = CRYPTO_secure_used();
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
	ret = broker_key_from_pem(data, klen, "key.pem", cert ? data + klen : NULL,
				  cert ? size - klen : 0, "key.crt", key, err, sizeof(err));
	if (ERR_peek_error() != 0)
		fail("an OpenSSL error is left queued");
	if (ret == 0) {
		check_key(key, cert);
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
	check_key(key, false);
	broker_keys_free(key, 1);
	BIO_free(b);
	EVP_PKEY_free(pk);
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
	if (size < 3)
		return 0;
	switch (data[0] % 4) {
	case 0:
	case 1:
		from_pem(data, size);
		break;
	default:
		break;
	}
	return 0;
}
