/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private keys kept only in the OpenSSL secure heap (include/attestkey/pkey.h
 * says what OpenSSL would otherwise copy, and where).
 *
 * RSA and EC keys are legacy objects on purpose: they are the only OpenSSL
 * 3.0 representation whose private numbers we can keep in secure BIGNUMs
 * without an export, bind to OpenSSL's built-in method whatever ENGINE the
 * host registered, and stop caching p and q. The deprecated declarations
 * are used knowingly.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "attestkey/pkey.h"
#include "attestkey/secmem.h"

static pthread_once_t libctx_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *libctx;

static void libctx_init(void)
{
	OSSL_LIB_CTX *c = OSSL_LIB_CTX_new();

	/* No OSSL_LIB_CTX_load_config(): the host's openssl.cnf, providers and
	 * property defaults stay out of attestkey's cryptography. */
	if (!c || !OSSL_PROVIDER_load(c, "default")) {
		ak_log_openssl(AK_LOG_ERR, "cannot create attestkey's OpenSSL library context");
		OSSL_LIB_CTX_free(c);
		return;
	}
	libctx = c;
}

OSSL_LIB_CTX *ak_libctx(void)
{
	pthread_once(&libctx_once, libctx_init);
	return libctx;
}

const char *ak_pkey_strerror(enum ak_pkey_err e)
{
	switch (e) {
	case AK_PKEY_OK: return "no error";
	case AK_PKEY_NOT_PKCS8: return "not a DER PKCS#8 PrivateKeyInfo";
	case AK_PKEY_UNSUPPORTED:
		return "its algorithm or curve is not supported (RSA 2048-4096, EC P-256/384/521 or Ed25519)";
	case AK_PKEY_BAD_KEY: return "the private key inside does not parse or is inconsistent";
	case AK_PKEY_NO_SECURE_MEM: return "no room in the secure heap";
	}
	return "unknown error";
}

/* One DER TLV of the expected tag and class from [*p, *p + *avail), read in
 * place (ASN1_get_object allocates nothing and checks the length against
 * what is left). Definite lengths only (DER). */
static bool tlv(const uint8_t **p, long *avail, int want_tag, int want_class, bool constructed,
		const uint8_t **content, long *clen)
{
	const unsigned char *q = *p;
	long len;
	int tag, xclass, r;

	if (*avail <= 0)
		return false;
	r = ASN1_get_object(&q, &len, &tag, &xclass, *avail);
	if ((r & 0x80) || r == 0x21 || tag != want_tag || xclass != want_class ||
	    !!(r & V_ASN1_CONSTRUCTED) != constructed) {
		ERR_clear_error();
		return false;
	}
	*content = q;
	*clen = len;
	*avail -= (long)(q - *p) + len;
	*p = q + len;
	return true;
}

/* Read one OBJECT IDENTIFIER TLV (public data) and give its NID, or
 * NID_undef when it is not one. */
static int oid_nid(const uint8_t **p, long *avail)
{
	const unsigned char *q = *p;
	ASN1_OBJECT *o = *avail > 0 ? d2i_ASN1_OBJECT(NULL, &q, *avail) : NULL;
	int nid = o ? OBJ_obj2nid(o) : NID_undef;

	if (o) {
		*avail -= (long)(q - *p);
		*p = q;
	}
	ASN1_OBJECT_free(o);
	ERR_clear_error();
	return nid;
}

/* The public key alone, as a provider key of ak_libctx(). Through the
 * decoder: d2i_PUBKEY would make a legacy key whenever a host ENGINE
 * claims the algorithm (libp11's does for RSA and EC). */
static EVP_PKEY *pub_from_spki(uint8_t *der, int len)
{
	const unsigned char *q = der;
	size_t left = len > 0 ? (size_t)len : 0;
	EVP_PKEY *pub = NULL;
	OSSL_DECODER_CTX *dctx = NULL;

	if (len > 0)
		dctx = OSSL_DECODER_CTX_new_for_pkey(&pub, "DER", "SubjectPublicKeyInfo", NULL,
						     EVP_PKEY_PUBLIC_KEY, ak_libctx(), NULL);
	if (dctx && !OSSL_DECODER_from_data(dctx, &q, &left)) {
		EVP_PKEY_free(pub);
		pub = NULL;
	}
	OSSL_DECODER_CTX_free(dctx);
	OPENSSL_free(der);
	return pub;
}

