/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing and decryption with the released keys, through OpenSSL EVP with a
 * context per session: no lock is held while a key signs. Mechanisms follow
 * PKCS#11 2.40 "Current Mechanisms" sections 2.1 (RSA) and 2.3 (ECDSA).
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1 /* RSA_* and ECDSA_do_sign: see pkey.h */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "p11.h"

/* Raw mechanisms collect their input for SignFinal; nothing legitimate is
 * longer than a modulus, so this only bounds misuse. */
#define RAW_INPUT_MAX 4096
/* Ed25519 (RFC 8032) hashes the whole message twice, so OpenSSL signs it in
 * one call; multi-part CKM_EDDSA collects the parts up to this size. */
#define EDDSA_INPUT_MAX (1024 * 1024)

enum pad { PAD_NONE = 0, PAD_PKCS1, PAD_PSS, PAD_X509, PAD_OAEP, PAD_EDDSA };

/* PKCS#11 3.0 (current mechanisms section 2.3.1), absent from the 2.40
 * header of p11-kit 0.24. */
#ifndef CKK_EC_EDWARDS
#define CKK_EC_EDWARDS 0x00000040UL
#endif
#ifndef CKM_EDDSA
#define CKM_EDDSA 0x00001057UL
#endif

static const struct mech {
	CK_MECHANISM_TYPE type;
	CK_KEY_TYPE kt;
	const char *md; /* hash-and-sign: the hash; NULL for raw mechanisms */
	enum pad pad;
	CK_FLAGS flags;
} mechs[] = {
	{ CKM_RSA_PKCS, CKK_RSA, NULL, PAD_PKCS1, CKF_SIGN | CKF_VERIFY | CKF_DECRYPT },
	{ CKM_RSA_PKCS_PSS, CKK_RSA, NULL, PAD_PSS, CKF_SIGN | CKF_VERIFY },
	{ CKM_RSA_X_509, CKK_RSA, NULL, PAD_X509, CKF_SIGN | CKF_VERIFY | CKF_DECRYPT },
	{ CKM_RSA_PKCS_OAEP, CKK_RSA, NULL, PAD_OAEP, CKF_DECRYPT },
	{ CKM_SHA1_RSA_PKCS, CKK_RSA, "SHA1", PAD_PKCS1, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA224_RSA_PKCS, CKK_RSA, "SHA224", PAD_PKCS1, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA256_RSA_PKCS, CKK_RSA, "SHA256", PAD_PKCS1, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA384_RSA_PKCS, CKK_RSA, "SHA384", PAD_PKCS1, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA512_RSA_PKCS, CKK_RSA, "SHA512", PAD_PKCS1, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA1_RSA_PKCS_PSS, CKK_RSA, "SHA1", PAD_PSS, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA224_RSA_PKCS_PSS, CKK_RSA, "SHA224", PAD_PSS, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, "SHA256", PAD_PSS, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, "SHA384", PAD_PSS, CKF_SIGN | CKF_VERIFY },
	{ CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, "SHA512", PAD_PSS, CKF_SIGN | CKF_VERIFY },
	{ CKM_ECDSA, CKK_EC, NULL, PAD_NONE, CKF_SIGN | CKF_VERIFY },
	{ CKM_ECDSA_SHA1, CKK_EC, "SHA1", PAD_NONE, CKF_SIGN | CKF_VERIFY },
	{ CKM_ECDSA_SHA224, CKK_EC, "SHA224", PAD_NONE, CKF_SIGN | CKF_VERIFY },
	{ CKM_ECDSA_SHA256, CKK_EC, "SHA256", PAD_NONE, CKF_SIGN | CKF_VERIFY },
	{ CKM_ECDSA_SHA384, CKK_EC, "SHA384", PAD_NONE, CKF_SIGN | CKF_VERIFY },
	{ CKM_ECDSA_SHA512, CKK_EC, "SHA512", PAD_NONE, CKF_SIGN | CKF_VERIFY },
	{ CKM_EDDSA, CKK_EC_EDWARDS, NULL, PAD_EDDSA, CKF_SIGN | CKF_VERIFY },
};

