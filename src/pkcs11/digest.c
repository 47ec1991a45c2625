/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operations that need no secret: message digests (C_Digest*, PKCS#11 3.0
 * base section 5.12; CKM_SHA_1 and CKM_SHA224 ... CKM_SHA512, mechanisms
 * sections 2.20-2.25) and encryption with an RSA public-key object
 * (C_Encrypt, base section 5.8; CKM_RSA_PKCS and CKM_RSA_PKCS_OAEP,
 * mechanisms sections 2.1.6 and 2.1.8). Each has its own state in the
 * session, beside the sign/verify/decrypt operation of crypto.c.
 *
 * OpenSSL is reached only through EVP calls in the module's own library
 * context (ak_libctx(), attestkey/pkey.h), never the host application's
 * providers, engines or openssl.cnf (issue 8 items 1 and 19).
 */
#include "config.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "attestkey/pkey.h"
#include "p11.h"

static const struct digest {
	CK_MECHANISM_TYPE mech;     /* CKM_SHA* */
	CK_RSA_PKCS_MGF_TYPE mgf;   /* its CKG_MGF1_SHA* */
	const char *name;           /* OpenSSL's */
	size_t len;
} digests[] = {
	{ CKM_SHA_1, CKG_MGF1_SHA1, "SHA1", 20 },
	{ CKM_SHA224, CKG_MGF1_SHA224, "SHA224", 28 },
	{ CKM_SHA256, CKG_MGF1_SHA256, "SHA256", 32 },
	{ CKM_SHA384, CKG_MGF1_SHA384, "SHA384", 48 },
	{ CKM_SHA512, CKG_MGF1_SHA512, "SHA512", 64 },
};

/* The digest of a CKM_SHA* mechanism (mgf false) or of a CKG_MGF1_SHA*
 * generator (mgf true); NULL if none. */
static const struct digest *digest_find(CK_ULONG v, bool mgf)
{
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(digests); i++) {
		if ((mgf ? digests[i].mgf : digests[i].mech) == v)
			return &digests[i];
	}
	return NULL;
}

/* ---- mechanisms --------------------------------------------------------- */

size_t p11_digest_mechanisms(CK_MECHANISM_TYPE *out, size_t max)
{
	size_t i;

	for (i = 0; out && i < AK_ARRAY_SIZE(digests) && i < max; i++)
		out[i] = digests[i].mech;
	return AK_ARRAY_SIZE(digests);
}

bool p11_digest_mechanism_info(CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info)
{
	if (!digest_find(mech, false))
		return false;
	memset(info, 0, sizeof(*info)); /* no key: sizes 0 */
	info->flags = CKF_DIGEST;
	return true;
}

CK_FLAGS p11_encrypt_mechanism_flags(CK_MECHANISM_TYPE mech)
{
	return mech == CKM_RSA_PKCS || mech == CKM_RSA_PKCS_OAEP ? CKF_ENCRYPT : 0;
}

/* ---- digests ------------------------------------------------------------ */

void p11_digest_reset(struct p11_digest *d)
{
	EVP_MD_CTX_free(d->ctx);
	EVP_MD_free(d->md);
	memset(d, 0, sizeof(*d));
}

CK_RV p11_digest_init(struct p11_digest *d, const CK_MECHANISM *mech)
{
	const struct digest *dg = digest_find(mech->mechanism, false);

	if (!dg)
		return CKR_MECHANISM_INVALID;
	if (mech->pParameter || mech->ulParameterLen)
		return CKR_MECHANISM_PARAM_INVALID; /* the SHA mechanisms have none */
	d->md = EVP_MD_fetch(ak_libctx(), dg->name, NULL);
	d->ctx = EVP_MD_CTX_new();
	if (!d->md || !d->ctx || EVP_DigestInit_ex2(d->ctx, d->md, NULL) != 1) {
		ERR_clear_error();
		p11_digest_reset(d);
		return CKR_FUNCTION_FAILED;
	}
	d->len = dg->len;
	d->active = true;
	return CKR_OK;
}

CK_RV p11_digest_update(struct p11_digest *d, const uint8_t *data, size_t len)
{
	d->multipart = true;
	if (len && EVP_DigestUpdate(d->ctx, data, len) != 1) {
		ERR_clear_error();
		return CKR_FUNCTION_FAILED;
	}
	return CKR_OK;
}

CK_RV p11_digest_final(struct p11_digest *d, uint8_t *out, CK_ULONG *out_len, bool *done)
{
	unsigned int n = 0;

	*done = false;
	if (!out || *out_len < d->len) {
		CK_RV rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;

		*out_len = d->len;
		return rv;
	}
	*done = true;
	if (EVP_DigestFinal_ex(d->ctx, out, &n) != 1) {
		ERR_clear_error();
		return CKR_FUNCTION_FAILED;
	}
	*out_len = n;
	return CKR_OK;
}

/* ---- encryption with RSA public keys ------------------------------------ */

void p11_encrypt_reset(struct p11_encrypt *e)
{
	EVP_PKEY_CTX_free(e->ctx);
	memset(e, 0, sizeof(*e));
}

