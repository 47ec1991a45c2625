/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Objects as attribute arrays (STYLE.md item 7, after p11-kit's attrs.c):
 * each released key becomes a private-key object, a public-key object and,
 * when the broker sent one, a certificate object. Which attribute is
 * sensitive lives in one static table; secret values are never stored in an
 * attribute array at all, only in the EVP_PKEY (OpenSSL secure heap).
 */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "p11.h"

/* Handles start at a non-trivial base and never repeat within a process, so
 * a stale or zero handle never names a live object (STYLE.md item 8). */
#define OBJECT_HANDLE_BASE 0x0A770000UL
static CK_OBJECT_HANDLE next_handle = OBJECT_HANDLE_BASE;
static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * PKCS#11 2.40 section 4.9 (private key objects), table 24 footnote 6
 * and 4.9.1 ff.: with CKA_SENSITIVE true these attributes cannot be
 * revealed; C_GetAttributeValue answers CKR_ATTRIBUTE_SENSITIVE
 * (section 5.7). They exist on our private keys but are never stored.
 */
static const struct {
	CK_OBJECT_CLASS klass;
	CK_ATTRIBUTE_TYPE type;
} sensitive_attrs[] = {
	{ CKO_PRIVATE_KEY, CKA_VALUE },            /* EC private value */
	{ CKO_PRIVATE_KEY, CKA_PRIVATE_EXPONENT }, /* RSA d */
	{ CKO_PRIVATE_KEY, CKA_PRIME_1 },
	{ CKO_PRIVATE_KEY, CKA_PRIME_2 },
	{ CKO_PRIVATE_KEY, CKA_EXPONENT_1 },
	{ CKO_PRIVATE_KEY, CKA_EXPONENT_2 },
	{ CKO_PRIVATE_KEY, CKA_COEFFICIENT },
};

static bool attr_is_sensitive(CK_OBJECT_CLASS klass, CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < AK_ARRAY_SIZE(sensitive_attrs); i++) {
		if (sensitive_attrs[i].klass == klass && sensitive_attrs[i].type == type)
			return true;
	}
	return false;
}

static CK_OBJECT_HANDLE new_handle(void)
{
	CK_OBJECT_HANDLE h;

	pthread_mutex_lock(&handle_lock);
	h = next_handle++;
	if (next_handle < OBJECT_HANDLE_BASE) /* wrapped: skip 0 and low values */
		next_handle = OBJECT_HANDLE_BASE;
	pthread_mutex_unlock(&handle_lock);
	return h;
}

/* ---- building ---------------------------------------------------------- */

struct builder {
	struct p11_object *o;
	bool failed;
};

static void add(struct builder *b, CK_ATTRIBUTE_TYPE type, const void *val, size_t len)
{
	CK_ATTRIBUTE *na;
	void *copy = NULL;

	if (b->failed)
		return;
	if (len) {
		copy = malloc(len);
		if (!copy)
			goto fail;
		memcpy(copy, val, len);
	}
	na = realloc(b->o->attrs, (b->o->n_attrs + 1) * sizeof(*na));
	if (!na) {
		free(copy);
		goto fail;
	}
	b->o->attrs = na;
	na[b->o->n_attrs].type = type;
	na[b->o->n_attrs].pValue = copy;
	na[b->o->n_attrs].ulValueLen = len;
	b->o->n_attrs++;
	return;
fail:
	b->failed = true;
}

static void add_bool(struct builder *b, CK_ATTRIBUTE_TYPE type, bool v)
{
	CK_BBOOL bb = v ? CK_TRUE : CK_FALSE;

	add(b, type, &bb, sizeof(bb));
}

static void add_ulong(struct builder *b, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	add(b, type, &v, sizeof(v));
}

static void add_str(struct builder *b, CK_ATTRIBUTE_TYPE type, const char *s)
{
	add(b, type, s, s ? strlen(s) : 0);
}

static void add_bn(struct builder *b, CK_ATTRIBUTE_TYPE type, const EVP_PKEY *pkey,
		   const char *param)
{
	BIGNUM *bn = NULL;
	uint8_t *buf = NULL;
	int n;

	if (b->failed)
		return;
	if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
		goto fail;
	n = BN_num_bytes(bn);
	buf = malloc(n ? (size_t)n : 1);
	if (!buf)
		goto fail;
	BN_bn2bin(bn, buf);
	add(b, type, buf, (size_t)n);
	free(buf);
	BN_free(bn);
	return;
fail:
	BN_free(bn);
	b->failed = true;
}