/*
 * The public key as a provider key of ak_libctx() from its parameters.
 * EVP_PKEY_fromdata costs a small part of a decoder: OSSL_DECODER_CTX_new_for_pkey
 * builds its decoder chain on every call (about 1 ms each, most of a
 * 100-key login's time: docs/performance.md). NULL when the context cannot
 * import, as when an ENGINE took the key type over (libp11 inside nginx):
 * the caller then takes the decoder path, which works there.
 */
static EVP_PKEY *pub_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = bld ? OSSL_PARAM_BLD_to_param(bld) : NULL;
	EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(ak_libctx(), type, NULL) : NULL;
	EVP_PKEY *pub = NULL;

	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(pub);
		pub = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ERR_clear_error();
	return pub;
}

static EVP_PKEY *rsa_public(const RSA *rsa)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	const BIGNUM *n = NULL, *e = NULL;

	RSA_get0_key(rsa, &n, &e, NULL);
	if (bld && (!n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))) {
		OSSL_PARAM_BLD_free(bld);
		bld = NULL;
	}
	return pub_from_params("RSA", bld);
}

static EVP_PKEY *ec_public(const EC_GROUP *g, const EC_POINT *pt, int curve, BN_CTX *bn)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	uint8_t oct[1 + 2 * 66];
	size_t n = EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, oct, sizeof(oct), bn);

	if (bld && (!n || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
							   OBJ_nid2sn(curve), 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, oct, n))) {
		OSSL_PARAM_BLD_free(bld);
		bld = NULL;
	}
	return pub_from_params("EC", bld);
}

/* Overwrite n bytes of stack below the caller's frame (n at most 64 KiB). */
__attribute__((noinline)) static void stack_burn(size_t n)
{
	unsigned char burn[64 * 1024];

	OPENSSL_cleanse(burn + sizeof(burn) - n, n);
	__asm__ __volatile__("" : : "r"(burn) : "memory");
}

/* Zero the vector registers (every ZMM on AVX-512 CPUs). Out of line: the
 * SysV ABI has every vector register caller-saved across a call. */
__attribute__((noinline)) static void vector_registers_wipe(void)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx512f")) {
		__asm__ __volatile__("vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
				     "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
				     "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"
				     "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
				     "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"
				     "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
				     "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"
				     "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
				     "vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
				     "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
				     "vpxord %%zmm26, %%zmm26, %%zmm26\n\t"
				     "vpxord %%zmm27, %%zmm27, %%zmm27\n\t"
				     "vpxord %%zmm28, %%zmm28, %%zmm28\n\t"
				     "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"
				     "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
				     "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
				     "vzeroall" ::: "memory");
	} else if (__builtin_cpu_supports("avx")) {
		__asm__ __volatile__("vzeroall" ::: "memory");
	}
#endif
}

/*
 * RSA's private exponentiation without OpenSSL's private Montgomery cache,
 * yet at its speed. With RSA_FLAG_CACHE_PRIVATE off, OpenSSL 3.0 takes its
 * generic CRT path and runs the two half-size exponentiations one after the
 * other, which loses the AVX-512 IFMA pair (half the speed of RSA-2048 on
 * such CPUs). This is that generic path of rsa_ossl_mod_exp() (rsa_ossl.c,
 * OpenSSL 3.0), with the two exponentiations made by
 * BN_mod_exp_mont_consttime_x2(), whose per-call Montgomery contexts are
 * cleared when it returns; the result is checked with the public exponent
 * as OpenSSL does (a faulty CRT result is never returned). The input is
 * already blinded by the caller (rsa_ossl_private_encrypt/decrypt).
 */