static const struct mech *mech_find(CK_MECHANISM_TYPE type)
{
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(mechs); i++) {
		if (mechs[i].type == type)
			return &mechs[i];
	}
	return NULL;
}

CK_RV p11_mechanism_list(CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
	CK_ULONG n = AK_ARRAY_SIZE(mechs), i;
	CK_RV rv = CKR_OK;

	if (list) {
		if (*count < n)
			rv = CKR_BUFFER_TOO_SMALL;
		else
			for (i = 0; i < n; i++)
				list[i] = mechs[i].type;
	}
	*count = n;
	return rv;
}

CK_RV p11_mechanism_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
	const struct mech *m = mech_find(type);

	if (!m)
		return CKR_MECHANISM_INVALID;
	memset(info, 0, sizeof(*info));
	/* Key sizes in bits (PKCS#11 2.40 section 2.1 for RSA: modulus bits;
	 * section 2.3: EC order bits; 3.0 section 2.3.1 for Ed25519), the
	 * sizes the broker releases (docs/protocol.md section 7). */
	switch (m->kt) {
	case CKK_RSA:
		info->ulMinKeySize = 2048;
		info->ulMaxKeySize = 4096;
		break;
	case CKK_EC:
		info->ulMinKeySize = 256;
		info->ulMaxKeySize = 521;
		info->flags = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
		break;
	default:
		info->ulMinKeySize = 255;
		info->ulMaxKeySize = 255;
		info->flags = CKF_EC_F_P | CKF_EC_NAMEDCURVE;
		break;
	}
	info->flags |= m->flags;
	return CKR_OK;
}

size_t p11_mechanisms_for_key(CK_KEY_TYPE kt, CK_MECHANISM_TYPE *out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < AK_ARRAY_SIZE(mechs); i++) {
		if (mechs[i].kt != kt)
			continue;
		if (out && n < max)
			out[n] = mechs[i].type;
		n++;
	}
	return n;
}

/* Digests fetched once from attestkey's own library context (pkey.h), so
 * no provider of the host application's ever sees the data. */
static const char *const md_names[] = { "SHA1", "SHA224", "SHA256", "SHA384", "SHA512" };
static EVP_MD *md_table[AK_ARRAY_SIZE(md_names)];
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_init(void)
{
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(md_names); i++)
		md_table[i] = EVP_MD_fetch(ak_libctx(), md_names[i], NULL);
}

static const EVP_MD *md_by_name(const char *name)
{
	size_t i;

	pthread_once(&md_once, md_init);
	for (i = 0; i < AK_ARRAY_SIZE(md_names); i++) {
		if (strcmp(md_names[i], name) == 0)
			return md_table[i];
	}
	return NULL;
}

/* CKM_SHA* / CKG_MGF1_SHA* to digests (PKCS#11 2.40 sections 2.1.7,
 * 2.1.8). SHA-1 stays accepted for PSS/OAEP parameters only. */
static const EVP_MD *md_from_ck(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1: return md_by_name("SHA1");
	case CKM_SHA224: return md_by_name("SHA224");
	case CKM_SHA256: return md_by_name("SHA256");
	case CKM_SHA384: return md_by_name("SHA384");
	case CKM_SHA512: return md_by_name("SHA512");
	default: return NULL;
	}
}

static const EVP_MD *md_from_mgf(CK_RSA_PKCS_MGF_TYPE mgf)
{
	switch (mgf) {
	case CKG_MGF1_SHA1: return md_by_name("SHA1");
	case CKG_MGF1_SHA224: return md_by_name("SHA224");
	case CKG_MGF1_SHA256: return md_by_name("SHA256");
	case CKG_MGF1_SHA384: return md_by_name("SHA384");
	case CKG_MGF1_SHA512: return md_by_name("SHA512");
	default: return NULL;
	}
}