/* A template value of an object's attribute that is a CK_BBOOL. */
static bool object_flag(const struct p11_object *o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	return p11_object_get_attrs(o, &a, 1) == CKR_OK && v == CK_TRUE;
}

/* CK_RSA_PKCS_OAEP_PARAMS (mechanisms section 2.1.8) onto ctx; sets the
 * data limit k - 2 hLen - 2. */
static CK_RV oaep_params(struct p11_encrypt *e, const CK_MECHANISM *mech, size_t k)
{
	const CK_RSA_PKCS_OAEP_PARAMS *p = mech->pParameter;
	const struct digest *hash, *mgf;
	unsigned char *label = NULL;

	if (!p || mech->ulParameterLen != sizeof(*p))
		return CKR_MECHANISM_PARAM_INVALID;
	hash = digest_find(p->hashAlg, false);
	mgf = digest_find(p->mgf, true);
	if (!hash || !mgf || (p->source != 0 && p->source != CKZ_DATA_SPECIFIED) ||
	    (p->ulSourceDataLen && (!p->pSourceData || p->source != CKZ_DATA_SPECIFIED)))
		return CKR_MECHANISM_PARAM_INVALID;
	if (k < 2 * hash->len + 2)
		return CKR_KEY_SIZE_RANGE;
	e->max_in = k - 2 * hash->len - 2;
	if (p->ulSourceDataLen && !(label = OPENSSL_memdup(p->pSourceData, p->ulSourceDataLen)))
		return CKR_HOST_MEMORY;
	if (EVP_PKEY_CTX_set_rsa_padding(e->ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(e->ctx, hash->name, NULL) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(e->ctx, mgf->name, NULL) <= 0 ||
	    (label && EVP_PKEY_CTX_set0_rsa_oaep_label(e->ctx, label,
						       (int)p->ulSourceDataLen) <= 0)) {
		OPENSSL_free(label);
		return CKR_FUNCTION_FAILED;
	}
	return CKR_OK;
}

/*
 * The checks in the order of crypto.c's check_key: the handle names a key
 * (CKR_KEY_HANDLE_INVALID), a public key with CKA_ENCRYPT true
 * (CKR_KEY_FUNCTION_NOT_PERMITTED), a mechanism that encrypts
 * (CKR_MECHANISM_INVALID), an RSA key (CKR_KEY_TYPE_INCONSISTENT), and
 * CKA_ALLOWED_MECHANISMS (CKR_MECHANISM_INVALID).
 */
CK_RV p11_encrypt_init(struct p11_encrypt *e, const CK_MECHANISM *mech,
		       const struct p11_object *key)
{
	int bits;
	CK_RV rv;

	if (!key || (key->klass != CKO_PRIVATE_KEY && key->klass != CKO_PUBLIC_KEY))
		return CKR_KEY_HANDLE_INVALID;
	if (key->klass != CKO_PUBLIC_KEY || !key->pkey || !object_flag(key, CKA_ENCRYPT))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!p11_encrypt_mechanism_flags(mech->mechanism))
		return CKR_MECHANISM_INVALID;
	if (key->key_type != CKK_RSA)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!p11_object_allows(key, mech->mechanism))
		return CKR_MECHANISM_INVALID;
	if (mech->mechanism == CKM_RSA_PKCS && (mech->pParameter || mech->ulParameterLen))
		return CKR_MECHANISM_PARAM_INVALID;
	bits = EVP_PKEY_get_bits(key->pkey);
	e->ctx = EVP_PKEY_CTX_new_from_pkey(ak_libctx(), key->pkey, NULL);
	if (bits <= 0 || !e->ctx || EVP_PKEY_encrypt_init(e->ctx) <= 0) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	e->out_len = ((CK_ULONG)bits + 7) / 8;
	if (mech->mechanism == CKM_RSA_PKCS_OAEP) {
		rv = oaep_params(e, mech, e->out_len);
	} else {
		e->max_in = e->out_len - 11; /* section 2.1.6: k - 11 */
		rv = EVP_PKEY_CTX_set_rsa_padding(e->ctx, RSA_PKCS1_PADDING) > 0
			     ? CKR_OK
			     : CKR_FUNCTION_FAILED;
	}
out:
	ERR_clear_error();
	if (rv != CKR_OK)
		p11_encrypt_reset(e);
	else
		e->active = true;
	return rv;
}

CK_RV p11_encrypt(struct p11_encrypt *e, const uint8_t *in, size_t in_len, uint8_t *out,
		  CK_ULONG *out_len, bool *done)
{
	size_t n = e->out_len;

	*done = false;
	/* the size query first: base section 5.2, the data is not consumed */
	if (!out || *out_len < e->out_len) {
		CK_RV rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;

		*out_len = e->out_len;
		return rv;
	}
	*done = true;
	if (in_len > e->max_in)
		return CKR_DATA_LEN_RANGE;
	if (EVP_PKEY_encrypt(e->ctx, out, &n, in, in_len) <= 0) {
		ERR_clear_error();
		return CKR_FUNCTION_FAILED;
	}
	*out_len = n;
	return CKR_OK;
}