static int rsa_mod_exp_nocache(BIGNUM *r0, const BIGNUM *I, RSA *rsa, BN_CTX *ctx)
{
	const BIGNUM *n, *e, *d, *p, *q, *dmp1, *dmq1, *iqmp;
	BIGNUM *r1, *m1, *vrfy, *c = BN_new(), *cd = BN_new();
	int ret = 0;

	RSA_get0_key(rsa, &n, &e, &d);
	RSA_get0_factors(rsa, &p, &q);
	RSA_get0_crt_params(rsa, &dmp1, &dmq1, &iqmp);
	BN_CTX_start(ctx);
	r1 = BN_CTX_get(ctx);
	m1 = BN_CTX_get(ctx);
	vrfy = BN_CTX_get(ctx);
	if (!c || !cd || !vrfy || !p || !q || !dmp1 || !dmq1 || !iqmp)
		goto out;
	BN_with_flags(c, I, BN_FLG_CONSTTIME);
	/* m1 = (I mod q)^dmq1 mod q, r1 = (I mod p)^dmp1 mod p */
	if (!BN_mod(m1, c, q, ctx) || !BN_mod(r1, c, p, ctx) ||
	    !BN_mod_exp_mont_consttime_x2(m1, m1, dmq1, q, NULL, r1, r1, dmp1, p, NULL, ctx))
		goto out;
	/* r0 = ((r1 - m1) * iqmp mod p) * q + m1 */
	if (!BN_sub(r0, r1, m1))
		goto out;
	if (BN_is_negative(r0) && !BN_add(r0, r0, p))
		goto out;
	if (!BN_mul(r1, r0, iqmp, ctx))
		goto out;
	BN_with_flags(cd, r1, BN_FLG_CONSTTIME);
	if (!BN_mod(r0, cd, p, ctx))
		goto out;
	if (BN_is_negative(r0) && !BN_add(r0, r0, p))
		goto out;
	if (!BN_mul(r1, r0, q, ctx) || !BN_add(r0, r1, m1))
		goto out;
	/* r0^e must give I back (mod n): else recompute without CRT */
	if (!BN_mod_exp_mont(vrfy, r0, e, n, ctx, NULL) || !BN_sub(vrfy, vrfy, I) ||
	    !BN_mod(vrfy, vrfy, n, ctx))
		goto out;
	if (!BN_is_zero(vrfy)) {
		BN_with_flags(cd, d, BN_FLG_CONSTTIME);
		if (!BN_mod_exp_mont_consttime(r0, I, cd, n, ctx, NULL))
			goto out;
	}
	ret = 1;
out:
	BN_CTX_end(ctx);
	BN_free(c); /* BN_with_flags: shares the numbers, frees only the shell */
	BN_free(cd);
	/* the AVX-512 exponentiation leaves exponent limbs in its dead frames
	 * and in vector registers, which a core dump's notes record */
	/* 16 KiB: what the exponentiation uses (its tables are on the heap,
	 * cleared), far less than a decoder; it keeps signing fast */
	stack_burn(16 * 1024);
	vector_registers_wipe();
	return ret;
}

static pthread_once_t rsa_meth_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *rsa_meth;

static void rsa_meth_init(void)
{
	RSA_METHOD *m = RSA_meth_dup(RSA_PKCS1_OpenSSL());

	if (m && (!RSA_meth_set1_name(m, "attestkey RSA (no private Montgomery cache)") ||
		  !RSA_meth_set_mod_exp(m, rsa_mod_exp_nocache))) {
		RSA_meth_free(m);
		m = NULL;
	}
	rsa_meth = m;
}

/*
 * Whether the numbers of an RSAPrivateKey make one key: n = p*q, d and the
 * CRT exponents inverses of e mod p-1 and q-1, and qInv the inverse of q
 * mod p. d2i_RSAPrivateKey checks none of it, so a damaged key (a bit
 * changed in its PEM) decoded, its public part came from n and e alone,
 * and the private part signed nothing that public key verifies. What
 * RSA_check_key tests, without its primality tests of p and q (tens of
 * milliseconds for RSA-4096 at every decode), which a damaged key never
 * needs to fail. The temporaries are secret: a secure BN_CTX.
 */
