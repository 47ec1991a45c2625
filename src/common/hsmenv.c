/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's side of the HSM envelope (include/attestkey/hsmenv.h,
 * docs/hsm.md): RSA-OAEP, then AES key wrap with padding (RFC 5649), with
 * OpenSSL in attestkey's own library context, every plaintext byte in the
 * secure heap.
 *
 * OpenSSL's RSA-OAEP decoding holds the padded block in ordinary-heap
 * scratch buffers for the length of the call and frees them with
 * OPENSSL_clear_free: only the per-release AES key passes there, wiped,
 * never a released private key (those come out of the AES unwrap, written
 * straight into the secure heap).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "attestkey/hsmenv.h"
#include "attestkey/pkey.h"

#define SET_WHY(s)                                                                                 \
	do {                                                                                       \
		if (why)                                                                           \
			*why = (s);                                                                \
	} while (0)

bool ak_hsmenv_alg_known(const char *alg)
{
	return alg &&
	       (strcmp(alg, AK_HSMENV_ALG_OAEP) == 0 || strcmp(alg, AK_HSMENV_ALG_OAEP_256) == 0);
}

EVP_PKEY *ak_hsmenv_keygen(void)
{
	return EVP_PKEY_Q_keygen(ak_libctx(), NULL, "RSA", (size_t)AK_HSMENV_RSA_BITS);
}

int ak_hsmenv_open(EVP_PKEY *priv, const char *alg, const uint8_t *ek, size_t ek_len,
		   struct ak_secbuf *kek, const char **why)
{
	const char *md;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	size_t cap, len;
	int ret = -EINVAL;

	SET_WHY(NULL);
	ak_secbuf_clear(kek);
	if (!ak_hsmenv_alg_known(alg)) {
		SET_WHY("the envelope's alg is not " AK_HSMENV_ALG_OAEP
			" or " AK_HSMENV_ALG_OAEP_256);
		return -EINVAL;
	}
	md = strcmp(alg, AK_HSMENV_ALG_OAEP) == 0 ? "SHA1" : "SHA256";
	if (!priv || EVP_PKEY_get_base_id(priv) != EVP_PKEY_RSA) {
		SET_WHY("the ephemeral key is not an RSA key");
		return -EINVAL;
	}
	cap = (size_t)EVP_PKEY_get_size(priv);
	if (ek_len != cap) {
		SET_WHY("the wrapped AES key is not as long as the ephemeral RSA modulus");
		return -EINVAL;
	}
	buf = OPENSSL_secure_malloc(cap);
	if (!buf) {
		SET_WHY("no room in the secure heap for the AES key");
		return -ENOMEM;
	}
	len = cap;
	ctx = EVP_PKEY_CTX_new_from_pkey(ak_libctx(), priv, NULL);
	if (!ctx || EVP_PKEY_decrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) <= 0) {
		SET_WHY("cannot set up RSA-OAEP decryption");
		goto out;
	}
	if (EVP_PKEY_decrypt(ctx, buf, &len, ek, ek_len) <= 0) {
		SET_WHY("the wrapped AES key does not decrypt with the ephemeral key "
			"(tampered, or wrapped to another key or with another hash)");
		goto out;
	}
	if (len != AK_HSMENV_KEK_LEN) {
		SET_WHY("the wrapped AES key is not a 256-bit key");
		goto out;
	}
	ret = ak_secbuf_append(kek, buf, len);
	if (ret < 0)
		SET_WHY("no room in the secure heap for the AES key");
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_secure_clear_free(buf, cap);
	return ret;
}

/* The length of the DER SEQUENCE at the start of p (tag, length, content),
 * or 0 when p does not start with a definite-length SEQUENCE that fits. */
static size_t der_sequence_len(const uint8_t *p, size_t len)
{
	const unsigned char *q = p;
	long clen = 0;
	int tag = 0, klass = 0, r;

	r = ASN1_get_object(&q, &clen, &tag, &klass, (long)len);
	ERR_clear_error();
	if ((r & 0x80) || r != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE ||
	    klass != V_ASN1_UNIVERSAL)
		return 0;
	return (size_t)(q - p) + (size_t)clen;
}

int ak_hsmenv_unwrap(const struct ak_secbuf *kek, const uint8_t *wk, size_t wk_len,
		     struct ak_secbuf *out, const char **why)
{
	EVP_CIPHER *cipher = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	size_t der, i;
	int n = 0, fin = 0, ret = -EINVAL;

	SET_WHY(NULL);
	ak_secbuf_clear(out);
	if (!kek || kek->len != AK_HSMENV_KEK_LEN) {
		SET_WHY("the AES key is not a 256-bit key");
		return -EINVAL;
	}
	/* RFC 5649 §4.2: at least two 64-bit blocks, whole blocks */
	if (wk_len < 16 || wk_len % 8 != 0 || wk_len > INT32_MAX) {
		SET_WHY("the wrapped key is not an RFC 5649 wrap (length)");
		return -EINVAL;
	}
	buf = OPENSSL_secure_zalloc(wk_len);
	if (!buf) {
		SET_WHY("no room in the secure heap for the key");
		return -ENOMEM;
	}
	cipher = EVP_CIPHER_fetch(ak_libctx(), "AES-256-WRAP-PAD", NULL);
	ctx = EVP_CIPHER_CTX_new();
	if (!cipher || !ctx) {
		SET_WHY("OpenSSL has no AES-256 key wrap with padding");
		ret = -ENOTSUP;
		goto out;
	}
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (!EVP_DecryptInit_ex2(ctx, cipher, kek->data, NULL, NULL) ||
	    !EVP_DecryptUpdate(ctx, buf, &n, wk, (int)wk_len) ||
	    !EVP_DecryptFinal_ex(ctx, buf + n, &fin) || n <= 0) {
		SET_WHY("the wrapped key fails its integrity check (tampered, or wrapped with "
			"another key)");
		goto out;
	}
	n += fin;
	der = der_sequence_len(buf, (size_t)n);
	if (der == 0 || der > (size_t)n) {
		SET_WHY("the unwrapped key is not DER PKCS#8");
		goto out;
	}
	for (i = der; i < (size_t)n; i++) {
		if (buf[i] != 0 || (size_t)n - der >= 8) {
			SET_WHY("the unwrapped key has bytes after its DER PKCS#8 other than "
				"the HSM's zero padding");
			goto out;
		}
	}
	ret = ak_secbuf_append(out, buf, der);
	if (ret < 0)
		SET_WHY("no room in the secure heap for the key");
out:
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(cipher);
	OPENSSL_secure_clear_free(buf, wk_len);
	return ret;
}