static void add_der(struct builder *b, CK_ATTRIBUTE_TYPE type, uint8_t *der, int len)
{
	if (len <= 0 || !der)
		b->failed = true;
	else
		add(b, type, der, (size_t)len);
	OPENSSL_free(der);
}

/* CKA_EC_PARAMS: DER of the named curve's OID (PKCS#11 2.40 section 2.3.3,
 * "ecParameters" namedCurve choice). */
static void add_ec_params(struct builder *b, const EVP_PKEY *pkey)
{
	char group[64];
	ASN1_OBJECT *obj;
	uint8_t *der = NULL;
	int nid, len;

	if (b->failed)
		return;
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
					    sizeof(group), NULL)) {
		b->failed = true;
		return;
	}
	nid = OBJ_txt2nid(group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(group);
	obj = nid == NID_undef ? NULL : OBJ_nid2obj(nid);
	if (!obj) {
		b->failed = true;
		return;
	}
	len = i2d_ASN1_OBJECT(obj, &der);
	add_der(b, CKA_EC_PARAMS, der, len);
}

/* CKA_EC_POINT: DER OCTET STRING of the uncompressed point (ANSI X9.62),
 * the encoding PKCS#11 2.40 section 2.3.3 and libp11/OpenSC expect. */
static void add_ec_point(struct builder *b, const EVP_PKEY *pkey)
{
	uint8_t pt[256];
	size_t ptlen = 0;
	ASN1_OCTET_STRING *os = NULL;
	uint8_t *der = NULL;
	int len;

	if (b->failed)
		return;
	if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
					     sizeof(pt), &ptlen) ||
	    !(os = ASN1_OCTET_STRING_new()) || !ASN1_OCTET_STRING_set(os, pt, (int)ptlen)) {
		ASN1_OCTET_STRING_free(os);
		b->failed = true;
		return;
	}
	len = i2d_ASN1_OCTET_STRING(os, &der);
	ASN1_OCTET_STRING_free(os);
	add_der(b, CKA_EC_POINT, der, len);
}