void p11_op_reset(struct p11_op *op)
{
	EVP_MD_CTX_free(op->mdctx);
	EVP_PKEY_free(op->pkey);
	ak_privkey_unref(op->priv);
	if (op->buf)
		OPENSSL_clear_free(op->buf, op->buf_len);
	free(op->label);
	memset(op, 0, sizeof(*op));
}

/* Order of the checks, as SoftHSM and the spec's error lists suggest:
 * handle (section 5.11/5.9: CKR_KEY_HANDLE_INVALID), the key's usage
 * attribute (CKA_SIGN/CKA_DECRYPT false: CKR_KEY_FUNCTION_NOT_PERMITTED),
 * the mechanism's function (CKR_MECHANISM_INVALID), the key type
 * (CKR_KEY_TYPE_INCONSISTENT), then CKA_ALLOWED_MECHANISMS (2.40 section
 * 4.7: CKR_MECHANISM_INVALID). */
static CK_RV check_key(const struct mech *m, const struct p11_object *key, CK_FLAGS want)
{
	CK_OBJECT_CLASS klass = want == CKF_VERIFY ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;

	if (!key || (key->klass != CKO_PRIVATE_KEY && key->klass != CKO_PUBLIC_KEY))
		return CKR_KEY_HANDLE_INVALID;
	/* public keys: CKA_SIGN/CKA_DECRYPT false; private keys have no
	 * CKA_VERIFY (2.40 sections 4.8, 4.9) */
	if (key->klass != klass || !key->pkey || (klass == CKO_PRIVATE_KEY && !key->priv))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (want == CKF_DECRYPT && key->key_type != CKK_RSA)
		return CKR_KEY_FUNCTION_NOT_PERMITTED; /* CKA_DECRYPT false */
	if (!(m->flags & want))
		return CKR_MECHANISM_INVALID;
	if (key->key_type != m->kt)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!p11_object_allows(key, m->type))
		return CKR_MECHANISM_INVALID;
	return CKR_OK;
}

static CK_RV pss_params(struct p11_op *op, const struct mech *m, const CK_MECHANISM *mech)
{
	const CK_RSA_PKCS_PSS_PARAMS *pp = mech->pParameter;

	if (!pp || mech->ulParameterLen != sizeof(*pp))
		return CKR_MECHANISM_PARAM_INVALID;
	op->md = md_from_ck(pp->hashAlg);
	op->mgf1 = md_from_mgf(pp->mgf);
	if (!op->md || !op->mgf1 || pp->sLen > 1024)
		return CKR_MECHANISM_PARAM_INVALID;
	/* section 2.1.10: hashAlg must match the mechanism's own hash */
	if (m->md && !EVP_MD_is_a(op->md, m->md))
		return CKR_MECHANISM_PARAM_INVALID;
	op->saltlen = (int)pp->sLen;
	return CKR_OK;
}

static int set_rsa_padding(EVP_PKEY_CTX *pctx, const struct p11_op *op, enum pad pad)
{
	switch (pad) {
	case PAD_PKCS1:
		return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
	case PAD_X509:
		return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_NO_PADDING) > 0;
	case PAD_PSS:
		return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, op->mgf1) > 0 &&
		       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, op->saltlen) > 0;
	case PAD_OAEP:
		return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
		       EVP_PKEY_CTX_set_rsa_oaep_md(pctx, op->md) > 0 &&
		       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, op->mgf1) > 0;
	default:
		return 1;
	}
}

/* PKCS#11 3.0 current mechanisms section 2.3.14: CK_EDDSA_PARAMS is optional;
 * Ed25519 is the pure variant only (no prehash, no context: that would be
 * Ed25519ph / Ed25519ctx, RFC 8032 section 5.1). */