static bool rsa_consistent(const RSA *rsa)
{
	const BIGNUM *n, *e, *d, *p, *q, *dp, *dq, *qinv;
	BN_CTX *ctx = BN_CTX_secure_new();
	BIGNUM *t, *p1, *q1;
	bool ok = false;

	RSA_get0_key(rsa, &n, &e, &d);
	RSA_get0_factors(rsa, &p, &q);
	RSA_get0_crt_params(rsa, &dp, &dq, &qinv);
	if (!ctx)
		return false;
	BN_CTX_start(ctx);
	t = BN_CTX_get(ctx);
	p1 = BN_CTX_get(ctx);
	q1 = BN_CTX_get(ctx);
	if (!q1 || !n || !e || !d || !p || !q || !dp || !dq || !qinv || BN_is_negative(e) ||
	    BN_is_negative(d) || BN_is_negative(dp) || BN_is_negative(dq) || BN_is_negative(qinv) ||
	    BN_cmp(p, BN_value_one()) <= 0 || BN_cmp(q, BN_value_one()) <= 0)
		goto out;
	/* n = p*q */
	if (!BN_mul(t, p, q, ctx) || BN_cmp(t, n) != 0)
		goto out;
	if (!BN_sub(p1, p, BN_value_one()) || !BN_sub(q1, q, BN_value_one()))
		goto out;
	/* dp = d mod (p-1), dq = d mod (q-1) */
	if (!BN_mod(t, d, p1, ctx) || BN_cmp(t, dp) != 0 || !BN_mod(t, d, q1, ctx) ||
	    BN_cmp(t, dq) != 0)
		goto out;
	/* e*dp = 1 mod (p-1), e*dq = 1 mod (q-1) */
	if (!BN_mod_mul(t, e, dp, p1, ctx) || !BN_is_one(t) || !BN_mod_mul(t, e, dq, q1, ctx) ||
	    !BN_is_one(t))
		goto out;
	/* q*qInv = 1 mod p */
	ok = BN_mod_mul(t, q, qinv, p, ctx) && BN_is_one(t);
out:
	BN_CTX_end(ctx);
	BN_CTX_free(ctx); /* secure: its numbers are cleared */
	return ok;
}

static enum ak_pkey_err rsa_decode(const uint8_t *p, long len, struct ak_privkey *k)
{
	const unsigned char *q = p;
	uint8_t *spki = NULL;
	int n;

	k->rsa = d2i_RSAPrivateKey(NULL, &q, len);
	if (!k->rsa || q != p + len)
		return AK_PKEY_BAD_KEY;
	if (RSA_get_multi_prime_extra_count(k->rsa) != 0)
		return AK_PKEY_UNSUPPORTED;
	if (!rsa_consistent(k->rsa))
		return AK_PKEY_BAD_KEY;
	/* OpenSSL's own method with our CRT exponentiation, never a host
	 * ENGINE's (RSA_new picked the default ENGINE's); its init sets both
	 * cache flags: clear the private one so p and q never sit in cached
	 * Montgomery contexts. */
	pthread_once(&rsa_meth_once, rsa_meth_init);
	if (!rsa_meth || !RSA_set_method(k->rsa, rsa_meth))
		return AK_PKEY_BAD_KEY;
	RSA_clear_flags(k->rsa, RSA_FLAG_CACHE_PRIVATE);
	k->pub = rsa_public(k->rsa);
	if (!k->pub) {
		n = i2d_RSA_PUBKEY(k->rsa, &spki);
		k->pub = pub_from_spki(spki, n);
	}
	return k->pub ? AK_PKEY_OK : AK_PKEY_BAD_KEY;
}

static bool curve_supported(int nid)
{
	return nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1;
}

/* RFC 5915 ECPrivateKey, walked in place; the scalar goes straight into a
 * secure BIGNUM (EC_KEY_oct2priv), the public point is recomputed and must
 * equal the one the encoding carries, if any. */
static enum ak_pkey_err ec_decode(const uint8_t *p, long len, int curve, struct ak_privkey *k)
{
	const uint8_t *seq, *c, *priv = NULL, *pubbits = NULL;
	long seq_len, clen, priv_len = 0, pub_len = 0;
	const EC_GROUP *g;
	const BIGNUM *d;
	EC_POINT *pt = NULL, *given = NULL;
	BN_CTX *bn = NULL;
	uint8_t *spki = NULL;
	enum ak_pkey_err ret = AK_PKEY_BAD_KEY;
	int n;