static void add_key_common(struct builder *b, CK_OBJECT_CLASS klass, CK_KEY_TYPE kt,
			   const char *label, const uint8_t *id, size_t id_len,
			   const uint8_t *subject, size_t subject_len)
{
	CK_DATE empty_date;

	memset(&empty_date, 0, sizeof(empty_date));
	/* storage objects, PKCS#11 2.40 section 4.4 */
	add_ulong(b, CKA_CLASS, klass);
	add_bool(b, CKA_TOKEN, true);
	add_bool(b, CKA_PRIVATE, klass == CKO_PRIVATE_KEY);
	add_bool(b, CKA_MODIFIABLE, false);
	add_bool(b, CKA_COPYABLE, false);
	add_bool(b, CKA_DESTROYABLE, false);
	add_str(b, CKA_LABEL, label);
	/* key objects, section 4.7 */
	add_ulong(b, CKA_KEY_TYPE, kt);
	add(b, CKA_ID, id, id_len);
	add(b, CKA_START_DATE, NULL, 0);
	add(b, CKA_END_DATE, NULL, 0);
	add_bool(b, CKA_DERIVE, false);
	add_bool(b, CKA_LOCAL, false); /* not generated on this token */
	add_ulong(b, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
	add(b, CKA_SUBJECT, subject, subject_len);
}

static void add_public_numbers(struct builder *b, const EVP_PKEY *pkey, CK_KEY_TYPE kt,
			       bool is_public)
{
	if (kt == CKK_RSA) {
		add_bn(b, CKA_MODULUS, pkey, OSSL_PKEY_PARAM_RSA_N);
		add_bn(b, CKA_PUBLIC_EXPONENT, pkey, OSSL_PKEY_PARAM_RSA_E);
		if (is_public)
			add_ulong(b, CKA_MODULUS_BITS, (CK_ULONG)EVP_PKEY_get_bits(pkey));
	} else {
		add_ec_params(b, pkey);
		/* Many consumers (libp11, pkcs11-provider) read the point from
		 * the private key too, so it is on both objects. */
		add_ec_point(b, pkey);
	}
}

static void object_clear(struct p11_object *o)
{
	CK_ULONG i;

	for (i = 0; i < o->n_attrs; i++)
		free(o->attrs[i].pValue);
	free(o->attrs);
	EVP_PKEY_free(o->pkey); /* secure-heap BIGNUMs are wiped by OpenSSL */
	memset(o, 0, sizeof(*o));
}

CK_RV p11_keyset_add(struct p11_keyset *ks, EVP_PKEY *pkey, const char *label,
		     const uint8_t *id, size_t id_len, const uint8_t *cert_der, size_t cert_len)
{
	struct p11_object objs[3];
	struct builder b = { 0 };
	X509 *cert = NULL;
	uint8_t *subject = NULL;
	int subject_len = 0;
	size_t n = 0, i;
	CK_KEY_TYPE kt;
	CK_RV rv = CKR_HOST_MEMORY;
	struct p11_object *no;

	memset(objs, 0, sizeof(objs));
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		kt = CKK_RSA;
		break;
	case EVP_PKEY_EC:
		kt = CKK_EC;
		break;
	default:
		EVP_PKEY_free(pkey);
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	if (cert_der && cert_len) {
		const uint8_t *p = cert_der;

		cert = d2i_X509(NULL, &p, (long)cert_len);
		if (!cert || p != cert_der + cert_len) {
			rv = CKR_DATA_INVALID;
			goto out;
		}
		/* A certificate for another key would make TLS fail later and
		 * far from the cause: refuse it here. */
		if (EVP_PKEY_eq(X509_get0_pubkey(cert), pkey) != 1) {
			rv = CKR_KEY_TYPE_INCONSISTENT;
			goto out;
		}
		subject_len = i2d_X509_NAME(X509_get_subject_name(cert), &subject);
		if (subject_len <= 0)
			goto out;
	}

	/* private key, sections 4.9 and 2.1.4 / 2.3.4 */
	b.o = &objs[n++];
	b.o->klass = CKO_PRIVATE_KEY;
	b.o->key_type = kt;
	add_key_common(&b, CKO_PRIVATE_KEY, kt, label, id, id_len, subject,
		       subject_len > 0 ? (size_t)subject_len : 0);
	add_bool(&b, CKA_SENSITIVE, true);
	add_bool(&b, CKA_EXTRACTABLE, false);
	add_bool(&b, CKA_ALWAYS_SENSITIVE, true);
	add_bool(&b, CKA_NEVER_EXTRACTABLE, true);
	add_bool(&b, CKA_DECRYPT, kt == CKK_RSA);
	add_bool(&b, CKA_SIGN, true);
	add_bool(&b, CKA_SIGN_RECOVER, false);
	add_bool(&b, CKA_UNWRAP, false);
	add_bool(&b, CKA_WRAP_WITH_TRUSTED, false);
	add_bool(&b, CKA_ALWAYS_AUTHENTICATE, false);
	add_public_numbers(&b, pkey, kt, false);
	if (b.failed)
		goto out;

	/* public key, section 4.8 */
	b.o = &objs[n++];
	b.o->klass = CKO_PUBLIC_KEY;
	b.o->key_type = kt;
	add_key_common(&b, CKO_PUBLIC_KEY, kt, label, id, id_len, subject,
		       subject_len > 0 ? (size_t)subject_len : 0);
	/* the token cannot verify or encrypt: it says so */
	add_bool(&b, CKA_ENCRYPT, false);
	add_bool(&b, CKA_VERIFY, false);
	add_bool(&b, CKA_VERIFY_RECOVER, false);
	add_bool(&b, CKA_WRAP, false);
	add_bool(&b, CKA_TRUSTED, false);
	add_public_numbers(&b, pkey, kt, true);
	if (b.failed)
		goto out;

	if (cert) {
		uint8_t *der = NULL;
		int len;

		/* X.509 certificate, section 4.6.3 */
		b.o = &objs[n++];
		b.o->klass = CKO_CERTIFICATE;
		add_ulong(&b, CKA_CLASS, CKO_CERTIFICATE);
		add_bool(&b, CKA_TOKEN, true);
		add_bool(&b, CKA_PRIVATE, false);
		add_bool(&b, CKA_MODIFIABLE, false);
		add_bool(&b, CKA_COPYABLE, false);
		add_bool(&b, CKA_DESTROYABLE, false);
		add_str(&b, CKA_LABEL, label);
		add_ulong(&b, CKA_CERTIFICATE_TYPE, CKC_X_509);
		add_bool(&b, CKA_TRUSTED, false);
		add_ulong(&b, CKA_CERTIFICATE_CATEGORY, 0); /* unspecified */
		add(&b, CKA_START_DATE, NULL, 0);
		add(&b, CKA_END_DATE, NULL, 0);
		add(&b, CKA_ID, id, id_len);
		add(&b, CKA_VALUE, cert_der, cert_len);
		add(&b, CKA_SUBJECT, subject, (size_t)subject_len);
		der = NULL;
		len = i2d_X509_NAME(X509_get_issuer_name(cert), &der);
		add_der(&b, CKA_ISSUER, der, len);
		der = NULL;
		len = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &der);
		add_der(&b, CKA_SERIAL_NUMBER, der, len);
		add(&b, CKA_URL, NULL, 0);
		add(&b, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, NULL, 0);
		add(&b, CKA_HASH_OF_ISSUER_PUBLIC_KEY, NULL, 0);
		add_ulong(&b, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
		if (b.failed)
			goto out;
	}

	no = realloc(ks->objs, (ks->n_objs + n) * sizeof(*no));
	if (!no)
		goto out;
	ks->objs = no;
	for (i = 0; i < n; i++)
		objs[i].handle = new_handle();
	objs[0].pkey = pkey; /* the set owns the reference from here on */
	pkey = NULL;
	memcpy(ks->objs + ks->n_objs, objs, n * sizeof(*objs));
	ks->n_objs += n;
	ks->n_keys++;
	n = 0;
	rv = CKR_OK;
out:
	for (i = 0; i < n; i++)
		object_clear(&objs[i]);
	EVP_PKEY_free(pkey);
	X509_free(cert);
	OPENSSL_free(subject);
	return rv;
}

void p11_keyset_free(struct p11_keyset *ks)
{
	size_t i;

	if (!ks)
		return;
	for (i = 0; i < ks->n_objs; i++)
		object_clear(&ks->objs[i]);
	free(ks->objs);
	free(ks);
}

const struct p11_object *p11_keyset_find(const struct p11_keyset *ks, CK_OBJECT_HANDLE h)
{
	size_t i;

	if (!ks)
		return NULL;
	for (i = 0; i < ks->n_objs; i++) {
		if (ks->objs[i].handle == h)
			return &ks->objs[i];
	}
	return NULL;
}

static const CK_ATTRIBUTE *object_attr(const struct p11_object *o, CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG i;

	for (i = 0; i < o->n_attrs; i++) {
		if (o->attrs[i].type == type)
			return &o->attrs[i];
	}
	return NULL;
}

/* PKCS#11 2.40 section 5.7, C_GetAttributeValue: every attribute of the
 * template is processed; the return value reports the last problem. */
CK_RV p11_object_get_attrs(const struct p11_object *o, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_RV rv = CKR_OK;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = object_attr(o, tmpl[i].type);

		if (!a) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = attr_is_sensitive(o->klass, tmpl[i].type) ? CKR_ATTRIBUTE_SENSITIVE
								       : CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (!tmpl[i].pValue) {
			tmpl[i].ulValueLen = a->ulValueLen;
		} else if (tmpl[i].ulValueLen < a->ulValueLen) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			if (a->ulValueLen)
				memcpy(tmpl[i].pValue, a->pValue, a->ulValueLen);
			tmpl[i].ulValueLen = a->ulValueLen;
		}
	}
	return rv;
}

bool p11_object_match(const struct p11_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = object_attr(o, tmpl[i].type);

		if (!a || a->ulValueLen != tmpl[i].ulValueLen)
			return false;
		if (a->ulValueLen && (!tmpl[i].pValue ||
				      memcmp(a->pValue, tmpl[i].pValue, a->ulValueLen) != 0))
			return false;
	}
	return true;
}