static CK_RV eddsa_params(const CK_MECHANISM *mech)
{
	const CK_EDDSA_PARAMS *ep = mech->pParameter;

	if (!mech->pParameter && !mech->ulParameterLen)
		return CKR_OK;
	if (!ep || mech->ulParameterLen != sizeof(*ep) || ep->phFlag || ep->ulContextDataLen)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

static CK_RV sig_init(struct p11_op *op, const CK_MECHANISM *mech, const struct p11_object *key,
		      bool verify)
{
	const struct mech *m = mech_find(mech->mechanism);
	EVP_PKEY_CTX *pctx = NULL;
	CK_RV rv;

	if (!m)
		return CKR_MECHANISM_INVALID;
	rv = check_key(m, key, verify ? CKF_VERIFY : CKF_SIGN);
	if (rv != CKR_OK)
		return rv;
	memset(op, 0, sizeof(*op));
	op->kind = verify ? P11_OP_VERIFY : P11_OP_SIGN;
	op->mech = m->type;
	if (m->pad == PAD_PSS) {
		rv = pss_params(op, m, mech);
		if (rv != CKR_OK)
			goto out;
	} else if (m->pad == PAD_EDDSA) {
		rv = eddsa_params(mech);
		if (rv != CKR_OK)
			goto out;
	} else if (mech->pParameter && mech->ulParameterLen) {
		/* these mechanisms have no parameter (2.40 sections 2.1, 2.3) */
		rv = CKR_MECHANISM_PARAM_INVALID;
		goto out;
	}
	if (!EVP_PKEY_up_ref(key->pkey)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	op->pkey = key->pkey;
	op->priv = verify ? NULL : ak_privkey_ref(key->priv);
	op->key_type = key->key_type;
	if (m->md && !verify) {
		/* Signing hashes here and signs the digest with the key's own
		 * low-level object at SignFinal (pkey.h: no EVP_PKEY_CTX, so
		 * no ENGINE, no export, no copy). */
		const EVP_MD *md = md_by_name(m->md);

		if (m->pad != PAD_PSS)
			op->md = md;
		op->mdctx = EVP_MD_CTX_new();
		if (!md || !op->mdctx || !EVP_DigestInit_ex(op->mdctx, md, NULL)) {
			ak_log_openssl(AK_LOG_ERR, "cannot start a signature");
			rv = CKR_FUNCTION_FAILED;
			goto out;
		}
	} else if (m->md) {
		op->mdctx = EVP_MD_CTX_new();
		if (!op->mdctx ||
		    !EVP_DigestVerifyInit_ex(op->mdctx, &pctx, m->md, ak_libctx(), NULL, op->pkey,
					     NULL) ||
		    (m->kt == CKK_RSA && !set_rsa_padding(pctx, op, m->pad))) {
			ak_log_openssl(AK_LOG_ERR, "cannot start a signature");
			rv = CKR_FUNCTION_FAILED;
			goto out;
		}
	}
	rv = CKR_OK;
out:
	if (rv != CKR_OK)
		p11_op_reset(op);
	return rv;
}

CK_RV p11_sign_init(struct p11_op *op, const CK_MECHANISM *mech, const struct p11_object *key)
{
	return sig_init(op, mech, key, false);
}

CK_RV p11_verify_init(struct p11_op *op, const CK_MECHANISM *mech, const struct p11_object *key)
{
	return sig_init(op, mech, key, true);
}

CK_ULONG p11_sign_length(const struct p11_op *op)
{
	if (op->key_type == CKK_EC_EDWARDS)
		return 64; /* RFC 8032 section 5.1.6: R || S */
	if (op->key_type == CKK_EC)
		return 2 * (CK_ULONG)((EVP_PKEY_get_bits(op->pkey) + 7) / 8); /* r || s */
	return (CK_ULONG)EVP_PKEY_get_size(op->pkey);
}

CK_RV p11_sign_update(struct p11_op *op, const uint8_t *data, size_t len)
{
	uint8_t *nb;

	op->multipart = true;
	if (op->mdctx) {
		int ok = op->kind == P11_OP_VERIFY ? EVP_DigestVerifyUpdate(op->mdctx, data, len)
						   : EVP_DigestUpdate(op->mdctx, data, len);

		return ok ? CKR_OK : CKR_FUNCTION_FAILED;
	}
	if (len > (op->mech == CKM_EDDSA ? EDDSA_INPUT_MAX : RAW_INPUT_MAX) - op->buf_len)
		return CKR_DATA_LEN_RANGE;
	nb = OPENSSL_malloc(op->buf_len + len + 1);
	if (!nb)
		return CKR_HOST_MEMORY;
	if (op->buf_len)
		memcpy(nb, op->buf, op->buf_len);
	if (len)
		memcpy(nb + op->buf_len, data, len);
	if (op->buf)
		OPENSSL_clear_free(op->buf, op->buf_len);
	op->buf = nb;
	op->buf_len += len;
	return CKR_OK;
}

/*
 * The private operations run on the key's own low-level object (pkey.h):
 * RSA_PKCS1_OpenSSL() and EC_KEY_OpenSSL() with the private numbers in the
 * secure heap, Ed25519 in attestkey's library context. No EVP_PKEY_CTX is
 * made for a private key, so no ENGINE or provider of the host's is
 * consulted and OpenSSL never exports the key to another representation.
 */
static CK_RV rsa_sign(const struct p11_op *op, const struct mech *m, const uint8_t *in,
		      size_t in_len, uint8_t *out, size_t *out_len)
{
	RSA *rsa = op->priv->rsa;
	int k = RSA_size(rsa), r = -1;
	unsigned int sl = 0;
	uint8_t *em = NULL;

	if (*out_len < (size_t)k)
		return CKR_FUNCTION_FAILED;
	switch (m->pad) {
	case PAD_PKCS1:
		if (m->md) /* RSA_sign builds the DigestInfo (RFC 8017 section 9.2) */
			r = RSA_sign(EVP_MD_get_type(op->md), in, (unsigned int)in_len, out, &sl,
				     rsa) == 1 ? (int)sl : -1;
		else
			r = RSA_private_encrypt((int)in_len, in, out, rsa, RSA_PKCS1_PADDING);
		break;
	case PAD_X509:
		r = RSA_private_encrypt((int)in_len, in, out, rsa, RSA_NO_PADDING);
		break;
	case PAD_PSS:
		em = OPENSSL_malloc((size_t)k);
		if (em && RSA_padding_add_PKCS1_PSS_mgf1(rsa, em, in, op->md, op->mgf1, op->saltlen))
			r = RSA_private_encrypt(k, em, out, rsa, RSA_NO_PADDING);
		break;
	default:
		break;
	}
	OPENSSL_clear_free(em, (size_t)k);
	if (r < 0)
		return m->pad == PAD_X509 ? CKR_DATA_INVALID : CKR_FUNCTION_FAILED;
	*out_len = (size_t)r;
	return CKR_OK;
}

/* PKCS#11 2.40 section 2.3.1: an ECDSA signature is r || s, each as long
 * as the group order. */
static CK_RV ecdsa_sign(const struct p11_op *op, const uint8_t *in, size_t in_len, uint8_t *out,
			size_t *out_len)
{
	ECDSA_SIG *sig = ECDSA_do_sign(in, (int)in_len, op->priv->ec);
	size_t half = (size_t)p11_sign_length(op) / 2;
	const BIGNUM *r, *s;
	CK_RV rv = CKR_FUNCTION_FAILED;

	if (sig && *out_len >= 2 * half) {
		ECDSA_SIG_get0(sig, &r, &s);
		if (BN_bn2binpad(r, out, (int)half) > 0 && BN_bn2binpad(s, out + half, (int)half) > 0) {
			*out_len = 2 * half;
			rv = CKR_OK;
		}
	}
	ECDSA_SIG_free(sig);
	return rv;
}

static CK_RV eddsa_sign(const struct p11_op *op, const uint8_t *in, size_t in_len, uint8_t *out,
			size_t *out_len)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	CK_RV rv = CKR_FUNCTION_FAILED;

	/* one-shot: OpenSSL has no streaming Ed25519 */
	if (mctx &&
	    EVP_DigestSignInit_ex(mctx, NULL, NULL, ak_libctx(), NULL, op->priv->ed, NULL) == 1 &&
	    EVP_DigestSign(mctx, out, out_len, in, in_len) == 1)
		rv = CKR_OK;
	EVP_MD_CTX_free(mctx);
	return rv;
}

static CK_RV priv_sign(const struct p11_op *op, const struct mech *m, const uint8_t *in,
		       size_t in_len, uint8_t *out, size_t *out_len)
{
	switch (op->key_type) {
	case CKK_EC_EDWARDS:
		return eddsa_sign(op, in, in_len, out, out_len);
	case CKK_EC:
		return ecdsa_sign(op, in, in_len, out, out_len);
	default:
		return rsa_sign(op, m, in, in_len, out, out_len);
	}
}

/* Raw mechanisms: check the collected input, then sign it. */
static CK_RV raw_sign(struct p11_op *op, uint8_t *out, size_t *out_len)
{
	const struct mech *m = mech_find(op->mech);
	const uint8_t *in = op->buf ? op->buf : (const uint8_t *)"";
	uint8_t *padded = NULL;
	size_t in_len = op->buf_len, k = (size_t)EVP_PKEY_get_size(op->pkey);
	CK_RV rv;

	switch (m->pad) {
	case PAD_EDDSA:
		break;
	case PAD_PKCS1:
		/* section 2.1.6: at most k - 11 bytes (the DigestInfo) */
		if (in_len > k - 11)
			return CKR_DATA_LEN_RANGE;
		break;
	case PAD_X509:
		/* section 2.1.11: shorter input is taken as zero-padded on the left */
		if (in_len > k)
			return CKR_DATA_LEN_RANGE;
		padded = OPENSSL_zalloc(k);
		if (!padded)
			return CKR_HOST_MEMORY;
		if (in_len)
			memcpy(padded + k - in_len, in, in_len);
		in = padded;
		in_len = k;
		break;
	case PAD_PSS:
		/* section 2.1.14: the input is the hash itself */
		if (in_len != (size_t)EVP_MD_get_size(op->md))
			return CKR_DATA_LEN_RANGE;
		break;
	default:
		if (in_len == 0)
			return CKR_DATA_LEN_RANGE;
		break;
	}
	rv = priv_sign(op, m, in, in_len, out, out_len);
	if (padded)
		OPENSSL_clear_free(padded, k);
	return rv;
}

CK_RV p11_sign_final(struct p11_op *op, uint8_t *sig, CK_ULONG *sig_len, bool *done)
{
	CK_ULONG need = p11_sign_length(op);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	size_t len = need;
	CK_RV rv;

	*done = false;
	if (!sig) {
		*sig_len = need;
		return CKR_OK;
	}
	if (*sig_len < need) {
		*sig_len = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	*done = true;
	if (op->mdctx)
		rv = EVP_DigestFinal_ex(op->mdctx, md, &md_len)
			     ? priv_sign(op, mech_find(op->mech), md, md_len, sig, &len)
			     : CKR_FUNCTION_FAILED;
	else
		rv = raw_sign(op, sig, &len);
	if (rv == CKR_FUNCTION_FAILED)
		ak_log_openssl(AK_LOG_ERR, "signing failed");
	ERR_clear_error();
	if (rv == CKR_OK)
		*sig_len = len;
	return rv;
}

CK_RV p11_decrypt_init(struct p11_op *op, const CK_MECHANISM *mech,
		       const struct p11_object *key)
{
	const struct mech *m = mech_find(mech->mechanism);
	CK_RV rv;

	if (!m)
		return CKR_MECHANISM_INVALID;
	rv = check_key(m, key, CKF_DECRYPT);
	if (rv != CKR_OK)
		return rv;
	memset(op, 0, sizeof(*op));
	op->kind = P11_OP_DECRYPT;
	op->mech = m->type;
	if (m->pad == PAD_OAEP) {
		const CK_RSA_PKCS_OAEP_PARAMS *pp = mech->pParameter;

		/* section 2.1.8 */
		if (!pp || mech->ulParameterLen != sizeof(*pp)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			goto out;
		}
		op->md = md_from_ck(pp->hashAlg);
		op->mgf1 = md_from_mgf(pp->mgf);
		if (!op->md || !op->mgf1 ||
		    (pp->source != 0 && pp->source != CKZ_DATA_SPECIFIED) ||
		    (pp->ulSourceDataLen && !pp->pSourceData)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			goto out;
		}
		if (pp->ulSourceDataLen) {
			op->label = malloc(pp->ulSourceDataLen);
			if (!op->label) {
				rv = CKR_HOST_MEMORY;
				goto out;
			}
			memcpy(op->label, pp->pSourceData, pp->ulSourceDataLen);
			op->label_len = pp->ulSourceDataLen;
		}
	} else if (mech->pParameter && mech->ulParameterLen) {
		rv = CKR_MECHANISM_PARAM_INVALID;
		goto out;
	}
	if (!EVP_PKEY_up_ref(key->pkey)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	op->pkey = key->pkey;
	op->priv = ak_privkey_ref(key->priv);
	op->key_type = key->key_type;
	rv = CKR_OK;
out:
	if (rv != CKR_OK)
		p11_op_reset(op);
	return rv;
}

CK_RV p11_decrypt(struct p11_op *op, const uint8_t *in, size_t in_len, uint8_t *out,
		  CK_ULONG *out_len, bool *done)
{
	const struct mech *m = mech_find(op->mech);
	RSA *rsa = op->priv->rsa;
	size_t k = (size_t)RSA_size(rsa), len;
	uint8_t *pt = NULL, *em = NULL;
	int r = -1;
	CK_RV rv = CKR_FUNCTION_FAILED;

	*done = true;
	if (in_len != k) {
		rv = CKR_ENCRYPTED_DATA_LEN_RANGE;
		goto out;
	}
	/* The plaintext (a TLS secret, say) stays in the secure heap until it is
	 * copied to the caller. The length is exact, so a size query decrypts
	 * and discards. */
	pt = OPENSSL_secure_malloc(k);
	em = m->pad == PAD_OAEP ? OPENSSL_secure_malloc(k) : NULL;
	if (!pt || (m->pad == PAD_OAEP && !em)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	switch (m->pad) {
	case PAD_PKCS1:
		r = RSA_private_decrypt((int)in_len, in, pt, rsa, RSA_PKCS1_PADDING);
		break;
	case PAD_X509:
		r = RSA_private_decrypt((int)in_len, in, pt, rsa, RSA_NO_PADDING);
		break;
	case PAD_OAEP:
		/* as OpenSSL's own provider does it: the raw block, then the
		 * constant-time OAEP check with any hash and label */
		r = RSA_private_decrypt((int)in_len, in, em, rsa, RSA_NO_PADDING);
		if (r > 0)
			r = RSA_padding_check_PKCS1_OAEP_mgf1(pt, (int)k, em, r, (int)k, op->label,
							      (int)op->label_len, op->md, op->mgf1);
		break;
	default:
		break;
	}
	ERR_clear_error();
	if (r < 0) {
		rv = CKR_ENCRYPTED_DATA_INVALID;
		goto out;
	}
	len = (size_t)r;
	if (!out) {
		*done = false;
		*out_len = len;
		rv = CKR_OK;
		goto out;
	}
	if (*out_len < len) {
		*done = false;
		*out_len = len;
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	memcpy(out, pt, len);
	*out_len = len;
	rv = CKR_OK;
out:
	if (pt)
		OPENSSL_secure_clear_free(pt, k);
	if (em)
		OPENSSL_secure_clear_free(em, k);
	return rv;
}

/* PKCS#11 r || s back to the DER OpenSSL verifies. */
static uint8_t *ecdsa_raw_to_der(const uint8_t *sig, size_t len, int *der_len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)(len / 2), NULL), *s = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
	uint8_t *der = NULL;

	*der_len = 0;
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	*der_len = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	return *der_len > 0 ? der : NULL;
}

/* Raw mechanisms: check the collected input against the signature. */
static int raw_verify(struct p11_op *op, const struct mech *m, const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	size_t k = (size_t)EVP_PKEY_get_size(op->pkey), len = k;
	const uint8_t *in = op->buf ? op->buf : (const uint8_t *)"";
	uint8_t *rec = NULL;
	int ok = 0;

	if (m->pad == PAD_EDDSA) {
		mctx = EVP_MD_CTX_new();
		ok = mctx && EVP_DigestVerifyInit_ex(mctx, NULL, NULL, ak_libctx(), NULL, op->pkey, NULL) == 1 &&
		     EVP_DigestVerify(mctx, sig, sig_len, in, op->buf_len) == 1;
		goto out;
	}
	pctx = EVP_PKEY_CTX_new_from_pkey(ak_libctx(), op->pkey, NULL);
	if (m->pad == PAD_X509) {
		/* section 2.1.11: recover and compare, input zero-padded left */
		rec = OPENSSL_zalloc(k);
		ok = rec && pctx && op->buf_len <= k && EVP_PKEY_verify_recover_init(pctx) > 0 &&
		     set_rsa_padding(pctx, op, m->pad) &&
		     EVP_PKEY_verify_recover(pctx, rec, &len, sig, sig_len) > 0 && len == k &&
		     CRYPTO_memcmp(rec + k - op->buf_len, in, op->buf_len) == 0;
		for (size_t i = 0; ok && i < k - op->buf_len; i++)
			ok = rec[i] == 0;
		goto out;
	}
	ok = pctx && EVP_PKEY_verify_init(pctx) > 0 &&
	     (m->kt != CKK_RSA || set_rsa_padding(pctx, op, m->pad)) &&
	     (m->pad != PAD_PSS || EVP_PKEY_CTX_set_signature_md(pctx, op->md) > 0) &&
	     EVP_PKEY_verify(pctx, sig, sig_len, in, op->buf_len) == 1;
out:
	OPENSSL_free(rec);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	ERR_clear_error();
	return ok;
}

CK_RV p11_verify_final(struct p11_op *op, const uint8_t *sig, size_t sig_len)
{
	const struct mech *m = mech_find(op->mech);
	uint8_t *der = NULL;
	int der_len = 0, ok;

	/* section 5.13, C_Verify: a signature of the wrong length */
	if (sig_len != p11_sign_length(op))
		return CKR_SIGNATURE_LEN_RANGE;
	if (m->kt == CKK_EC) {
		der = ecdsa_raw_to_der(sig, sig_len, &der_len);
		if (!der)
			return CKR_SIGNATURE_INVALID;
		sig = der;
		sig_len = (size_t)der_len;
	}
	if (op->mdctx) {
		ok = EVP_DigestVerifyFinal(op->mdctx, sig, sig_len) == 1;
		ERR_clear_error();
	} else if (m->pad == PAD_PSS && op->buf_len != (size_t)EVP_MD_get_size(op->md)) {
		OPENSSL_free(der);
		return CKR_DATA_LEN_RANGE;
	} else {
		ok = raw_verify(op, m, sig, sig_len);
	}
	OPENSSL_free(der);
	return ok ? CKR_OK : CKR_SIGNATURE_INVALID;
}