	if (!tlv(&p, &len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, &seq, &seq_len) || len != 0)
		return AK_PKEY_BAD_KEY;
	if (!tlv(&seq, &seq_len, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, false, &c, &clen) || clen != 1 ||
	    c[0] != 1)
		return AK_PKEY_BAD_KEY;
	if (!tlv(&seq, &seq_len, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, false, &priv, &priv_len))
		return AK_PKEY_BAD_KEY;
	if (seq_len > 0 && *seq == 0xa0) { /* [0] parameters */
		if (!tlv(&seq, &seq_len, 0, V_ASN1_CONTEXT_SPECIFIC, true, &c, &clen) ||
		    oid_nid(&c, &clen) != curve || clen != 0)
			return AK_PKEY_BAD_KEY;
	}
	if (seq_len > 0) { /* [1] publicKey */
		if (!tlv(&seq, &seq_len, 1, V_ASN1_CONTEXT_SPECIFIC, true, &c, &clen) ||
		    !tlv(&c, &clen, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, false, &pubbits,
			 &pub_len) ||
		    pub_len < 2 || pubbits[0] != 0)
			return AK_PKEY_BAD_KEY;
	}
	if (seq_len != 0)
		return AK_PKEY_BAD_KEY;

	k->ec = EC_KEY_new_by_curve_name_ex(ak_libctx(), NULL, curve);
	if (!k->ec || !EC_KEY_set_method(k->ec, EC_KEY_OpenSSL()))
		goto out;
	g = EC_KEY_get0_group(k->ec);
	if (priv_len < 1 || priv_len > (EC_GROUP_order_bits(g) + 7) / 8 ||
	    !EC_KEY_oct2priv(k->ec, priv, (size_t)priv_len))
		goto out;
	d = EC_KEY_get0_private_key(k->ec);
	if (!d || BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0)
		goto out;
	bn = BN_CTX_secure_new_ex(ak_libctx());
	pt = EC_POINT_new(g);
	if (!bn || !pt || !EC_POINT_mul(g, pt, d, NULL, NULL, bn) ||
	    !EC_KEY_set_public_key(k->ec, pt))
		goto out;
	if (pubbits) {
		given = EC_POINT_new(g);
		if (!given || !EC_POINT_oct2point(g, given, pubbits + 1, (size_t)pub_len - 1, bn) ||
		    EC_POINT_cmp(g, given, pt, bn) != 0)
			goto out;
	}
	k->pub = ec_public(g, pt, curve, bn);
	if (!k->pub) {
		n = i2d_EC_PUBKEY(k->ec, &spki);
		k->pub = pub_from_spki(spki, n);
	}
	ret = k->pub ? AK_PKEY_OK : AK_PKEY_BAD_KEY;
out:
	EC_POINT_free(pt);
	EC_POINT_free(given);
	BN_CTX_free(bn);
	ERR_clear_error();
	return ret;
}

/* RFC 8410: privateKey is CurvePrivateKey ::= OCTET STRING (32 bytes). */
static enum ak_pkey_err ed25519_decode(const uint8_t *p, long len, struct ak_privkey *k)
{
	const uint8_t *seed;
	long seed_len;
	EVP_PKEY *tmp;
	uint8_t raw[32];
	size_t raw_len = sizeof(raw);

	if (!tlv(&p, &len, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, false, &seed, &seed_len) ||
	    len != 0 || seed_len != 32)
		return AK_PKEY_BAD_KEY;
	/* OpenSSL 3.0 imports the seed into an ordinary-heap buffer
	 * (OSSL_PARAM_get_octet_string allocates it); its key duplicate
	 * allocates in the secure heap. Keep the duplicate; freeing the
	 * import wipes its copy. */
	tmp = EVP_PKEY_new_raw_private_key_ex(ak_libctx(), "ED25519", NULL, seed, 32);
	k->ed = tmp ? EVP_PKEY_dup(tmp) : NULL;
	EVP_PKEY_free(tmp);
	if (!k->ed || !EVP_PKEY_get_raw_public_key(k->ed, raw, &raw_len))
		return AK_PKEY_BAD_KEY;
	k->pub = EVP_PKEY_new_raw_public_key_ex(ak_libctx(), "ED25519", NULL, raw, raw_len);
	return k->pub ? AK_PKEY_OK : AK_PKEY_BAD_KEY;
}

/* The outer PrivateKeyInfo / OneAsymmetricKey (RFC 5208, RFC 5958): the
 * algorithm, the named curve (EC) and the privateKey octets, in place. */
