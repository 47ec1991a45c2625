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
#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
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

/* A BIGNUM as base64url of its minimal big-endian bytes (RFC 7518 §2). */
static char *bn_b64(const BIGNUM *bn)
{
	int n = BN_num_bytes(bn);
	uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
	char *s = NULL;

	if (buf && BN_bn2bin(bn, buf) == n)
		s = ak_b64url_encode(buf, (size_t)n);
	free(buf);
	return s;
}

json_t *ak_hsmenv_jwk_public(EVP_PKEY *rsa)
{
	BIGNUM *n = NULL, *e = NULL;
	char *sn = NULL, *se = NULL;
	json_t *jwk = NULL;

	if (rsa && EVP_PKEY_get_base_id(rsa) == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n) &&
	    EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &e) && (sn = bn_b64(n)) &&
	    (se = bn_b64(e)))
		jwk = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "n", sn, "e", se);
	ERR_clear_error();
	BN_free(n);
	BN_free(e);
	free(sn);
	free(se);
	return jwk;
}

/* A JWK member as a BIGNUM: base64url without leading zero bytes. */
static BIGNUM *jwk_bn(const json_t *jwk, const char *name)
{
	const char *s = json_string_value(json_object_get(jwk, name));
	size_t len = 0;
	uint8_t *buf = s ? ak_b64url_decode(s, &len) : NULL;
	BIGNUM *bn = NULL;

	if (buf && len && buf[0] != 0 && len <= 1024)
		bn = BN_bin2bn(buf, (int)len, NULL);
	free(buf);
	return bn;
}

EVP_PKEY *ak_hsmenv_pkey_from_jwk(const json_t *jwk, const char **why)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *n = NULL, *e = NULL;
	const char *kty = json_string_value(json_object_get(jwk, "kty"));

	SET_WHY(NULL);
	if (!json_is_object(jwk) || !kty || strcmp(kty, "RSA") != 0) {
		SET_WHY("pubkey is not an RSA JWK");
		return NULL;
	}
	if (json_object_size(jwk) != 3) {
		SET_WHY("pubkey has members other than kty, n and e (a private key?)");
		return NULL;
	}
	n = jwk_bn(jwk, "n");
	e = jwk_bn(jwk, "e");
	if (!n || !e) {
		SET_WHY("pubkey's n or e is not a base64url integer without leading zeros");
		goto out;
	}
	if (BN_num_bits(n) < AK_HSMENV_RSA_BITS || BN_num_bits(n) > 8192 || !BN_is_odd(n)) {
		SET_WHY("pubkey is not an RSA modulus of 3072 to 8192 bits");
		goto out;
	}
	if (!BN_is_odd(e) || BN_num_bits(e) < 2 || BN_num_bits(e) > 256) {
		SET_WHY("pubkey's public exponent is not an odd number from 3 to 2^256");
		goto out;
	}
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(ak_libctx(), "RSA", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		pk = NULL;
		SET_WHY("pubkey is not a valid RSA public key");
	}
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pk;
}

int ak_hsmenv_key_id(EVP_PKEY *pub, char hex[41])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int bitslen = 0, ret = -EINVAL;

	if (pub && X509_PUBKEY_set(&xpk, pub) &&
	    X509_PUBKEY_get0_param(NULL, &bits, &bitslen, NULL, xpk) &&
	    EVP_Digest(bits, (size_t)bitslen, md, &mdlen, EVP_sha1(), NULL) && mdlen == 20) {
		ak_hex_encode(md, 20, hex);
		ret = 0;
	}
	ERR_clear_error();
	X509_PUBKEY_free(xpk);
	return ret;
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