static enum ak_pkey_err pkcs8_header(const uint8_t *der, size_t der_len, int *nid, int *curve,
				     const uint8_t **key, long *key_len)
{
	const uint8_t *p = der, *seq, *c, *alg;
	long avail = (long)der_len, seq_len, clen, alg_len;

	*nid = *curve = NID_undef;
	if (der_len > 1024 * 1024 ||
	    !tlv(&p, &avail, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, &seq, &seq_len) || avail != 0)
		return AK_PKEY_NOT_PKCS8;
	if (!tlv(&seq, &seq_len, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, false, &c, &clen) || clen != 1 ||
	    c[0] > 1)
		return AK_PKEY_NOT_PKCS8;
	if (!tlv(&seq, &seq_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, &alg, &alg_len))
		return AK_PKEY_NOT_PKCS8;
	*nid = oid_nid(&alg, &alg_len);
	if (!tlv(&seq, &seq_len, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, false, key, key_len))
		return AK_PKEY_NOT_PKCS8;
	/* attributes [0] and publicKey [1] may follow; neither is needed */
	if (*nid == NID_X9_62_id_ecPublicKey) {
		/* named curves only: explicit parameters are not supported */
		*curve = oid_nid(&alg, &alg_len);
		if (!curve_supported(*curve) || alg_len != 0)
			return AK_PKEY_UNSUPPORTED;
	} else if (*nid != NID_rsaEncryption && *nid != NID_ED25519) {
		return AK_PKEY_UNSUPPORTED;
	}
	return AK_PKEY_OK;
}

void ak_pkcs8_algorithm(const uint8_t *der, size_t der_len, char *out, size_t outlen)
{
	const uint8_t *key;
	long key_len;
	int nid, curve;

	(void)pkcs8_header(der, der_len, &nid, &curve, &key, &key_len);
	if (nid == NID_X9_62_id_ecPublicKey)
		snprintf(out, outlen, "EC %s",
			 curve != NID_undef ? OBJ_nid2sn(curve) : "(explicit or unknown curve)");
	else
		snprintf(out, outlen, "%s", nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
}

enum ak_pkey_err ak_privkey_from_pkcs8(const uint8_t *der, size_t der_len, struct ak_privkey **out)
{
	const uint8_t *key = NULL;
	long key_len = 0;
	struct ak_privkey *k = NULL;
	enum ak_pkey_err ret;
	int nid, curve;

	*out = NULL;
	if (ak_secure_init() < 0 || !ak_libctx())
		return AK_PKEY_NO_SECURE_MEM;
	ret = pkcs8_header(der, der_len, &nid, &curve, &key, &key_len);
	if (ret != AK_PKEY_OK)
		goto out;
	k = OPENSSL_zalloc(sizeof(*k));
	if (!k) {
		ret = AK_PKEY_NO_SECURE_MEM;
		goto out;
	}
	k->refs = 1;
	k->type = nid == NID_rsaEncryption ? EVP_PKEY_RSA
		  : nid == NID_ED25519     ? EVP_PKEY_ED25519
					   : EVP_PKEY_EC;
	if (k->type == EVP_PKEY_RSA)
		ret = rsa_decode(key, key_len, k);
	else if (k->type == EVP_PKEY_EC)
		ret = ec_decode(key, key_len, curve, k);
	else
		ret = ed25519_decode(key, key_len, k);
	/* A full secure heap shows up as a failed BN_secure_new: say so
	 * rather than blaming the encoding. */
	if (ret == AK_PKEY_BAD_KEY && ERR_GET_REASON(ERR_peek_last_error()) == ERR_R_MALLOC_FAILURE)
		ret = AK_PKEY_NO_SECURE_MEM;
out:
	ERR_clear_error();
	if (ret != AK_PKEY_OK) {
		ak_privkey_unref(k);
		k = NULL;
	}
	*out = k;
	return ret;
}

enum ak_pkey_err ak_privkey_from_evp(EVP_PKEY *pkey, struct ak_privkey **out)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
	unsigned char *der = NULL;
	struct ak_secbuf sb = { 0 };
	enum ak_pkey_err ret = AK_PKEY_NOT_PKCS8;
	int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;

	*out = NULL;
	if (len > 0) {
		if (ak_secbuf_append(&sb, der, (size_t)len) < 0)
			ret = AK_PKEY_NO_SECURE_MEM;
		else
			ret = ak_privkey_from_pkcs8(sb.data, sb.len, out);
		OPENSSL_clear_free(der, (size_t)len);
	}
	ak_secbuf_clear(&sb);
	PKCS8_PRIV_KEY_INFO_free(p8);
	ERR_clear_error();
	return ret;
}

static void pem_str_free(char *p)
{
	if (p)
		OPENSSL_secure_clear_free(p, strlen(p));
}

int ak_pem_pkcs8_secure(const uint8_t *pem, size_t pem_len, const char *what, unsigned char **der,
			long *der_len, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	int ret = -EINVAL;

	*der = NULL;
	*der_len = 0;
	if (!bio)
		return -ENOMEM;
	/* PEM_FLAG_SECURE: the decoded DER lands in the secure heap. */
	for (;;) {
		if (!PEM_read_bio_ex(bio, &name, &header, &data, &len, PEM_FLAG_SECURE)) {
			/* the error queue is the caller's: a full heap looks alike */
			snprintf(err, errlen,
				 "%s: no \"PRIVATE KEY\" PEM block (an unencrypted PKCS#8 key is "
				 "required)",
				 what);
			ret = -ENODATA;
			goto out;
		}
		if (strcmp(name, "PRIVATE KEY") == 0)
			break;
		if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 ||
		    strcmp(name, "RSA PRIVATE KEY") == 0 || strcmp(name, "EC PRIVATE KEY") == 0) {
			snprintf(err, errlen,
				 "%s: holds a \"%s\"; convert it to unencrypted PKCS#8 with "
				 "'openssl pkcs8 -topk8 -nocrypt'",
				 what, name);
			goto out;
		}
		/* e.g. "EC PARAMETERS" before the key: skip */
		pem_str_free(name);
		pem_str_free(header);
		OPENSSL_secure_clear_free(data, (size_t)len);
		name = header = NULL;
		data = NULL;
	}
	*der = data;
	*der_len = len;
	data = NULL;
	ret = 0;
out:
	pem_str_free(name);
	pem_str_free(header);
	if (data)
		OPENSSL_secure_clear_free(data, (size_t)len);
	BIO_free(bio);
	return ret;
}

void ak_stack_wipe(void)
{
	stack_burn(64 * 1024);
}

void ak_vector_registers_wipe(void)
{
	vector_registers_wipe();
}

struct ak_privkey *ak_privkey_ref(struct ak_privkey *k)
{
	if (k)
		__atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
	return k;
}

void ak_privkey_unref(struct ak_privkey *k)
{
	if (!k || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	RSA_free(k->rsa); /* secure BIGNUMs: wiped on free */
	EC_KEY_free(k->ec);
	EVP_PKEY_free(k->ed);
	EVP_PKEY_free(k->pub);
	OPENSSL_free(k);
}

/* ---- public keys from PKCS#11 attributes ------------------------------ */

EVP_PKEY *ak_rsa_public(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;

	if (!bld || !bn || !be || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(ak_libctx(), "RSA", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pk = NULL;
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

EVP_PKEY *ak_ec_public(bool edwards, const uint8_t *params, size_t plen, const uint8_t *point,
		       size_t ptlen)
{
	const unsigned char *p = params;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	OSSL_PARAM prm[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	int nid = NID_undef;
	const char *curve;

	if (!params || !point)
		return NULL;
	oid = d2i_ASN1_OBJECT(NULL, &p, (long)plen);
	if (oid)
		nid = OBJ_obj2nid(oid);
	else if (plen >= 2 && params[0] == V_ASN1_PRINTABLESTRING && params[1] == plen - 2 &&
		 memcmp(params + 2, "edwards25519", plen - 2) == 0)
		nid = NID_ED25519;
	p = point;
	os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ptlen);
	if (os && p == point + ptlen) {
		point = ASN1_STRING_get0_data(os);
		ptlen = (size_t)ASN1_STRING_length(os);
	}
	if (edwards) {
		if (nid == NID_ED25519)
			pk = EVP_PKEY_new_raw_public_key_ex(ak_libctx(), "ED25519", NULL, point,
							    ptlen);
		goto out;
	}
	curve = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
	if (!curve)
		goto out;
	prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0);
	prm[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, ptlen);
	prm[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(ak_libctx(), "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, prm) <= 0)
		pk = NULL;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(os);
	return pk;
}
